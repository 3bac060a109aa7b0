"""Finding LC-010, reduced: the replicas sweeper judges staleness on the replica's clock.

loomcycle's operator documentation (``docs/MULTI-REPLICA.md``, "Clock skew") says the
sweeper's staleness cutoff is computed on the Postgres side, so that a replica's clock
skew against the database cannot cause false stale-marks.  The code computes it on the
sweeping replica (``time.Now().Add(-staleAfter)``, ``internal/coord/replicas_sweeper.go:141``)
and compares it with heartbeats Postgres stamped with its own ``now()``
(``replica_store.go:47-51``).  So with Postgres's clock 45 s behind the replicas' (or the
replicas' ahead), every heartbeat looks 45 s old when written: 15 s after each 30 s beat,
under the suite's 60 s threshold, every live replica is stale, and the next 5 s sweep
reaps them, failing their running runs ``replica_died``.

Deterministic: the skew is held until every replica wrote two heartbeats under it (each
beat interval has a 15 s stale stretch, three sweeps), then healed; the checkers judge.
A fixed target reaps nobody and the test passes (strict xfail: XPASS fails the run).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from chaos.checks import bounded_recovery, cancel_classification
from chaos.faults import injected
from chaos.faults.clock import PgClockSkew
from chaos.findings import known_finding
from chaos.record.history import History
from chaos.record.vocabulary import Snapshot
from chaos.scenario.steps import load_requests
from chaos.sut.loomcycle.ports import scenario_run, started_runs
from chaos.sut.loomcycle.settings import MockProvider, with_settings
from chaos.sut.loomcycle.specs import SMOKE_SPEC
from chaos.verdict import InvariantViolation, assert_verdicts

#: ``slow``: a reduction of its own cluster (Postgres under libfaketime), ~3 min; it runs
#: in ``-m slow`` and the gate's ``--full``, outside the CI tier's 40 min.
pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

#: Runs of ~90 s: still running when the sweepers reap their owners (within ~35 s of the skew).
CLOCK_SKEW_SPEC = with_settings(
    SMOKE_SPEC, mock=MockProvider(latency_ms=90_000, jitter_ms=1_000), pg_fake_clock=True
)
#: Postgres's clock behind the replicas': more than stale (60 s) - beat (30 s), less than
#: the per-run heartbeat threshold (so only the replicas sweeper is concerned).
SKEW_S = -45.0
RUNS, USERS = 6, 2
#: Two beats of 30 s, one sweep of 5 s, and room.
TWO_BEATS_S = 2 * 30.0 + 5.0 + 15.0


class BeatsSeen:
    """Counts, per replica, the distinct heartbeats written after it was created."""

    def __init__(self, replicas: tuple[str, ...]) -> None:
        self.seen: dict[str, set[float]] = {r: set() for r in replicas}
        self.first: dict[str, float] = {}

    def __call__(self, snap: Snapshot) -> bool:
        for row in snap.replicas:
            if row.replica_id in self.seen and row.last_heartbeat_at is not None:
                first = self.first.setdefault(row.replica_id, row.last_heartbeat_at)
                if row.last_heartbeat_at != first:
                    self.seen[row.replica_id].add(row.last_heartbeat_at)
        return all(len(beats) >= 2 for beats in self.seen.values())


@known_finding("LC-010", raises=InvariantViolation)
async def test_database_clock_skew_reaps_no_live_replica(
    chaos_cluster_for: Callable[..., Awaitable[Any]],
    chaos_history: History,
    chaos_prefix: str,
    chaos_seed: int,
) -> None:
    cluster = await chaos_cluster_for(CLOCK_SKEW_SPEC)
    reqs = load_requests(chaos_prefix, "lc010", RUNS, USERS)
    async with scenario_run(cluster, chaos_history, chaos_prefix) as run:
        async with started_runs(cluster, chaos_history, reqs, poll_timeout_s=5.0):
            await run.wait_for(
                lambda s: sum(r.status == "running" for r in s.runs) == RUNS,
                what=f"{RUNS} runs running",
                timeout=60,
            )
            skew = PgClockSkew(await cluster.container("postgres"), cluster.pg_dsn, SKEW_S)
            async with injected(skew, chaos_history):
                await run.wait_for(
                    BeatsSeen(tuple(cluster.replica_ids)),
                    what="two heartbeats of every replica under the skew",
                    timeout=TWO_BEATS_S,
                )
        await run.converge()
    # No kill and no cancel in this reduction: those two have nothing to judge by design.
    vacuous_by_design = [bounded_recovery.INVARIANT, cancel_classification.INVARIANT]
    assert_verdicts(run.verdicts(allow_vacuous=vacuous_by_design), seed=chaos_seed)
