"""one_truth: the client, the database and the cluster tell one story.

- A run whose client received ``done`` is ``completed`` in the database, with
  the stop reason the client saw; a run whose client received ``error`` is
  not ``completed``.
- A replica that was never killed, stopped or restarted is never reaped: a
  row failed with replica_died / owner_replica_dead whose owner had no such
  fault before the row ended is split brain.  Frozen or cut-off replicas
  count as alive: a freeze or a cut past the stale threshold that gets a live
  replica's runs reaped is reported here, even though the stop reason itself
  fits that cause.
"""

from __future__ import annotations

from typing import Any

from chaos.checks.context import CheckContext
from chaos.checks.evidence import capped, row_brief, unique_windows
from chaos.record.history import FaultWindow
from chaos.record.vocabulary import DEATH_FAULTS, FAULT_RESTART, RunRow
from chaos.verdict import Verdict

INVARIANT = "one_truth"


def _owner_died_before(ctx: CheckContext, row: RunRow) -> bool:
    ended = float("inf") if row.completed_at is None else row.completed_at
    started = float("-inf") if row.started_at is None else row.started_at
    slack = ctx.params.clock_slack_s
    return any(
        (w.name in DEATH_FAULTS or w.name == FAULT_RESTART)
        and started - slack <= w.start_wall <= ended + slack
        for w in ctx.faults_by_replica.get(row.replica_id or "", [])
    )


def _client_vs_db(ctx: CheckContext) -> tuple[list[dict[str, Any]], int]:
    bad: list[dict[str, Any]] = []
    judged = 0
    for run, row in zip(ctx.client_runs, ctx.client_rows, strict=True):
        if not (run.got_done or run.got_error):
            continue
        judged += 1
        if row is None:
            continue  # nothing_lost reports the missing row
        if run.got_done and (
            row.status != "completed"
            or (run.done_stop_reason is not None and row.stop_reason != run.done_stop_reason)
        ):
            bad.append(
                {
                    **row_brief(row),
                    "client_saw": f"done ({run.done_stop_reason})",
                    "history": ctx.excerpt(run.agent_id, 6),
                }
            )
        elif run.got_error and row.status == "completed":
            bad.append(
                {
                    **row_brief(row),
                    "client_saw": f"error ({run.error})",
                    "history": ctx.excerpt(run.agent_id, 6),
                }
            )
    return bad, judged


def check(ctx: CheckContext) -> Verdict:
    mismatched, judged = _client_vs_db(ctx)
    reaped = [
        r
        for r in ctx.final_runs.values()
        if r.status == "failed" and r.stop_reason in ctx.params.terminal.reap_reasons
    ]
    split_brain = [r for r in reaped if not _owner_died_before(ctx, r)]
    if not judged and not reaped:
        return Verdict.vacuous(
            INVARIANT, "no client saw a run end and no run was reaped: nothing to compare"
        )
    limit = ctx.params.evidence_limit
    if mismatched or split_brain:
        windows: list[FaultWindow] = []
        for r in split_brain[:limit]:
            windows += ctx.faults_by_replica.get(r.replica_id or "", [])
        return Verdict.failed(
            INVARIANT,
            f"{len(mismatched)} runs where the client and the database disagree, "
            f"{len(split_brain)} runs reaped from an owner that was never killed",
            unique_windows(windows),
            client_db_mismatch=capped(mismatched, limit),
            mismatch_count=len(mismatched),
            reaped_live_owner=[
                {
                    **row_brief(r),
                    "owner_faults": [
                        w.describe() for w in ctx.faults_by_replica.get(r.replica_id or "", [])
                    ],
                }
                for r in split_brain[:limit]
            ],
            reaped_live_owner_count=len(split_brain),
        )
    return Verdict.passed(
        INVARIANT,
        f"{judged} client-seen ends agree with the database; {len(reaped)} reaped runs all "
        "had a killed owner",
        client_ends=judged,
        reaped=len(reaped),
    )
