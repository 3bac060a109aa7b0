"""Helpers for targets whose state lives in Postgres (loomcycle, and the test-only toy).

Escaping a test prefix for ``LIKE``, reading a timestamp as epoch seconds,
and building :mod:`chaos.record.vocabulary` rows from records whose columns
are named like the rows' fields (with the run's and replica's key as ``id``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chaos.record.vocabulary import QuotaRow, ReplicaRow, RunRow


def like_prefix(prefix: str) -> str:
    r"""A LIKE pattern matching strings that start with ``prefix`` literally.

    ``_`` is a LIKE wildcard and is common in our ids, so it (and ``%`` and
    the escape character ``\``) must be escaped, or prefix ``t1_a`` would
    also match ``t1xa...``, another test's rows.
    """
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def epoch(column: str) -> str:
    return f"extract(epoch FROM {column})::float8 AS {column}"


def run_from(rec: Mapping[str, Any]) -> RunRow:
    return RunRow(
        run_id=rec["id"],
        agent_id=rec["agent_id"],
        user_id=rec["user_id"],
        replica_id=rec["replica_id"],
        status=rec["status"],
        stop_reason=rec["stop_reason"],
        error=rec["error"],
        started_at=rec["started_at"],
        completed_at=rec["completed_at"],
        last_heartbeat_at=rec["last_heartbeat_at"],
    )


def replica_from(rec: Mapping[str, Any]) -> ReplicaRow:
    return ReplicaRow(
        replica_id=rec["id"],
        started_at=rec["started_at"],
        last_heartbeat_at=rec["last_heartbeat_at"],
    )


def quota_from(rec: Mapping[str, Any]) -> QuotaRow:
    return QuotaRow(user_id=rec["user_id"], active_count=int(rec["active_count"]))
