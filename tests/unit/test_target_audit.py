"""The audit trigger SQL and row conversion (no database; see tests/chaos for one)."""

from __future__ import annotations

from typing import Any

import pytest

from chaos.sut.loomcycle.audit import (
    AUDITED,
    audit_row_from,
    install_statements,
    read_audit,
    uninstall_statements,
)


def test_install_creates_table_function_and_one_trigger_per_table() -> None:
    stmts = install_statements()
    assert stmts[0].startswith("SELECT pg_advisory_xact_lock")
    assert "CREATE TABLE IF NOT EXISTS loomchaos_audit" in stmts[1]
    assert "CREATE OR REPLACE FUNCTION loomchaos_audit_row()" in stmts[2]
    creates = [s for s in stmts if s.startswith("CREATE TRIGGER")]
    assert len(creates) == len(AUDITED) == 3
    quota = next(s for s in creates if " ON user_quotas " in s)
    assert "AFTER INSERT OR UPDATE OR DELETE" in quota
    assert "loomchaos_audit_row('tenant_id', 'user_id')" in quota
    # idempotent: each trigger is dropped before it is created
    for table in AUDITED:
        assert f"DROP TRIGGER IF EXISTS loomchaos_audit_{table} ON {table}" in stmts


def test_uninstall_touches_only_existing_tables_and_keeps_rows_by_default() -> None:
    stmts = uninstall_statements(["runs"], drop_table=False)
    assert "DROP TRIGGER IF EXISTS loomchaos_audit_runs ON runs" in stmts
    assert not any("ON replicas" in s for s in stmts)
    assert not any("DROP TABLE" in s for s in stmts)
    assert "DROP TABLE IF EXISTS loomchaos_audit" in uninstall_statements([], drop_table=True)


def test_audit_row_from_decodes_json_images() -> None:
    row = audit_row_from(
        {
            "seq": 7,
            "tbl": "runs",
            "action": "update",
            "key": "r_1",
            "old": '{"status": "running"}',
            "new": '{"status": "completed"}',
            "at": 12.5,
        }
    )
    assert (row.seq, row.table, row.action, row.key, row.at) == (7, "runs", "update", "r_1", 12.5)
    assert row.old == {"status": "running"} and row.new == {"status": "completed"}
    inserted = audit_row_from(
        {
            "seq": 1,
            "tbl": "replicas",
            "action": "insert",
            "key": "r1",
            "old": None,
            "new": "{}",
            "at": 1,
        }
    )
    assert inserted.old is None and inserted.new == {}


def test_audit_row_from_refuses_an_unknown_action() -> None:
    with pytest.raises(ValueError, match="truncate"):
        audit_row_from(
            {
                "seq": 1,
                "tbl": "runs",
                "action": "truncate",
                "key": "",
                "old": None,
                "new": None,
                "at": 0,
            }
        )


class FakeDB:
    def __init__(self) -> None:
        self.args: tuple[Any, ...] = ()

    async def fetch(self, query: str, *args: Any) -> list[Any]:
        self.args = args
        return []

    async def fetchval(self, query: str, *args: Any) -> Any:
        return None


async def test_read_audit_passes_an_escaped_prefix_and_the_cursor() -> None:
    db = FakeDB()
    assert await read_audit(db, "t_1", after_seq=5) == []
    assert db.args == (5, "t\\_1%")
    await read_audit(db)
    assert db.args == (0, None)
