"""Finding LC-009, reduced: a run whose end falls inside its owner's database outage stays
``running`` for good, and its user's slot stays taken.

Two ~10-15 s runs of one user on one replica; the replica's Postgres link is
cut (Toxiproxy) until both clients have received ``done``, then healed.  The
run's end (``FinishRun``, server.go:7490-7492) and the quota release
(semaphore.go:291-295) are each tried once and only logged on failure, so
both rows stay ``running`` with their owner answering ``live=false``; only
the per-run heartbeat sweeper ends them much later, and it gives no slot
back.  ``no_zombies`` fails at convergence.

The cut is held until the runs ended at their clients, not for a guessed
time: it hits whenever a run ends inside the cut (2 of 2 runs, both times, in
the scenario this was reduced from).  ``slow``: it waits out the convergence
bound for runs nobody will end.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from test_scenario_postgres import OUTAGE_SPEC, heartbeat_after

from chaos.checks import no_zombies
from chaos.faults import injected
from chaos.findings import known_finding
from chaos.record.history import History
from chaos.scenario.steps import load_requests
from chaos.sut.loomcycle.ports import scenario_run, started_runs
from chaos.testing.outside_sabotage import link_cut
from chaos.verdict import InvariantViolation, assert_verdicts
from chaos.wait import eventually

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

RUNS = 2
#: The runs last ~10-15 s (OUTAGE_SPEC's mock); their clients' streams end inside this.
STREAMS_END_S = 40.0


@known_finding("LC-009", raises=InvariantViolation)
async def test_a_run_ending_inside_its_owners_database_outage_is_ended(
    chaos_cluster_for: Callable[..., Awaitable[Any]],
    chaos_history: History,
    chaos_prefix: str,
    chaos_rng: random.Random,
    chaos_seed: int,
) -> None:
    cluster = await chaos_cluster_for(OUTAGE_SPEC)
    victim = cluster.replica_ids[chaos_rng.randrange(len(cluster.replica_ids))]
    reqs = load_requests(chaos_prefix, "lc009", RUNS, 1)
    async with scenario_run(cluster, chaos_history, chaos_prefix) as run:
        async with started_runs(
            cluster, chaos_history, reqs, via=victim, poll_timeout_s=5.0
        ) as clients:
            await run.wait_for(
                lambda s: (
                    sum(r.status == "running" and r.replica_id == victim for r in s.runs) == RUNS
                ),
                what=f"{RUNS} runs running on {victim}",
                timeout=30,
            )
            async with injected(link_cut(cluster, "pg", victim), chaos_history):

                async def streams_ended() -> bool:
                    await asyncio.sleep(0)
                    return clients.done()

                await eventually(
                    streams_ended,
                    what="both clients' streams to end inside the cut",
                    timeout=STREAMS_END_S,
                    interval=0.5,
                )
            healed = time.time()  # the heal is proven on leaving the block
        await heartbeat_after(run, victim, healed)
        await run.converge()

    assert_verdicts([no_zombies.check(run.context())], seed=chaos_seed)
