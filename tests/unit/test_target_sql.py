"""The state reader's pure parts: LIKE escaping, row conversion, column comparison."""

from __future__ import annotations

import re
from typing import Any

import pytest

from chaos.record.vocabulary import QuotaRow, ReplicaRow, RunRow
from chaos.sut.loomcycle.sql import (
    CONTRACT_COLUMNS,
    LoomcycleStateReader,
    decode_payload,
    like_prefix,
    missing_columns,
)


def like(pattern: str, value: str) -> bool:
    r"""Postgres LIKE with ESCAPE '\', for checking our patterns without a server."""
    regex, i = "", 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 1
            regex += re.escape(pattern[i])
        elif ch == "%":
            regex += ".*"
        elif ch == "_":
            regex += "."
        else:
            regex += re.escape(ch)
        i += 1
    return re.fullmatch(regex, value, re.DOTALL) is not None


@pytest.mark.parametrize(
    ("prefix", "value", "matches"),
    [
        ("t1_a", "t1_a-w0-1", True),
        ("t1_a", "t1xa-w0-1", False),  # '_' must not be a wildcard
        ("t1%", "t1%zz", True),
        ("t1%", "t1zz", False),  # '%' must not be a wildcard
        ("t1\\", "t1\\x", True),
        ("t1\\", "t1x", False),
        ("abc", "ab", False),
    ],
)
def test_like_prefix_matches_only_the_literal_prefix(
    prefix: str, value: str, matches: bool
) -> None:
    assert like(like_prefix(prefix), value) is matches


class FakeDB:
    """Answers each query with canned rows and records what was asked."""

    def __init__(self, rows: list[dict[str, Any]], value: Any = None) -> None:
        self.rows = rows
        self.value = value
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    async def fetch(self, query: str, *args: Any) -> list[Any]:
        self.calls.append((query, args))
        return self.rows

    async def fetchval(self, query: str, *args: Any) -> Any:
        self.calls.append((query, args))
        return self.value


async def test_runs_are_read_by_escaped_prefix_into_run_rows() -> None:
    row = {
        "id": "r_1",
        "agent_id": "t1_a-w0-1",
        "user_id": "t1_a-u1",
        "replica_id": "r2",
        "status": "failed",
        "stop_reason": "replica_died",
        "error": "owner replica died",
        "started_at": 10.0,
        "completed_at": 20.5,
        "last_heartbeat_at": 11.0,
    }
    db = FakeDB([row])
    runs = await LoomcycleStateReader(db).runs("t1_a")
    assert runs == [
        RunRow(
            "r_1",
            "t1_a-w0-1",
            "t1_a-u1",
            "r2",
            "failed",
            "replica_died",
            "owner replica died",
            10.0,
            20.5,
            11.0,
        )
    ]
    query, args = db.calls[0]
    assert args == ("t1\\_a%",)
    assert "FROM runs" in query and "ESCAPE" in query


async def test_replicas_quotas_state_and_clock() -> None:
    reader = LoomcycleStateReader(
        FakeDB([{"id": "r1", "started_at": 1.0, "last_heartbeat_at": 2.0}])
    )
    assert await reader.replicas() == [ReplicaRow("r1", 1.0, 2.0)]

    quotas_db = FakeDB(
        [{"user_id": "t1-u1", "active_count": 2}, {"user_id": "t1-u2", "active_count": 1}]
    )
    reader = LoomcycleStateReader(quotas_db)
    assert await reader.quotas("t1") == [QuotaRow("t1-u1", 2), QuotaRow("t1-u2", 1)]
    assert await reader.quota_total("t1") == 3
    assert quotas_db.calls[0][1] == ("t1%",)
    await reader.quotas()
    assert quotas_db.calls[-1][1] == (None,)

    assert await LoomcycleStateReader(FakeDB([], "paused")).runtime_state() == "paused"
    assert await LoomcycleStateReader(FakeDB([], None)).runtime_state() is None
    assert await LoomcycleStateReader(FakeDB([], 1700000000.25)).db_clock() == 1700000000.25


async def test_events_decode_bytea_json_payloads() -> None:
    rows = [
        {"seq": 1, "type": "text", "payload": b'{"text":"hi"}', "ts": 1.0},
        {"seq": 2, "type": "done", "payload": b"\xffnot json", "ts": 2.0},
    ]
    events = await LoomcycleStateReader(FakeDB(rows)).events("r_1")
    assert [e.payload for e in events] == [{"text": "hi"}, "\ufffdnot json"]
    assert decode_payload(None) is None


async def test_contract_columns_groups_by_table() -> None:
    rows = [
        {"table_name": "runs", "column_name": "id"},
        {"table_name": "runs", "column_name": "status"},
        {"table_name": "replicas", "column_name": "id"},
    ]
    db = FakeDB(rows)
    assert await LoomcycleStateReader(db).contract_columns() == {
        "runs": {"id", "status"},
        "replicas": {"id"},
    }
    assert set(db.calls[0][1][0]) == set(CONTRACT_COLUMNS)


def test_missing_columns_passes_on_the_full_schema() -> None:
    assert missing_columns({t: set(cols) for t, cols in CONTRACT_COLUMNS.items()}) == []


def test_missing_columns_names_each_gap() -> None:
    found = {t: set(cols) for t, cols in CONTRACT_COLUMNS.items()}
    found["runs"].discard("completed_at")
    found["user_quotas"].discard("tenant_id")
    del found["runtime_state"]
    assert missing_columns(found) == [
        "column runs.completed_at is missing",
        "column user_quotas.tenant_id is missing",
        "table runtime_state is missing",
    ]
