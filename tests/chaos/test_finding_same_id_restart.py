"""Finding LC-006, reduced: a replica restarted under its own id never ends its dead runs.

Two ~10 s runs of one user go straight to one replica.  It is SIGKILLed and
started again at once under the same replica id, as a supervisor (Docker's
restart policy, a StatefulSet) restarts a crashed process.  Its boot upsert
refreshes the dead incarnation's ``replicas`` row (``ON CONFLICT (id) DO
UPDATE SET last_heartbeat_at``), so the row is never stale, the survivors'
sweeper never reaps it, and nothing at boot looks at the id's own
``running`` rows: the two runs stay ``running`` past the reap bound (stale
threshold + one sweep + margin), served by nobody.

Deterministic (the restart lands within seconds, far inside the 60 s stale
threshold): see docs/findings/LC-006.md for its hit rate.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from chaos.checks import no_zombies
from chaos.faults import injected
from chaos.faults.replica import kill_rejoin
from chaos.findings import known_finding
from chaos.record.history import History
from chaos.scenario.steps import load_requests
from chaos.sut.loomcycle.ports import scenario_run, started_runs
from chaos.sut.loomcycle.specs import CRASH_SPEC
from chaos.verdict import InvariantViolation, assert_verdicts

#: ``slow``: the scenarios that meet this finding check its signature in the CI tier; this
#: reduction (a fixed target turns it red) runs in ``-m slow`` and the gate's ``--full``,
#: to keep the CI chaos tier inside its 40 min (README, "The two tiers").
pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

#: Both on the victim, under the per-user cap (4).
RUNS = 2


@known_finding("LC-006", raises=InvariantViolation)
async def test_a_replica_restarted_under_its_own_id_ends_its_dead_runs(
    chaos_cluster_for: Callable[..., Awaitable[Any]],
    chaos_history: History,
    chaos_prefix: str,
    chaos_rng: random.Random,
    chaos_seed: int,
) -> None:
    cluster = await chaos_cluster_for(CRASH_SPEC)
    victim = cluster.replica_ids[chaos_rng.randrange(len(cluster.replica_ids))]
    reqs = load_requests(chaos_prefix, "lc006", RUNS, 1)
    async with scenario_run(cluster, chaos_history, chaos_prefix) as run:
        async with started_runs(cluster, chaos_history, reqs, via=victim, poll_timeout_s=5.0):
            await run.wait_for(
                lambda s: (
                    sum(r.status == "running" and r.replica_id == victim for r in s.runs) == RUNS
                ),
                what=f"{RUNS} runs running on {victim}",
                timeout=30,
            )
            # Effect: the container stopped; heal: the same container started again, proven
            # when it answers /healthz as itself and every other replica lists it.
            async with injected(await kill_rejoin(cluster, victim), chaos_history):
                pass
        # Converges through the reap bound: the dead runs are judged against it.
        await run.converge()

    assert_verdicts([no_zombies.check(run.context())], seed=chaos_seed)
