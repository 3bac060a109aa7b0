"""An ungated burst above the per-user cap: the cap holds cluster-wide.

Twice the cap of one user's runs at once through the load balancer, sent
anyway (no client-side gate; a ``per_user_quota_exhausted`` refusal is retried
with backoff).  At no moment may more than ``cap`` runs of that user be
running, read from the runs table's start and end times (a slot is taken
before the row is written and given back after the end is written, so on a
correct target the intervals never overlap more than ``cap``), and at least
one start must have been refused, or the cap was never reached and the test
proved nothing.  Written to kill the planted ``<=`` cap check
(``planted/loomcycle-v1.59.0/02-quota-cap-off-by-one.patch``), which the gated
workloads of every other scenario cannot see.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest

from chaos.record.history import History
from chaos.record.vocabulary import RunRow
from chaos.scenario.evidence import final_rows
from chaos.scenario.steps import load_requests, run_many
from chaos.sut.loomcycle.ports import lb_client, scenario_run
from chaos.sut.loomcycle.settings import settings_of
from chaos.sut.loomcycle.specs import SMOKE_SPEC
from chaos.verdict import Verdict
from chaos.workload import Driver
from chaos.workload.gates import CapPolicy, RetryPolicy

#: The burst kills nothing and cancels nothing: no reap and no ack to time.
NOTHING_TO_TIME = ["cancel_classification", "bounded_recovery"]

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.timeout(600),
]


def most_at_once(rows: Sequence[RunRow]) -> int:
    """The largest number of rows whose [started_at, completed_at] intervals overlap."""
    edges: list[tuple[float, int]] = []
    for row in rows:
        if row.started_at is None or row.completed_at is None:
            continue
        edges += [(row.started_at, 1), (row.completed_at, -1)]
    # An end and a start at the same instant do not overlap: ends sort first.
    edges.sort(key=lambda e: (e[0], e[1]))
    now = peak = 0
    for _, step in edges:
        now += step
        peak = max(peak, now)
    return peak


async def test_a_burst_above_the_per_user_cap_is_held_to_the_cap(
    chaos_cluster_for: Callable[..., Awaitable[Any]],
    chaos_history: History,
    chaos_prefix: str,
    chaos_verdicts: Callable[[Sequence[Verdict]], None],
) -> None:
    spec = SMOKE_SPEC
    cap = settings_of(spec).max_runs_per_user
    cluster = await chaos_cluster_for(spec)
    load = load_requests(chaos_prefix, "burst", 2 * cap, 1)
    # Enough retries for every refused start to get in once a slot is free (runs ~2 s).
    policy = CapPolicy.send_anyway(cap, RetryPolicy(attempts=12, base_s=0.5, max_s=2.0))
    async with (
        scenario_run(cluster, chaos_history, chaos_prefix, max_replica_share=1.0) as run,
        lb_client(cluster) as lb,
    ):
        results = await run_many(Driver(lb, chaos_history, via="lb", policy=policy), load)
        await run.converge()

    refused = sum(r.attempts - 1 for r in results)
    assert refused > 0, f"no start of {2 * cap} was refused: the cap {cap} was never reached"
    rows = final_rows(run.context(), [r.agent_id for r in load])
    at_once = most_at_once(rows)
    assert at_once <= cap, f"{at_once} runs of one user were running at once (cap {cap})"
    chaos_verdicts(run.verdicts(allow_vacuous=NOTHING_TO_TIME))
