"""The target's terminal states (CONTRACT.md, "Terminal states and who writes them").

The one place the checkers know the target's stop-reason and error words; a
target with other words changes this module only.
"""

from __future__ import annotations

from chaos.record.vocabulary import RunRow

REPLICA_DIED = "replica_died"
REPLICA_DIED_ERROR = "owner replica died"
OWNER_DEAD = "owner_replica_dead"
OWNER_DEAD_ERROR = "owner replica heartbeat stale"
HEARTBEAT_TIMEOUT = "heartbeat_timeout"
HEARTBEAT_TIMEOUT_ERROR = "heartbeat timeout"
CANCELLED_BY_API = "cancelled by api"
CLIENT_DISCONNECTED = "client disconnected"
PARENT_CANCELLED = "parent run cancelled"

#: Stop reasons written when the owner is judged dead (sweeper or cancel path).
REAP_REASONS: frozenset[str] = frozenset({REPLICA_DIED, OWNER_DEAD})

_FAILED_WITH_REASON = {
    REPLICA_DIED: REPLICA_DIED_ERROR,
    OWNER_DEAD: OWNER_DEAD_ERROR,
    HEARTBEAT_TIMEOUT: HEARTBEAT_TIMEOUT_ERROR,
}


def in_terminal_table(row: RunRow) -> bool:
    """Whether (status, stop_reason, error) is a row some writer in the contract produces."""
    status, reason, error = row.status, row.stop_reason, row.error
    if status in ("completed", "cancelled"):
        return bool(reason) and error is None
    if status == "failed":
        if reason is None:
            return bool(error)
        expected = _FAILED_WITH_REASON.get(reason)
        return expected is not None and (error or "").startswith(expected)
    return False
