"""no_silent_regressions: "completed" must mean the work was done.

- Every ``completed`` run has its ``done`` event: in the database's events
  table when the scenario read it (``done_events`` note), else as the client
  saw it.  A completed run whose client stream was cut, with no database
  events read, cannot be judged and is only counted.
- Every completed circuit (all its runs ``completed``) has its three memory
  outputs, non-empty, read back into a ``circuit_outputs`` note; a missing
  note means the outputs were never found.  A scored output carrying a
  ``score`` must lie in ``params.circuit_score_range``.

Circuits are the runs whose ``start_run`` invoke carries ``circuit`` (the
circuit id, e.g. ``c7``).
"""

from __future__ import annotations

import json
from typing import Any

from chaos.checks.context import CheckContext
from chaos.checks.evidence import capped
from chaos.record.readers import circuit_output_keys
from chaos.verdict import Verdict

INVARIANT = "no_silent_regressions"


def _missing_done(ctx: CheckContext) -> tuple[list[dict[str, Any]], int, int]:
    db_done = ctx.done_event_run_ids
    missing: list[dict[str, Any]] = []
    verified = unverifiable = 0
    for row in ctx.final_runs.values():
        if row.status != "completed":
            continue
        if db_done is not None:
            ok = row.run_id in db_done
            source = "events table"
        else:
            client = ctx.client_by_run_id.get(row.run_id)
            if client is None or client.outcome != "ok":
                unverifiable += 1
                continue
            ok, source = client.got_done, "client stream"
        if ok:
            verified += 1
        else:
            missing.append(
                {
                    "run_id": row.run_id,
                    "agent_id": row.agent_id,
                    "source": source,
                    "history": ctx.excerpt(row.agent_id, 6),
                }
            )
    return missing, verified, unverifiable


def _score(value: Any) -> float | None:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if isinstance(value, dict) and isinstance(value.get("score"), int | float):
        return float(value["score"])
    return None


def _circuit_problems(ctx: CheckContext) -> tuple[list[dict[str, Any]], int]:
    # One circuit instance per (circuit id, user): ids are reused by later waves.
    members: dict[tuple[str, str | None], set[str]] = {}
    for run in ctx.client_runs:
        if run.circuit is not None and ctx.run_in_scope(run.agent_id, run.user_id):
            members.setdefault((run.circuit, run.user_id), set()).add(run.agent_id)
    bad: list[dict[str, Any]] = []
    completed = 0
    lo, hi = ctx.params.circuit_score_range or (float("-inf"), float("inf"))
    for (cid, user), agent_set in sorted(
        members.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")
    ):
        agents = sorted(agent_set)
        rows = [r for a in agents for r in ctx.final_by_agent.get(a, [])]
        if not rows or len(rows) < len(agents) or any(r.status != "completed" for r in rows):
            continue
        completed += 1
        outputs = ctx.outputs_of(cid, user)
        if outputs is None:
            bad.append(
                {
                    "circuit": cid,
                    "user_id": user,
                    "why": "outputs never read back",
                    "agents": agents,
                }
            )
            continue
        empty = [k for k in circuit_output_keys(cid) if outputs.get(k) in (None, "", {}, [])]
        score = _score(outputs.get(circuit_output_keys(cid)[2]))
        if empty:
            bad.append(
                {
                    "circuit": cid,
                    "why": "missing or empty outputs",
                    "keys": empty,
                    "history": ctx.excerpt(cid, 4),
                }
            )
        elif score is not None and not lo <= score <= hi:
            bad.append({"circuit": cid, "why": f"score {score} outside [{lo}, {hi}]"})
    return bad, completed


def check(ctx: CheckContext) -> Verdict:
    completed_runs = sum(1 for r in ctx.final_runs.values() if r.status == "completed")
    if completed_runs == 0:
        return Verdict.vacuous(INVARIANT, "no completed run in the final snapshot")
    missing, verified, unverifiable = _missing_done(ctx)
    circuits_bad, circuits_done = _circuit_problems(ctx)
    limit = ctx.params.evidence_limit
    if missing or circuits_bad:
        return Verdict.failed(
            INVARIANT,
            f"{len(missing)} completed runs without a done event, {len(circuits_bad)} "
            f"of {circuits_done} completed circuits without their outputs",
            ctx.fault_windows,
            missing_done=capped(missing, limit),
            missing_done_count=len(missing),
            circuits=capped(circuits_bad, limit),
            circuit_count=len(circuits_bad),
        )
    if verified == 0 and circuits_done == 0:
        return Verdict.vacuous(
            INVARIANT,
            f"{completed_runs} completed runs but none could be verified "
            "(no client saw its stream end, no events table read)",
            unverifiable=unverifiable,
        )
    return Verdict.passed(
        INVARIANT,
        f"{verified} completed runs have their done event ({unverifiable} unverifiable); "
        f"{circuits_done} completed circuits have their three outputs",
        verified=verified,
        unverifiable=unverifiable,
        circuits=circuits_done,
    )
