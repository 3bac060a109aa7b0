"""Findings LC-007 and LC-008, reduced: a replica that (re)boots while the cluster is paused.

LC-007: at boot a replica re-dispatches every run whose row says
``pause_state='paused'``, with no filter on the owner (postgres.go:1797-1808,
main.go:2875-2897): the runs parked on LIVE replicas get a second loop, and
after the resume each finishes twice (two ``done`` events).  Runs parked on a
survivor, another replica restarted, resume: a run finished twice.

LC-008: ``POST /v1/_resume`` checks the replica's in-process state
(pause/manager.go:753, 775), which a new process starts at ``running``
(manager.go:172-186) and syncs only on its first ``State()``: a replica
restarted during the pause, asked for the resume before anything asked it for
the state, answers 409 ``not_paused`` while the cluster stays paused.  That is
step 5 of MULTI-REPLICA.md's rolling upgrade.

Both are set up by the order of the steps, not by a race: see the write-ups
for their hit rates.  Preconditions that fail raise RuntimeError/WaitTimeout,
not AssertionError, so only the finding itself can make the strict xfail.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from test_scenario_controls import (
    PAUSED_RUNS_SQL,
    REDISPATCHED,
    ensure_resumed,
    executed_once,
    paused,
    plan,
    query,
)

from chaos.faults import injected
from chaos.faults.replica import rejoin, stop_replica
from chaos.findings import known_finding
from chaos.record.history import History
from chaos.scenario.steps import load_requests
from chaos.sut.loomcycle.ports import scenario_run, started_runs
from chaos.sut.loomcycle.specs import CONTROLS_SPEC
from chaos.sut.postgres import like_prefix
from chaos.wait import WaitTimeout, eventually

pytestmark = [pytest.mark.chaos, pytest.mark.asyncio(loop_scope="session")]

#: Runs sent to the survivor: two take its two run slots, two queue inside it (one user,
#: cap 4).  Paused, the queued ones park as soon as they get a slot: a run parks at a loop
#: boundary, and a running run's single mock call usually ends it first.
SENT = 4
RUNNING = 2
#: The boot's re-dispatch runs in a goroutine once the server is wired: its log line comes
#: within seconds of /healthz.  A fixed target never writes it; the test then goes on.
REDISPATCH_WAIT_S = 20.0


async def paused_everywhere(controls: Any, replicas: list[str]) -> None:
    for r in replicas:
        await eventually(
            lambda r=r: _said_paused(controls, r),
            what=f"{r} to say paused",
            timeout=15.0,
            interval=0.2,
        )


async def _said_paused(controls: Any, replica: str) -> bool:
    return paused(await controls.state(replica))


#: ``slow``: the controls scenario checks LC-007's signature in the CI tier (see
#: test_finding_kill_queued.py for why reductions it covers run in -m slow and --full).
@pytest.mark.slow
@known_finding("LC-007", raises=AssertionError)
async def test_a_replica_booting_during_a_pause_leaves_the_others_parked_runs_alone(
    chaos_cluster_for: Callable[..., Awaitable[Any]],
    chaos_history: History,
    chaos_prefix: str,
    chaos_rng: random.Random,
) -> None:
    cluster = await chaos_cluster_for(CONTROLS_SPEC)
    victim, _, owner, controls, _, _ = plan(cluster, chaos_history, chaos_prefix, chaos_rng)
    reqs = load_requests(chaos_prefix, "lc007", SENT, 1)
    async with scenario_run(cluster, chaos_history, chaos_prefix) as run:
        try:
            async with started_runs(
                cluster, chaos_history, reqs, via=owner, poll_timeout_s=15.0, run_timeout_s=300
            ):
                await run.wait_for(
                    lambda s: (
                        sum(r.status == "running" and r.replica_id == owner for r in s.runs)
                        == RUNNING
                        and sum(q.active_count for q in s.quotas) == SENT
                    ),
                    what=f"{RUNNING} runs running on {owner} and {SENT - RUNNING} queued",
                    timeout=30,
                )
                answer = await controls.pause(owner)
                if answer.status != 200:
                    raise RuntimeError(f"the pause through {owner} answered {answer}")

                async def parked() -> bool:
                    rows = await query(cluster.pg_dsn, PAUSED_RUNS_SQL, like_prefix(chaos_prefix))
                    return len(rows) >= 1

                await eventually(parked, what="a run parked", timeout=60, interval=0.5)
                async with injected(await stop_replica(cluster, victim), chaos_history):
                    pass
                await rejoin(cluster, victim)

                async def redispatched() -> bool:
                    return bool(REDISPATCHED.search(await cluster.log_tail(victim, lines=3000)))

                with contextlib.suppress(WaitTimeout):
                    await eventually(
                        redispatched,
                        what=f"{victim}'s boot re-dispatch log line",
                        timeout=REDISPATCH_WAIT_S,
                        interval=0.5,
                    )
                answer = await controls.resume(owner)
                if answer.status != 200:
                    raise RuntimeError(f"the resume through {owner} answered {answer}")
        finally:
            await ensure_resumed(controls, cluster.replica_ids)
        await run.converge()

    _, twice = await executed_once(cluster.pg_dsn, chaos_prefix)
    assert not twice, (
        f"{victim}, restarted while the cluster was paused, re-dispatched runs parked on "
        f"live {owner}: finished twice {twice}"
    )


@known_finding("LC-008", raises=AssertionError)
async def test_a_replica_restarted_during_a_pause_accepts_the_resume(
    chaos_cluster_for: Callable[..., Awaitable[Any]],
    chaos_history: History,
    chaos_prefix: str,
    chaos_rng: random.Random,
) -> None:
    cluster = await chaos_cluster_for(CONTROLS_SPEC)
    victim, _, issuer, controls, _, _ = plan(cluster, chaos_history, chaos_prefix, chaos_rng)
    try:
        answer = await controls.pause(issuer)
        if answer.status != 200:
            raise RuntimeError(f"the pause through {issuer} answered {answer}")
        await paused_everywhere(controls, list(cluster.replica_ids))
        async with injected(await stop_replica(cluster, victim), chaos_history):
            pass
        await rejoin(cluster, victim)
        # Nothing has asked the restarted replica for the state: the runbook's next step.
        first = await controls.resume(victim)
    finally:
        await ensure_resumed(controls, cluster.replica_ids)
    assert first.status == 200, (
        f"{victim}, restarted while the cluster was paused, refused POST /v1/_resume: "
        f"{first.status} {first.body}"
    )
