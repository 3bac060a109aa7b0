"""Finding LC-003, reduced: a killed replica's queued runs leak their users' quota slots.

One replica may run one run at a time (QUEUEING_SPEC).  Three ~10 s runs of one
user go straight to it: one runs, two wait in its queue.  Each of the three took
its ``user_quotas`` slot before queueing, but only the running one has a run
row.  The replica is SIGKILLed; the survivors reap it, counting the slots to
give back from its run rows, so the two queued runs' slots are never returned.

Deterministic (the queue is the spec's, not a race): hit in every run so far
(see docs/findings/LC-003.md).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from chaos.checks import no_quota_leaks
from chaos.faults import injected
from chaos.findings import known_finding
from chaos.record.history import History
from chaos.scenario import kill_replica, rejoin
from chaos.scenario.steps import load_requests
from chaos.sut.loomcycle.ports import scenario_run, started_runs
from chaos.sut.loomcycle.specs import QUEUEING_SPEC
from chaos.verdict import InvariantViolation, assert_verdicts

#: ``slow``: the scenarios that meet this finding check its signature in the CI tier; this
#: reduction (a fixed target turns it red) runs in ``-m slow`` and the gate's ``--full``,
#: to keep the CI chaos tier inside its 40 min (README, "The two tiers").
pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

#: One running, two queued; all three under the per-user cap (4).
RUNS = 3


@known_finding("LC-003", raises=InvariantViolation)
async def test_a_killed_replicas_queued_runs_give_their_slots_back(
    chaos_cluster_for: Callable[..., Awaitable[Any]],
    chaos_history: History,
    chaos_prefix: str,
    chaos_rng: random.Random,
    chaos_seed: int,
) -> None:
    cluster = await chaos_cluster_for(QUEUEING_SPEC)
    victim = cluster.replica_ids[chaos_rng.randrange(len(cluster.replica_ids))]
    reqs = load_requests(chaos_prefix, "lc003", RUNS, 1)
    user = reqs[0].user_id
    async with scenario_run(cluster, chaos_history, chaos_prefix) as run:
        async with started_runs(cluster, chaos_history, reqs, via=victim, poll_timeout_s=5.0):
            await run.wait_for(
                lambda s: (
                    sum(q.active_count for q in s.quotas if q.user_id == user) == RUNS
                    and sum(r.status == "running" for r in s.runs) == 1
                ),
                what=f"one run running on {victim} and {RUNS - 1} queued behind it",
                timeout=30,
            )
            async with injected(await kill_replica(cluster, victim, run.params), chaos_history):
                pass
        await rejoin(cluster, victim)
        await run.converge()

    assert_verdicts([no_quota_leaks.check(run.context())], seed=chaos_seed)
