"""bounded_recovery: the cluster heals within its documented bounds.

- Reaping: for every ``kill`` fault, each run its replica owned at the kill
  must end (audit transition time, else ``completed_at``, else the first
  snapshot showing it terminal) and the replica's ``replicas`` row must be
  deleted (audit delete, else the first snapshot without it) within
  stale + sweep + margin of the fault window's start.  A run still running
  at a final snapshot taken past that bound fails; one taken earlier cannot
  judge it.  A row replaced by a restarted process (same id, newer
  started_at) has no deletion to time and is skipped.
- Cancels: a cancel to a healthy owner (no fault on the owner, the replica
  asked, or cluster-wide, from listen_recovery_s before the call to its end)
  is acknowledged within the ack timeout + margin;
  ``owner_replica_unreachable`` from a healthy owner fails.

Reported: n / p50 / p99 / max of reap times, row deletion times and ack
latencies.  A p99 over fewer than ``min_p99_samples`` is shown, never judged;
``ack_p99_bound_s`` (optional) is judged only with enough samples.
"""

from __future__ import annotations

from typing import Any

from chaos.checks.context import CancelCall, CheckContext
from chaos.checks.evidence import capped, distribution, unique_windows
from chaos.record.history import FaultWindow
from chaos.record.vocabulary import FAULT_KILL, RunRow
from chaos.verdict import Verdict

INVARIANT = "bounded_recovery"


def _runs_by_owner(ctx: CheckContext) -> dict[str, list[RunRow]]:
    out: dict[str, list[RunRow]] = {}
    for row in ctx.final_runs.values():
        out.setdefault(row.replica_id or "", []).append(row)
    return out


def _owned_at(ctx: CheckContext, rows: list[RunRow], kill_wall: float) -> list[RunRow]:
    """Runs the killed process held: started before the kill, not ended on their own first."""
    slack = ctx.params.clock_slack_s
    return [
        r
        for r in rows
        if r.started_at is not None
        and r.started_at <= kill_wall
        and (
            not r.terminal
            or r.stop_reason in ctx.params.terminal.reap_reasons
            or (r.completed_at is not None and r.completed_at > kill_wall + slack)
        )
    ]


def _row_deleted_at(ctx: CheckContext, replica: str, kill_wall: float) -> tuple[float, str] | None:
    slack = ctx.params.clock_slack_s
    for audit in ctx.audit_rows("replicas", replica):
        if audit.action == "delete" and audit.at >= kill_wall - slack:
            return audit.at, "audit"
    for snap in ctx.snapshots:
        if snap.wall < kill_wall:
            continue
        rows = [r for r in snap.replicas if r.replica_id == replica]
        if not rows:
            return snap.wall, "snapshot"
        if rows[0].started_at is not None and rows[0].started_at > kill_wall:
            return None  # replaced by a restarted process: nothing to time
    return None


def _judge_kill(
    ctx: CheckContext,
    w: FaultWindow,
    owned: list[RunRow],
    reaps: list[float],
    deletions: list[float],
    bad: list[dict[str, Any]],
) -> int:
    """Adds this kill's samples and offenders; returns how many items could not be judged."""
    bound = ctx.params.reap_bound_s + ctx.params.reap_margin_s
    final_wall = ctx.final_snapshot.wall if ctx.final_snapshot else w.start_wall
    unjudged = 0
    for row in owned:
        ended = ctx.terminal_transition_wall(row.run_id) if row.terminal else None
        if ended is None:
            if final_wall - w.start_wall > bound:
                bad.append(
                    {
                        "kill": w.describe(),
                        "run_id": row.run_id,
                        "status": row.status,
                        "why": f"not reaped {final_wall - w.start_wall:.1f}s after the kill "
                        f"(bound {bound:.1f}s)",
                    }
                )
            else:
                unjudged += 1
            continue
        took = ended[0] - w.start_wall
        reaps.append(took)
        if took > bound:
            bad.append(
                {
                    "kill": w.describe(),
                    "run_id": row.run_id,
                    "reaped_after_s": round(took, 3),
                    "source": ended[1],
                    "bound_s": bound,
                }
            )
    deleted = _row_deleted_at(ctx, w.target, w.start_wall)
    if deleted is None:
        still = ctx.final_snapshot is not None and any(
            r.replica_id == w.target and (r.started_at or 0) <= w.start_wall
            for r in ctx.final_snapshot.replicas
        )
        if still and final_wall - w.start_wall > bound:
            bad.append(
                {
                    "kill": w.describe(),
                    "replica_row": w.target,
                    "why": f"row still present {final_wall - w.start_wall:.1f}s after the kill",
                }
            )
        elif still:
            unjudged += 1
    else:
        took = deleted[0] - w.start_wall
        deletions.append(took)
        if took > bound:
            bad.append(
                {
                    "kill": w.describe(),
                    "replica_row": w.target,
                    "deleted_after_s": round(took, 3),
                    "source": deleted[1],
                    "bound_s": bound,
                }
            )
    return unjudged


def _owner_of(ctx: CheckContext, call: CancelCall) -> str | None:
    for run in reversed(ctx.client_by_agent.get(call.agent_id, [])):
        row = ctx.row_for(run)
        if row is not None and row.replica_id:
            return row.replica_id
        if run.replica_id:
            return run.replica_id
    return None


def _judge_cancels(ctx: CheckContext, acks: list[float], bad: list[dict[str, Any]]) -> None:
    p = ctx.params
    limit = p.cancel_ack_timeout_s + p.cancel_ack_margin_s
    for call in ctx.cancels:
        if call.outcome != "ok" or call.end is None:
            continue
        owner = _owner_of(ctx, call)
        if owner is None:
            continue
        faults = ctx.faults_touching((owner, call.via), call.start - p.listen_recovery_s, call.end)
        if faults:
            continue
        if call.classification == "acknowledged":
            acks.append(call.end - call.start)
            if call.end - call.start > limit:
                bad.append(
                    {
                        "cancel_agent_id": call.agent_id,
                        "owner": owner,
                        "via": call.via,
                        "latency_s": round(call.end - call.start, 3),
                        "bound_s": limit,
                    }
                )
        elif call.classification == "owner_unreachable":
            bad.append(
                {
                    "cancel_agent_id": call.agent_id,
                    "owner": owner,
                    "via": call.via,
                    "why": "owner_replica_unreachable while the owner was healthy",
                    "latency_s": round(call.end - call.start, 3),
                    "history": ctx.excerpt(call.agent_id, 6),
                }
            )


def check(ctx: CheckContext) -> Verdict:
    p = ctx.params
    by_owner = _runs_by_owner(ctx)
    reaps: list[float] = []
    deletions: list[float] = []
    acks: list[float] = []
    bad: list[dict[str, Any]] = []
    unjudged = 0
    kills = [w for w in ctx.fault_windows if w.name == FAULT_KILL]
    for w in kills:
        owned = _owned_at(ctx, by_owner.get(w.target, []), w.start_wall)
        unjudged += _judge_kill(ctx, w, owned, reaps, deletions, bad)
    _judge_cancels(ctx, acks, bad)
    stats: dict[str, Any] = {
        "reap_s": distribution(reaps, p.min_p99_samples),
        "replica_row_deleted_s": distribution(deletions, p.min_p99_samples),
        "cancel_ack_s": distribution(acks, p.min_p99_samples),
        "reap_bound_s": p.reap_bound_s + p.reap_margin_s,
        "ack_bound_s": p.cancel_ack_timeout_s + p.cancel_ack_margin_s,
        "unjudged": unjudged,
    }
    ack_stats: dict[str, Any] = stats["cancel_ack_s"]
    if (
        p.ack_p99_bound_s is not None
        and ack_stats.get("p99_judged")
        and ack_stats["p99"] > p.ack_p99_bound_s
    ):
        bad.append(
            {
                "why": f"cancel ack p99 {ack_stats['p99']}s above {p.ack_p99_bound_s}s",
                "n": ack_stats["n"],
            }
        )
    if bad:
        return Verdict.failed(
            INVARIANT,
            f"{len(bad)} recoveries outside their bounds",
            unique_windows(kills),
            offenders=capped(bad, p.evidence_limit),
            offender_count=len(bad),
            **stats,
        )
    if not (reaps or deletions or acks):
        return Verdict.vacuous(
            INVARIANT,
            "no reap, replica-row deletion or healthy cancel ack to time "
            f"({len(kills)} kills, {len(ctx.cancels)} cancels)",
            **stats,
        )
    return Verdict.passed(
        INVARIANT,
        f"{len(reaps)} reaps, {len(deletions)} row deletions, {len(acks)} cancel acks "
        "within bounds",
        **stats,
    )
