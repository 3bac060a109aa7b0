"""Finding LC-002, reduced: a graceful stop abandons runs longer than its 5 s drain.

Three ~10 s runs are started directly on one replica for one user; the
replica gets SIGTERM while they run and is started again under the same id.
loomcycle drains HTTP for at most 5 s, then exits without a terminal write;
its row was deleted first, so the dead-replica sweeper never looks at those
runs, and the per-run heartbeat sweeper gives no quota back.  After the
documented reap bound the runs are still ``running`` with nobody serving
them and the user's slots are still taken.

Deterministic: every run longer than the drain is abandoned (hit in every
run so far; see docs/findings/LC-002.md).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from chaos.checks import no_quota_leaks, no_zombies
from chaos.faults import injected
from chaos.findings import known_finding
from chaos.record.history import History
from chaos.scenario import rejoin, stop_replica
from chaos.scenario.steps import load_requests
from chaos.sut.loomcycle.ports import scenario_run, started_runs
from chaos.sut.loomcycle.specs import CRASH_SPEC
from chaos.verdict import InvariantViolation, assert_verdicts

#: ``slow``: the scenarios that meet this finding check its signature in the CI tier; this
#: reduction (a fixed target turns it red) runs in ``-m slow`` and the gate's ``--full``,
#: to keep the CI chaos tier inside its 40 min (README, "The two tiers").
pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

#: More than one, fewer than the per-user cap (4): every run holds a slot at once.
RUNS = 3


@known_finding("LC-002", raises=InvariantViolation)
async def test_graceful_stop_gives_back_the_runs_and_slots_it_abandons(
    chaos_cluster_for: Callable[..., Awaitable[Any]],
    chaos_history: History,
    chaos_prefix: str,
    chaos_rng: random.Random,
    chaos_seed: int,
) -> None:
    cluster = await chaos_cluster_for(CRASH_SPEC)
    victim = cluster.replica_ids[chaos_rng.randrange(len(cluster.replica_ids))]
    reqs = load_requests(chaos_prefix, "lc002", RUNS, 1)
    async with scenario_run(cluster, chaos_history, chaos_prefix) as run:
        async with started_runs(cluster, chaos_history, reqs, via=victim, poll_timeout_s=5.0):
            await run.wait_for(
                lambda s: (
                    sum(r.status == "running" and r.replica_id == victim for r in s.runs) >= RUNS
                ),
                what=f"{RUNS} runs running on {victim}",
                timeout=30,
            )
            async with injected(await stop_replica(cluster, victim), chaos_history):
                pass
        await rejoin(cluster, victim)
        await run.converge()

    ctx = run.context()
    assert_verdicts([no_zombies.check(ctx), no_quota_leaks.check(ctx)], seed=chaos_seed)
