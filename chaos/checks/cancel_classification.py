"""cancel_classification: every cancel response is one the suite understands.

The client classifies each cancel response (:data:`chaos.record.vocabulary.CANCEL_CLASSES`).
Known races (``already_terminal``, ``owner_dead``, ``running_elsewhere``,
``owner_unreachable``) never fail here (bounded_recovery judges whether an
unreachable owner was really unhealthy); ``unknown``, a missing or foreign
class, or a class that contradicts the body's ``cancelled`` flag fails.
Cancels with no response (``info``) or an HTTP error (``fail``) are counted;
an HTTP error classified ``unknown`` fails.  ``not_found`` (404 ``unknown_agent_id``,
which the contract documents for an unknown id) is understood only while the agent had
no run: it fails when a snapshot or the audit log shows a run of that agent before the
cancel was sent (less ``clock_slack_s``), since then the target lost track of a run it
had.  A cancel of a run whose start still waited for a slot meets it (the live state
machine's deep profile did, 2026-12-02).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from chaos.checks.context import CancelCall, CheckContext
from chaos.checks.evidence import capped
from chaos.record.vocabulary import CANCEL_CLASSES
from chaos.verdict import Verdict

INVARIANT = "cancel_classification"

#: The ``cancelled`` flag each class implies (``None``: either is possible).
_IMPLIED_FLAG: dict[str, bool | None] = {
    "acknowledged": True,
    "already_terminal": False,
    "owner_unreachable": False,
    "owner_dead": None,
    "running_elsewhere": False,
    "not_found": None,
    "unknown": None,
}


def _problem(call: CancelCall, existed_at: float | None, slack_s: float) -> str | None:
    """What is wrong with ``call``; ``existed_at``: when a run of its agent is first
    known to exist (monotonic), for a ``not_found``."""
    cls = call.classification
    if cls == "not_found":
        if call.outcome == "ok":
            return "classified not_found with a 200 answer"
        if existed_at is not None and existed_at < call.start - slack_s:
            return (
                f"404 unknown_agent_id, but a run of it existed {call.start - existed_at:.1f}s "
                "before the cancel was sent"
            )
        return None
    if call.outcome != "ok":
        return "an HTTP error classified unknown" if cls == "unknown" else None
    if cls is None:
        return "response not classified"
    if cls not in CANCEL_CLASSES:
        return f"classification {cls!r} is not one of {sorted(CANCEL_CLASSES)}"
    if cls == "unknown":
        return "response classified unknown"
    implied = _IMPLIED_FLAG[cls]
    if implied is not None and call.cancelled is not None and call.cancelled != implied:
        return f"classified {cls} but the body says cancelled={call.cancelled}"
    return None


def first_seen(ctx: CheckContext, agents: set[str]) -> dict[str, float]:
    """Of ``agents``, when a run of each is first known to exist (monotonic): its row's
    audit insert (the database clock, mapped) or the first snapshot that shows it."""
    seen: dict[str, float] = {}
    if not agents:
        return seen
    for snap in ctx.snapshots:
        for row in snap.runs:
            if row.agent_id in agents and row.agent_id not in seen:
                seen[row.agent_id] = snap.mono
    for audit in ctx.audit:
        if audit.table != "runs" or audit.action != "insert" or not audit.new:
            continue
        agent = audit.new.get("agent_id")
        if isinstance(agent, str) and agent in agents:
            at = ctx.to_mono(audit.at)
            seen[agent] = min(at, seen.get(agent, at))
    return seen


def check(ctx: CheckContext) -> Verdict:
    if not ctx.cancels:
        return Verdict.vacuous(INVARIANT, "no cancel was sent")
    classes: Counter[str] = Counter()
    bad: list[dict[str, Any]] = []
    existed = first_seen(ctx, {c.agent_id for c in ctx.cancels if c.classification == "not_found"})
    for call in ctx.cancels:
        if call.outcome == "ok":
            classes[call.classification or "(none)"] += 1
        else:
            classes[f"({call.outcome or 'no completion'})"] += 1
        why = _problem(call, existed.get(call.agent_id), ctx.params.clock_slack_s)
        if why is not None:
            bad.append(
                {
                    "agent_id": call.agent_id,
                    "via": call.via,
                    "why": why,
                    "response": {
                        "cancelled": call.cancelled,
                        "reason": call.response_reason,
                        "status": call.response_status,
                    },
                    "history": ctx.excerpt(call.agent_id, 6),
                }
            )
    if bad:
        return Verdict.failed(
            INVARIANT,
            f"{len(bad)} of {len(ctx.cancels)} cancel responses not understood",
            offenders=capped(bad, ctx.params.evidence_limit),
            offender_count=len(bad),
            classes=dict(classes),
        )
    return Verdict.passed(
        INVARIANT, f"{len(ctx.cancels)} cancels, all classified", classes=dict(classes)
    )
