"""Small, pure reads of a finished scenario that its test asserts on directly.

The checkers judge invariants; a scenario also states what it set out to
cause ("the victim owned running runs when it was killed", "the stopped
replica's row went within ~5 s").  Without such assertions a scenario whose
fault missed would pass every invariant vacuously-but-green.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from chaos.checks.context import CheckContext
from chaos.record.history import FaultWindow, History
from chaos.record.vocabulary import RunRow, Snapshot


def owned_running(snap: Snapshot, replica_id: str) -> list[RunRow]:
    return [r for r in snap.runs if r.status == "running" and r.replica_id == replica_id]


def owners(rows: Iterable[RunRow]) -> Counter[str]:
    return Counter(r.replica_id or "" for r in rows)


def only_window(history: History, name: str, target: str) -> FaultWindow:
    """The single fault window ``name`` on ``target``; a scenario that made none or two is wrong."""
    found = [w for w in history.fault_windows() if w.name == name and w.target == target]
    if len(found) != 1:
        raise AssertionError(f"expected one {name} window on {target}, found {len(found)}")
    return found[0]


def replica_row_deleted_after(
    ctx: CheckContext, replica_id: str, since_wall: float
) -> float | None:
    """Seconds from ``since_wall`` to the deletion of ``replica_id``'s ``replicas`` row.

    From the audit log when it has the delete, else from the first recorded
    snapshot after ``since_wall`` that lacks the row; None when neither shows it.
    """
    slack = ctx.params.clock_slack_s
    for row in ctx.audit_rows("replicas", replica_id):
        if row.action == "delete" and row.at >= since_wall - slack:
            return row.at - since_wall
    for snap in ctx.snapshots:
        if snap.wall >= since_wall and all(r.replica_id != replica_id for r in snap.replicas):
            return snap.wall - since_wall
    return None


def final_rows(ctx: CheckContext, agent_ids: Iterable[str] | None = None) -> list[RunRow]:
    """The test's rows in the final snapshot (only these agent ids, when given)."""
    rows = list(ctx.final_runs.values())
    if agent_ids is None:
        return rows
    wanted = set(agent_ids)
    return [r for r in rows if r.agent_id in wanted]
