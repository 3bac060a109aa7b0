"""nothing_lost: the driver's runs and the database's runs are the same set.

Every run the driver saw accepted (its stream finished, or its ``agent`` event
with a run id arrived) must exist in the final snapshot; every run in the
final snapshot under the test prefix must belong to an agent id the driver
started, and carry a run id the driver was told, unless the driver started
that agent id without learning its run id (stream cut early, or refused with
a 5xx that carries no target code: a load balancer's 502 when the replica
died mid-admission, after it had written the row) or hit a 409
``agent_id_in_use`` on it (a collision writes its own failed row).
"""

from __future__ import annotations

from typing import Any

from chaos.checks.context import CheckContext
from chaos.checks.evidence import capped, row_brief
from chaos.verdict import Verdict

INVARIANT = "nothing_lost"


def _lost(ctx: CheckContext) -> list[dict[str, Any]]:
    lost = []
    for run, row in zip(ctx.client_runs, ctx.client_rows, strict=True):
        if row is not None or not run.accepted or not ctx.run_in_scope(run.agent_id, run.user_id):
            continue  # in the database, or not a run the database must hold
        if run.run_id is not None or run.agent_id not in ctx.final_by_agent:
            lost.append(
                {
                    "agent_id": run.agent_id,
                    "run_id": run.run_id,
                    "outcome": run.outcome,
                    "history": ctx.excerpt(run.agent_id, 6),
                }
            )
    return lost


def _phantoms(ctx: CheckContext) -> list[dict[str, Any]]:
    phantoms = []
    by_run_id = ctx.client_by_run_id
    for row in ctx.final_runs.values():
        told = by_run_id.get(row.run_id)
        if told is not None and told.agent_id == row.agent_id:
            continue  # a client of this agent id was told this run id: explained
        clients = ctx.client_by_agent.get(row.agent_id)
        if not clients:
            phantoms.append({**row_brief(row), "why": "the driver never started this agent id"})
            continue
        known_ids = {c.run_id for c in clients if c.run_id is not None}
        explained = (
            row.run_id in known_ids
            or any(c.run_id is None and (c.outcome != "fail" or c.maybe_admitted) for c in clients)
            or any(c.code == "agent_id_in_use" for c in clients)
        )
        if not explained:
            phantoms.append(
                {
                    **row_brief(row),
                    "driver_run_ids": sorted(known_ids),
                    "why": "a run id the driver was never told",
                }
            )
    return phantoms


def check(ctx: CheckContext) -> Verdict:
    if ctx.final_snapshot is None:
        return Verdict.vacuous(INVARIANT, "no database snapshot was recorded")
    accepted = sum(
        1 for r in ctx.client_runs if r.accepted and ctx.run_in_scope(r.agent_id, r.user_id)
    )
    if accepted == 0:
        return Verdict.vacuous(INVARIANT, "the driver saw no run accepted")
    lost, phantoms = _lost(ctx), _phantoms(ctx)
    limit = ctx.params.evidence_limit
    if lost or phantoms:
        return Verdict.failed(
            INVARIANT,
            f"{len(lost)} accepted runs missing from the database, "
            f"{len(phantoms)} database runs the driver never saw",
            ctx.fault_windows,
            lost=capped(lost, limit),
            lost_count=len(lost),
            phantoms=capped(phantoms, limit),
            phantom_count=len(phantoms),
        )
    return Verdict.passed(
        INVARIANT,
        f"{accepted} accepted runs all in the database; {len(ctx.final_runs)} database runs "
        "all started by the driver",
        accepted=accepted,
        db_runs=len(ctx.final_runs),
    )
