"""classify_cancel: every class the contract names, and what must stay 'unknown'."""

from __future__ import annotations

from typing import Any

import pytest

from chaos.record.vocabulary import CANCEL_CLASSES
from chaos.sut.loomcycle.cancel import classify_cancel

CASES: list[tuple[str, int, dict[str, Any], str | None, str]] = [
    # (case, http status, body, caller's reason, expected class)
    (
        "ack with caller reason",
        200,
        {"cancelled": True, "agent_id": "a", "reason": "chaos-cancel"},
        "chaos-cancel",
        "acknowledged",
    ),
    (
        "ack, no reason sent, none echoed",
        200,
        {"cancelled": True, "agent_id": "a"},
        None,
        "acknowledged",
    ),
    (
        "ack, no reason sent, default echoed",
        200,
        {"cancelled": True, "reason": "cancelled by api"},
        None,
        "acknowledged",
    ),
    (
        "ack with cascade",
        200,
        {"cancelled": True, "reason": "r", "cascaded": ["child-1"]},
        "r",
        "acknowledged",
    ),
    (
        "already completed",
        200,
        {"cancelled": False, "reason": "r", "status": "completed"},
        "r",
        "already_terminal",
    ),
    ("already failed", 200, {"cancelled": False, "status": "failed"}, "r", "already_terminal"),
    (
        "already cancelled",
        200,
        {"cancelled": False, "status": "cancelled"},
        None,
        "already_terminal",
    ),
    (
        "ended during ack wait (status word as reason)",
        200,
        {"cancelled": False, "reason": "completed"},
        "r",
        "already_terminal",
    ),
    (
        "owner unreachable",
        200,
        {"cancelled": False, "reason": "owner_replica_unreachable"},
        "r",
        "owner_unreachable",
    ),
    (
        "owner dead, cancelled true",
        200,
        {"cancelled": True, "reason": "owner_dead_marked_failed"},
        "r",
        "owner_dead",
    ),
    (
        "owner dead, cancelled false",
        200,
        {"cancelled": False, "reason": "owner_dead_marked_failed"},
        "r",
        "owner_dead",
    ),
    (
        "running on an owner that no longer holds it",
        200,
        {"cancelled": False, "reason": "r", "status": "running"},
        "r",
        "running_elsewhere",
    ),
    # Violations: everything the contract does not describe.
    (
        "ack echoing someone else's reason",
        200,
        {"cancelled": True, "reason": "other"},
        "r",
        "unknown",
    ),
    (
        "ack echoing a reason nobody sent",
        200,
        {"cancelled": True, "reason": "other"},
        None,
        "unknown",
    ),
    (
        "unreachable yet cancelled",
        200,
        {"cancelled": True, "reason": "owner_replica_unreachable"},
        "r",
        "unknown",
    ),
    (
        "cluster mode, already ended: caller's reason echoed, no status",
        200,
        {"cancelled": False, "agent_id": "a", "reason": "r"},
        "r",
        "already_terminal",
    ),
    (
        "cluster mode, already ended, no reason sent",
        200,
        {"cancelled": False, "agent_id": "a"},
        None,
        "already_terminal",
    ),
    (
        "not cancelled, someone else's reason, no status",
        200,
        {"cancelled": False, "reason": "other"},
        "r",
        "unknown",
    ),
    ("not cancelled, no reason echoed", 200, {"cancelled": False}, "r", "unknown"),
    ("not cancelled, odd status", 200, {"cancelled": False, "status": "queued"}, "r", "unknown"),
    ("cancelled missing", 200, {"agent_id": "a"}, "r", "unknown"),
    ("cancelled not a bool", 200, {"cancelled": "true"}, "r", "unknown"),
    ("404 unknown id", 404, {"code": "unknown_agent_id"}, "r", "not_found"),
    (
        "404 unknown id, v1.59.0's body (not JSON)",
        404,
        {"raw": '{"code":"unknown_agent_id","error":"no run found for agent_id "a1""}'},
        "r",
        "not_found",
    ),
    ("404 of another kind", 404, {"code": "no_route"}, "r", "unknown"),
    ("404 without a body", 404, {"raw": "not found"}, "r", "unknown"),
    ("500", 500, {"raw": "boom"}, "r", "unknown"),
]


@pytest.mark.parametrize(
    ("status", "body", "reason", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_classify_cancel(
    status: int, body: dict[str, Any], reason: str | None, expected: str
) -> None:
    assert classify_cancel(status, body, reason) == expected


def test_every_class_is_reachable() -> None:
    """The table covers every class, so none is dead vocabulary."""
    assert {c[4] for c in CASES} == CANCEL_CLASSES
