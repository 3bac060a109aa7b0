"""Finding LC-004, reduced: a cancel that lands after the client got ``done`` still
writes ``cancelled``.

Three ~6 s runs are started directly on one replica (one per user).  The owner is
frozen (``docker pause``, recorded) until every run's provider call has run out, and
each run is cancelled through another replica while it is frozen (the answer is
``owner_replica_unreachable`` after the 2 s ack timeout: the cancel is in the
database, not yet seen by the owner).  Thawed, the owner ends each run's loop, which
streams ``done`` (end_turn) to the client, and reads the missed cancel at the same
time; loomcycle decides the terminal status only afterwards, from the run context's
cause, so the row can say ``cancelled`` with the caller's reason while the client
holds ``done``: ``one_truth`` fails.

Not deterministic: it depends on which of the two the thawed process does first.
Each of the three runs is its own chance (hit in three of four single-run attempts of
the sabotage matrix's pause row; see docs/findings/LC-004.md), so the test is
``slow`` until its hit rate over many runs is measured.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from test_scenario_cancel import all_running

from chaos.checks import one_truth
from chaos.faults import injected
from chaos.findings import known_finding
from chaos.record.history import History
from chaos.scenario import freeze_replica
from chaos.scenario.cancels import recorded_cancel
from chaos.scenario.steps import load_requests
from chaos.sut.loomcycle.ports import replica_clients, scenario_run, started_runs
from chaos.sut.loomcycle.settings import settings_of
from chaos.sut.loomcycle.specs import CANCEL_SPEC
from chaos.verdict import InvariantViolation, assert_verdicts
from chaos.wait import eventually

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

#: One run per user, under the per-user cap: every run holds its slot at once.
RUNS = 3
REASON = "loomchaos: LC-004"


@known_finding("LC-004", raises=InvariantViolation)
async def test_a_cancel_after_done_does_not_rewrite_the_end(
    chaos_cluster_for: Callable[..., Awaitable[Any]],
    chaos_history: History,
    chaos_prefix: str,
    chaos_seed: int,
) -> None:
    cluster = await chaos_cluster_for(CANCEL_SPEC)
    mock = settings_of(CANCEL_SPEC).mock
    owner, asker = cluster.replica_ids[:2]
    reqs = load_requests(chaos_prefix, "lc004", RUNS, RUNS)
    async with (
        scenario_run(cluster, chaos_history, chaos_prefix) as run,
        replica_clients(cluster) as clients,
    ):
        async with started_runs(cluster, chaos_history, reqs, via=owner, poll_timeout_s=15.0):
            rows = await all_running(run, reqs)
            # The last provider call ends by then, whatever its jitter (+1 s of slack).
            ran_out = max(r.started_at or time.time() for r in rows.values())
            ran_out += (mock.latency_ms + mock.jitter_ms) / 1000.0 + 1.0
            async with injected(await freeze_replica(cluster, owner), chaos_history):
                await asyncio.gather(
                    *(
                        recorded_cancel(chaos_history, clients[asker], a, via=asker, reason=REASON)
                        for a in rows
                    )
                )

                async def provider_calls_ran_out() -> bool:
                    return time.time() >= ran_out

                # Frozen past the calls' end (a clock condition, bounded; not a sleep).
                await eventually(
                    provider_calls_ran_out,
                    what="the frozen runs' provider calls to run out",
                    timeout=mock.latency_ms / 1000.0 + 10.0,
                    interval=0.2,
                )
        await run.converge()
    assert_verdicts([one_truth.check(run.context())], seed=chaos_seed)
