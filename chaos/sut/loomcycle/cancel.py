"""Classifying loomcycle's cancel answers (CONTRACT.md, "HTTP API", cancel).

``POST /v1/agents/{agent_id}/cancel`` always answers 200 for a known id, and
``cancelled: false`` is often the *expected* outcome: a run that ended while
the cancel was in flight is a race the contract calls normal.  A checker
cannot judge a raw body, so every answer is sorted into one
:data:`~chaos.record.vocabulary.CancelClass` here, next to the only code that knows the
body's fields.  Anything the contract does not describe is ``unknown``, which
the checkers always treat as a failure: a new reason word in a later release
must be looked at by a person, not silently accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chaos.record.vocabulary import TERMINAL, CancelClass

#: No ack from the owning replica within LOOMCYCLE_CANCEL_ACK_TIMEOUT_MS.
REASON_OWNER_UNREACHABLE = "owner_replica_unreachable"
#: The owner was judged dead (heartbeat older than 90 s); the run was marked failed.
REASON_OWNER_DEAD = "owner_dead_marked_failed"
#: The 404 code of an agent id with no run (also ``contract.UNKNOWN_AGENT_CODE``).
UNKNOWN_AGENT_CODE = "unknown_agent_id"
#: What the run's stop_reason says when the caller gave no reason.
DEFAULT_CANCEL_REASON = "cancelled by api"


def _acknowledges(reason: object, caller_reason: str | None) -> bool:
    """Whether ``reason`` is the echo a successful cancel gives for this caller."""
    if caller_reason:
        return reason == caller_reason
    # No reason sent: the target may echo nothing, an empty string or its default.
    return reason in (None, "", DEFAULT_CANCEL_REASON)


def _unknown_agent(body: Mapping[str, Any]) -> bool:
    """The 404 body names ``unknown_agent_id`` (v1.59.0 prints it with Go's ``%q`` inside a
    JSON string, so it usually reaches us undecoded, as ``raw`` text)."""
    return body.get("code") == UNKNOWN_AGENT_CODE or (
        f'"code":"{UNKNOWN_AGENT_CODE}"' in str(body.get("raw", ""))
    )


def classify_cancel(
    http_status: int, body: Mapping[str, Any], caller_reason: str | None
) -> CancelClass:
    """Sort one cancel answer into a :data:`~chaos.record.vocabulary.CancelClass`.

    ``body`` is the decoded JSON object (empty when the body was not JSON);
    ``caller_reason`` is the reason the suite sent, or ``None``.
    """
    if http_status == 404 and _unknown_agent(body):
        # CONTRACT.md: 404 for an unknown id.  A run not admitted yet (its start still
        # waiting for a slot) has no row: the checker judges it against the rows.
        return "not_found"
    if http_status != 200:
        return "unknown"
    cancelled = body.get("cancelled")
    if not isinstance(cancelled, bool):
        return "unknown"
    reason = body.get("reason")
    status = body.get("status")

    # The dead-owner short-circuit reports cancelled=true although the run
    # ended failed, not cancelled; it is its own class whatever the flag says.
    if reason == REASON_OWNER_DEAD:
        return "owner_dead"
    if reason == REASON_OWNER_UNREACHABLE:
        return "unknown" if cancelled else "owner_unreachable"
    if cancelled:
        return "acknowledged" if _acknowledges(reason, caller_reason) else "unknown"
    # cancelled=false from here on.
    if status in TERMINAL:  # the store fallback (single replica, or a DB error on the way)
        return "already_terminal"
    # Cluster mode, terminal row: CancelRemote answers {cancelled:false, reason:<the
    # caller's reason>} with no status (loomcycle v1.59.0 internal/coord/
    # cancel_coordinator.go:145-147); with no reason sent, the reason is omitted.
    if status is None and _acknowledges(reason, caller_reason):
        return "already_terminal"
    # After an ack timeout the coordinator re-reads the row and, when the run
    # ended meanwhile, answers with the terminal status word as the reason.
    if reason in TERMINAL:
        return "already_terminal"
    if status == "running":
        return "running_elsewhere"
    return "unknown"
