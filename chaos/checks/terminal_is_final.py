"""terminal_is_final: a terminal run row never changes, and completed_at marks the end.

Every write that ends a run is guarded by ``status='running'`` (CONTRACT.md),
so once a row is completed/failed/cancelled its status, stop_reason, error and
completed_at must never change again, and ``completed_at IS NULL`` exactly
while ``running``.  Judged on both sources the suite has: the audit log (every
committed transition) and the sequence of snapshots.

Minimum evidence: some terminal row must have been observed again after it
ended (an audit log that covers terminal rows, or one run terminal in two
snapshots); otherwise nothing could have caught a change.
"""

from __future__ import annotations

from typing import Any

from chaos.checks.context import CheckContext
from chaos.checks.evidence import capped
from chaos.record.vocabulary import TERMINAL, RunRow
from chaos.verdict import Verdict

INVARIANT = "terminal_is_final"
_FINAL_FIELDS = ("status", "stop_reason", "error", "completed_at")


def _final_fields(row: RunRow) -> tuple[object, ...]:
    return (row.status, row.stop_reason, row.error, row.completed_at)


def _audit_findings(ctx: CheckContext) -> tuple[list[dict[str, Any]], int]:
    """The audit log's findings, run by run (each run's rows in commit order), and how
    many runs it shows ending.  One walk over the log in commit order: a soak's million
    runs are not grouped first, only the few runs with a finding are put in order."""
    found: dict[str, list[dict[str, Any]]] = {}
    ended: set[str] = set()
    for row in ctx.audit:
        if row.table != "runs":
            continue
        run_id = row.key
        old, new = row.old or {}, row.new or {}
        if row.action == "update" and old.get("status") in TERMINAL:
            changed = [f for f in _FINAL_FIELDS if old.get(f) != new.get(f)]
            if changed:
                found.setdefault(run_id, []).append(
                    {
                        "source": "audit",
                        "run_id": run_id,
                        "seq": row.seq,
                        "at": row.at,
                        "changed": changed,
                        "old": old,
                        "new": new,
                    }
                )
        if (
            row.new is not None
            and "status" in new
            and "completed_at" in new
            # completed_at IS NULL exactly while running, broken
            and (new["status"] == "running") != (new["completed_at"] is None)
        ):
            found.setdefault(run_id, []).append(
                {
                    "source": "audit",
                    "run_id": run_id,
                    "seq": row.seq,
                    "why": "completed_at set iff not running is broken",
                    "new": new,
                }
            )
        if run_id not in ended and new.get("status") in TERMINAL:
            ended.add(run_id)
    return [b for run_id in _first_seen_order(ctx, found) for b in found[run_id]], len(ended)


def _first_seen_order(ctx: CheckContext, run_ids: dict[str, Any]) -> list[str]:
    """These run ids in the order of their first audit row (the order of
    :attr:`CheckContext.audit_by_table`, by which findings are listed)."""
    order: dict[str, None] = {}  # a dict keeps its keys in insertion order
    if run_ids:
        for row in ctx.audit:
            if row.table == "runs" and row.key in run_ids:
                order.setdefault(row.key)
    return list(order)


def _snapshot_findings(ctx: CheckContext) -> tuple[list[dict[str, Any]], int]:
    bad: list[dict[str, Any]] = []
    first_terminal: dict[str, tuple[tuple[object, ...], float]] = {}
    reobserved = 0
    prefix = ctx.params.test_prefix
    last = len(ctx.snapshots) - 1
    for k, snap in enumerate(ctx.snapshots):
        for row in snap.runs:
            # run_in_scope, spelled out: a soak's snapshots hold millions of rows
            if (
                prefix
                and not (row.agent_id or "").startswith(prefix)
                and not (row.user_id or "").startswith(prefix)
            ):
                continue
            if (row.status == "running") != (row.completed_at is None):
                bad.append(
                    {
                        "source": "snapshot",
                        "run_id": row.run_id,
                        "mono": snap.mono,
                        "status": row.status,
                        "completed_at": row.completed_at,
                        "why": "completed_at set iff not running is broken",
                    }
                )
            seen = first_terminal.get(row.run_id)
            if seen is None:
                # the last snapshot's first sightings are never looked up again
                if k != last and row.status in TERMINAL:
                    first_terminal[row.run_id] = (_final_fields(row), snap.mono)
                continue
            reobserved += 1
            if _final_fields(row) != seen[0]:
                bad.append(
                    {
                        "source": "snapshot",
                        "run_id": row.run_id,
                        "first_terminal_mono": seen[1],
                        "was": list(seen[0]),
                        "mono": snap.mono,
                        "now": list(_final_fields(row)),
                    }
                )
    return bad, reobserved


def check(ctx: CheckContext) -> Verdict:
    audit_bad, audited = _audit_findings(ctx)
    snap_bad, reobserved = _snapshot_findings(ctx)
    bad = audit_bad + snap_bad
    if bad:
        rows = {b["run_id"] for b in bad}
        return Verdict.failed(
            INVARIANT,
            f"{len(rows)} runs changed after ending or broke the completed_at rule",
            ctx.fault_windows,
            offenders=capped(bad, ctx.params.evidence_limit),
            offender_count=len(bad),
            history={
                r: ctx.excerpt(ctx.final_runs[r].agent_id, 6)
                for r in sorted(rows)[:5]
                if r in ctx.final_runs
            },
        )
    if not audited and not reobserved:
        return Verdict.vacuous(
            INVARIANT,
            "no terminal row was ever observed again after it ended (no audit log, no two "
            "snapshots showing one run terminal)",
            snapshots=len(ctx.snapshots),
            audit_rows=len(ctx.audit),
        )
    return Verdict.passed(
        INVARIANT,
        f"no terminal row changed ({audited} runs covered by the audit log, "
        f"{reobserved} terminal re-observations in snapshots)",
        audited_terminal_runs=audited,
        snapshot_reobservations=reobserved,
    )
