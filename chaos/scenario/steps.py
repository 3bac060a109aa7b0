"""Steps several scenarios share: building a load, finding a run's row and owner."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from chaos.record.vocabulary import RunRow, Snapshot
from chaos.sut.base import RunRequest
from chaos.workload.driver import Driver, RunResult

#: The single agent every replica config declares (see the target's config renderer).
DEFAULT_AGENT = "chaos"


def load_requests(
    prefix: str,
    label: str,
    runs: int,
    users: int,
    *,
    agent: str = DEFAULT_AGENT,
    prompt: str = "loomchaos scenario run",
) -> list[RunRequest]:
    """``runs`` requests spread round-robin over ``users`` users, all ids under ``prefix``."""
    if runs < 1 or users < 1:
        raise ValueError("runs and users must be >= 1")
    return [
        RunRequest(
            agent=agent,
            agent_id=f"{prefix}-{label}-a{n}",
            prompt=prompt,
            user_id=f"{prefix}-{label}-u{n % users}",
        )
        for n in range(runs)
    ]


async def run_many(driver: Driver, reqs: Sequence[RunRequest]) -> list[RunResult]:
    """Start every request at once (the driver's gates pace them); results in request order."""
    return list(await asyncio.gather(*(driver.run(r) for r in reqs)))


def row_of(snap: Snapshot, agent_id: str) -> RunRow | None:
    """The newest row of ``agent_id`` in ``snap``."""
    rows = [r for r in snap.runs if r.agent_id == agent_id]
    return max(rows, key=lambda r: r.started_at or 0.0, default=None)


def running_row(snap: Snapshot, agent_id: str) -> RunRow | None:
    row = row_of(snap, agent_id)
    return row if row is not None and row.status == "running" and row.replica_id else None
