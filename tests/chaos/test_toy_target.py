"""The target seam, proven with a second target: the test-only toy service in tests/toy.

The toy (runs owned by a replica, a per-user quota, a reaper, on one Postgres)
runs the kill scenario of test_scenario_crash.py through the same cluster,
fault, workload and scenario code, judged by the same checkers.  Clean, it
passes every checker that has evidence; with its planted defect (the reaper
keeps a killed owner's quota slots) no_quota_leaks must fail and name the users.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from chaos.cluster.cluster import Cluster
from chaos.cluster.spec import ClusterSpec, ResolvedImages
from chaos.faults import injected
from chaos.record.history import History
from chaos.record.vocabulary import RunRow
from chaos.scenario import kill_replica, rejoin
from chaos.scenario.base import client_for
from chaos.scenario.evidence import final_rows, owned_running
from chaos.scenario.run import ScenarioRun
from chaos.scenario.steps import load_requests, run_many
from chaos.verdict import Status, Verdict
from chaos.workload import Driver
from chaos.workload.gates import CapPolicy
from tests.toy import (
    DEFECT_SPEC,
    TOY_SPEC,
    ensure_toy_image,
    toy_cluster,
    toy_images,
    toy_scenario_run,
)
from tests.toy.adapter import toy_settings
from tests.toy.build import ToyImage
from tests.toy.ports import TOY_WORDS

pytestmark = [pytest.mark.chaos, pytest.mark.asyncio(loop_scope="session")]

#: 3 s runs, 4 users x cap 3 = 12 at once: ~30 s of load, well past the kill's reap (~7 s).
RUNS, USERS = 120, 4
MIN_OWNED = 2
#: This scenario sends no cancel.
NO_CANCELS = "cancel_classification"
REAPED = TOY_WORDS.replica_died


@pytest.fixture(scope="session")
def toy_image(chaos_provisioned: Any) -> ToyImage:
    image = ensure_toy_image()
    print(
        f"toy image {image.tag} ready in {image.seconds:.1f}s "
        f"(binary built: {image.binary_built}, image built: {image.image_built})"
    )
    return image


@pytest.fixture
def toy_cluster_for(
    chaos_provisioned: Any, toy_image: ToyImage, chaos_session_id: str, chaos_artifacts: Path
) -> Callable[[ClusterSpec], Any]:
    images: ResolvedImages = toy_images(chaos_provisioned.images, toy_image.tag)
    return lambda spec: toy_cluster(spec, images, chaos_session_id, chaos_artifacts / "logs")


@asynccontextmanager
async def background_load(
    cluster: Cluster, history: History, prefix: str
) -> AsyncIterator[asyncio.Task[Any]]:
    """The load through the load balancer, gated at the toy's cap (it gives a slot back
    before ``done``, so no release lag); awaited, or cancelled, on the way out."""
    client = client_for(cluster, cluster.lb_url)
    driver = Driver(
        client,
        history,
        policy=CapPolicy.gated(toy_settings(cluster.spec).cap),
        run_timeout_s=30.0,
        poll_timeout_s=15.0,
    )
    task = asyncio.create_task(run_many(driver, load_requests(prefix, "kill", RUNS, USERS)))
    try:
        yield task
        await task
    finally:
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.aclose()


async def kill_scenario(
    cluster: Cluster, history: History, prefix: str, rng: random.Random
) -> tuple[ScenarioRun, str, list[RunRow]]:
    """Kill a replica that owns running runs under load, restart it, converge.

    Returns the run, the victim and the runs it owned at the kill.
    """
    victim = cluster.replica_ids[rng.randrange(len(cluster.replica_ids))]
    async with toy_scenario_run(cluster, history, prefix) as run:
        async with background_load(cluster, history, prefix):
            snap = await run.wait_for(
                lambda s: len(owned_running(s, victim)) >= MIN_OWNED,
                what=f"{victim} to own {MIN_OWNED} running runs",
                timeout=30,
            )
            # Effect proven by the reap (the survivors stop listing it); leaving heals.
            async with injected(await kill_replica(cluster, victim, run.params), history):
                pass
            await rejoin(cluster, victim)
        await run.converge()
    return run, victim, owned_running(snap, victim)


def reaped_of(run: ScenarioRun, owned: list[RunRow]) -> list[RunRow]:
    final = {r.run_id: r for r in final_rows(run.context())}
    return [f for r in owned if (f := final.get(r.run_id)) and f.stop_reason == REAPED]


async def test_toy_clean_kill_passes_every_checker(
    toy_cluster_for: Callable[[ClusterSpec], Any],
    chaos_history: History,
    chaos_prefix: str,
    chaos_rng: random.Random,
    chaos_verdicts: Callable[[Sequence[Verdict]], None],
) -> None:
    async with toy_cluster_for(TOY_SPEC) as cluster:
        run, victim, owned = await kill_scenario(cluster, chaos_history, chaos_prefix, chaos_rng)

    assert run.convergence is not None and run.convergence.converged, run.convergence
    assert reaped_of(run, owned), f"none of {victim}'s runs at the kill was reaped: {owned}"
    survivors = [r for r in final_rows(run.context()) if r.replica_id != victim]
    assert survivors and all(r.status == "completed" for r in survivors)
    assert sum(q.active_count for q in run.convergence.final.quotas) == 0
    chaos_verdicts(run.verdicts(allow_vacuous=[NO_CANCELS]))


async def test_toy_planted_defect_fails_no_quota_leaks(
    toy_cluster_for: Callable[[ClusterSpec], Any],
    chaos_history: History,
    chaos_prefix: str,
    chaos_rng: random.Random,
    chaos_verdicts: Callable[[Sequence[Verdict]], None],
    record_property: Callable[[str, Any], None],
) -> None:
    async with toy_cluster_for(DEFECT_SPEC) as cluster:
        run, victim, owned = await kill_scenario(cluster, chaos_history, chaos_prefix, chaos_rng)

    reaped = reaped_of(run, owned)
    assert reaped, f"none of {victim}'s runs at the kill was reaped: {owned}"
    verdicts = run.verdicts(allow_vacuous=[NO_CANCELS])
    (leaks,) = [v for v in verdicts if v.invariant == "no_quota_leaks"]
    # Kept in the JUnit XML: chaos_verdicts below records only the invariants that must hold.
    record_property("planted_defect_verdict", json.dumps(leaks.to_dict(), default=str))
    assert leaks.status is Status.FAIL, leaks
    # Every slot left held at quiescence is a reaped run's, and the evidence names its user.
    kept = {item["user_id"]: item["active_count"] for item in leaks.evidence["quiescence"]}
    by_user: dict[str, int] = {}
    for row in (r for r in final_rows(run.context()) if r.stop_reason == REAPED):
        by_user[row.user_id or ""] = by_user.get(row.user_id or "", 0) + 1
    assert kept == by_user, f"slots held at quiescence {kept}, reaped runs per user {by_user}"
    assert all(item["running_runs"] == 0 for item in leaks.evidence["quiescence"])
    # The defect is the reaper's alone: every other invariant still holds.
    chaos_verdicts([v for v in verdicts if v.invariant != "no_quota_leaks"])
