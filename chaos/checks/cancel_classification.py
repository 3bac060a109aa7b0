"""cancel_classification: every cancel response is one the suite understands.

The client classifies each cancel response (:data:`chaos.record.vocabulary.CANCEL_CLASSES`).
Known races (``already_terminal``, ``owner_dead``, ``running_elsewhere``,
``owner_unreachable``) never fail here (bounded_recovery judges whether an
unreachable owner was really unhealthy); ``unknown``, a missing or foreign
class, or a class that contradicts the body's ``cancelled`` flag fails.
Cancels with no response (``info``) or an HTTP error (``fail``) are counted;
an HTTP error classified ``unknown`` fails.
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
    "unknown": None,
}


def _problem(call: CancelCall) -> str | None:
    cls = call.classification
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


def check(ctx: CheckContext) -> Verdict:
    if not ctx.cancels:
        return Verdict.vacuous(INVARIANT, "no cancel was sent")
    classes: Counter[str] = Counter()
    bad: list[dict[str, Any]] = []
    for call in ctx.cancels:
        if call.outcome == "ok":
            classes[call.classification or "(none)"] += 1
        else:
            classes[f"({call.outcome or 'no completion'})"] += 1
        why = _problem(call)
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
