"""Issue 3's smoke: a healthy 3-replica cluster does the basics right, and every checker agrees.

60 short runs (mock ~2 s) for 6 users through the load balancer, gated at the
per-user cap: all complete, every replica owns some.  Meanwhile one run is
cancelled through a replica that does not own it: acknowledged, and it ends
``cancelled`` with the reason given.  Afterwards user_quotas sums to 0 and
every invariant passes with evidence (none is allowed to be vacuous: this
scenario produces ends, samples under load, an audit log and a healthy ack).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest

from chaos.record.history import History
from chaos.scenario import non_owner, recorded_cancel
from chaos.scenario.evidence import final_rows, owners
from chaos.scenario.steps import load_requests, run_many, running_row
from chaos.sut.base import RunRequest
from chaos.sut.loomcycle.ports import gated_policy, lb_client, replica_clients, scenario_run
from chaos.sut.loomcycle.settings import settings_of
from chaos.sut.loomcycle.specs import SMOKE_SPEC
from chaos.verdict import Verdict
from chaos.workload import Driver

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.timeout(600),
]

RUNS, USERS = 60, 6
CANCEL_REASON = "loomchaos smoke: cancelled through a non-owner"


async def test_smoke(
    chaos_cluster_for: Callable[..., Awaitable[Any]],
    chaos_history: History,
    chaos_prefix: str,
    chaos_rng: random.Random,
    chaos_verdicts: Callable[[Sequence[Verdict]], None],
) -> None:
    spec = SMOKE_SPEC
    cluster = await chaos_cluster_for(spec)
    load = load_requests(chaos_prefix, "smoke", RUNS, USERS)
    victim = RunRequest(
        "chaos", f"{chaos_prefix}-cx", "loomchaos smoke cancel", f"{chaos_prefix}-cu"
    )
    async with (
        # nginx round-robins over 3 replicas: ~1/3 each; one owning over 60 % of 60 runs
        # means the balancer or a replica is not taking its share.
        scenario_run(cluster, chaos_history, chaos_prefix, max_replica_share=0.6) as run,
        lb_client(cluster) as lb,
        replica_clients(cluster) as replicas,
    ):
        driver = Driver(
            lb, chaos_history, via="lb", policy=gated_policy(settings_of(spec).max_runs_per_user)
        )
        async with asyncio.TaskGroup() as tg:
            results = tg.create_task(run_many(driver, load))
            cancelled = tg.create_task(driver.run(victim))
            snap = await run.wait_for(
                lambda s: running_row(s, victim.agent_id),
                what=f"{victim.agent_id} running with a known owner",
                timeout=30,
            )
            row = running_row(snap, victim.agent_id)
            assert row is not None
            via = non_owner(cluster.replica_ids, row.replica_id, chaos_rng)
            ack = await recorded_cancel(
                chaos_history, replicas[via], victim.agent_id, via=via, reason=CANCEL_REASON
            )
        convergence = await run.converge()

    assert ack is not None and ack.classification == "acknowledged", ack
    not_done = [r for r in results.result() if not r.completed]
    assert not not_done, f"{len(not_done)} of {RUNS} runs did not complete: {not_done[:5]}"
    assert cancelled.done()
    ctx = run.context()
    rows = final_rows(ctx, [r.agent_id for r in load])
    assert len(rows) == RUNS and all(r.status == "completed" for r in rows)
    spread = owners(rows)
    assert set(cluster.replica_ids) <= set(spread), f"a replica owned no run: {dict(spread)}"
    (cancel_row,) = final_rows(ctx, [victim.agent_id])
    assert (cancel_row.status, cancel_row.stop_reason) == ("cancelled", CANCEL_REASON)
    assert sum(q.active_count for q in convergence.final.quotas) == 0
    assert convergence.converged, convergence.unsettled
    chaos_verdicts(run.verdicts())
