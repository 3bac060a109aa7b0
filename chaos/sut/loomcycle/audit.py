"""An audit trail of every write to runs, user_quotas and replicas.

Snapshots show states; some invariants are about transitions ("a terminal
run never changes again", "a quota never goes negative, even briefly").  A
snapshot taken every second misses a row that flipped twice in between, so
the suite installs its own AFTER row triggers that copy each insert, update
and delete into ``loomchaos_audit`` inside the writer's transaction: a
rolled-back write leaves no audit row, a committed one always does.

``seq`` is the order the writes happened in.  Writes to one row are
serialised by its row lock, so per key it is also the commit order; across
keys, two concurrent transactions may commit in the other order.  ``at`` is
``clock_timestamp()`` (the moment of the write, not of the transaction's
start).  ``writer`` (the client address) and ``xid`` are kept for people
reading a dumped table: the address says which replica wrote the row.

Install after loomcycle has migrated (the tables must exist), before the
test's workload; uninstall at teardown.  Both are idempotent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal, cast

from chaos.errors import SetupError
from chaos.record.vocabulary import AuditRow
from chaos.sut.loomcycle.sql import Queryable
from chaos.sut.postgres import like_prefix

AUDIT_TABLE = "loomchaos_audit"
AUDIT_FUNCTION = "loomchaos_audit_row"
#: Audited tables and the columns that make up each row's key.
AUDITED: Mapping[str, tuple[str, ...]] = {
    "runs": ("id",),
    "user_quotas": ("tenant_id", "user_id"),
    "replicas": ("id",),
}
#: Serialises concurrent installs from two sessions (any fixed key works).
_INSTALL_LOCK_KEY = 7_291_604_518_223

CREATE_TABLE_SQL = f"""
CREATE TABLE IF NOT EXISTS {AUDIT_TABLE} (
    seq     bigserial PRIMARY KEY,
    tbl     text NOT NULL,
    action  text NOT NULL,
    key     text NOT NULL,
    old     jsonb,
    new     jsonb,
    at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    writer  text DEFAULT inet_client_addr()::text,
    xid     bigint DEFAULT txid_current()
)
"""

# The key columns come as trigger arguments so one function serves every
# table; the key is read from the row's JSON so a missing column (an older
# schema without tenant_id) gives '' instead of an error inside the
# target's own transaction.
CREATE_FUNCTION_SQL = f"""
CREATE OR REPLACE FUNCTION {AUDIT_FUNCTION}() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    row_json jsonb;
    row_key  text := '';
    i        int;
BEGIN
    IF TG_OP = 'DELETE' THEN
        row_json := to_jsonb(OLD);
    ELSE
        row_json := to_jsonb(NEW);
    END IF;
    FOR i IN 0 .. TG_NARGS - 1 LOOP
        IF i > 0 THEN
            row_key := row_key || '/';
        END IF;
        row_key := row_key || coalesce(row_json ->> TG_ARGV[i], '');
    END LOOP;
    INSERT INTO {AUDIT_TABLE} (tbl, action, key, old, new)
    VALUES (
        TG_TABLE_NAME,
        lower(TG_OP),
        row_key,
        CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE to_jsonb(OLD) END,
        CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE to_jsonb(NEW) END
    );
    RETURN NULL;
END
$fn$
"""


def trigger_name(table: str) -> str:
    return f"loomchaos_audit_{table}"


def create_trigger_sql(table: str, key_columns: Sequence[str]) -> list[str]:
    args = ", ".join("'" + col.replace("'", "''") + "'" for col in key_columns)
    name = trigger_name(table)
    return [
        f"DROP TRIGGER IF EXISTS {name} ON {table}",
        f"CREATE TRIGGER {name} AFTER INSERT OR UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {AUDIT_FUNCTION}({args})",
    ]


def install_statements() -> list[str]:
    """Every statement of an install, in order (run in one transaction)."""
    out = [f"SELECT pg_advisory_xact_lock({_INSTALL_LOCK_KEY})", CREATE_TABLE_SQL]
    out.append(CREATE_FUNCTION_SQL)
    for table, keys in AUDITED.items():
        out.extend(create_trigger_sql(table, keys))
    return out


def uninstall_statements(existing_tables: Sequence[str], drop_table: bool) -> list[str]:
    out = [f"SELECT pg_advisory_xact_lock({_INSTALL_LOCK_KEY})"]
    out.extend(f"DROP TRIGGER IF EXISTS {trigger_name(t)} ON {t}" for t in existing_tables)
    out.append(f"DROP FUNCTION IF EXISTS {AUDIT_FUNCTION}()")
    if drop_table:
        out.append(f"DROP TABLE IF EXISTS {AUDIT_TABLE}")
    return out


async def _existing_tables(conn: Any) -> list[str]:
    found = []
    for table in AUDITED:
        if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table):
            found.append(table)
    return found


async def install_audit(conn: Any) -> None:
    """Create the audit table, function and triggers (idempotent).

    ``conn`` is an asyncpg Connection.  Raises :class:`SetupError` when a
    table is missing: loomcycle has not migrated yet, so no replica has
    booted against this database.
    """
    existing = await _existing_tables(conn)
    missing = [t for t in AUDITED if t not in existing]
    if missing:
        raise SetupError(
            f"cannot install the audit triggers: table(s) {', '.join(missing)} do not exist; "
            "start a replica with LOOMCYCLE_PG_AUTOMIGRATE=1 first"
        )
    async with conn.transaction():
        for stmt in install_statements():
            await conn.execute(stmt)


async def uninstall_audit(conn: Any, *, drop_table: bool = False) -> None:
    """Remove the triggers and function (idempotent); keep the rows unless asked."""
    existing = await _existing_tables(conn)
    async with conn.transaction():
        for stmt in uninstall_statements(existing, drop_table):
            await conn.execute(stmt)


READ_SQL = f"""
SELECT seq, tbl, action, key, old::text AS old, new::text AS new,
       extract(epoch FROM at)::float8 AS at
FROM {AUDIT_TABLE}
WHERE seq > $1
  AND ($2::text IS NULL
       OR tbl = 'replicas'
       OR key LIKE $2 ESCAPE '\\'
       OR coalesce(new, old) ->> 'agent_id' LIKE $2 ESCAPE '\\'
       OR coalesce(new, old) ->> 'user_id' LIKE $2 ESCAPE '\\')
ORDER BY seq
"""


def _json_object(text: str | None) -> dict[str, object] | None:
    if text is None:
        return None
    value = json.loads(text)
    return value if isinstance(value, dict) else {"value": value}


def audit_row_from(rec: Mapping[str, Any]) -> AuditRow:
    action = rec["action"]
    if action not in ("insert", "update", "delete"):
        raise ValueError(f"unexpected audit action {action!r}")
    return AuditRow(
        seq=int(rec["seq"]),
        table=rec["tbl"],
        action=cast(Literal["insert", "update", "delete"], action),
        key=rec["key"],
        old=_json_object(rec["old"]),
        new=_json_object(rec["new"]),
        at=float(rec["at"]),
    )


async def read_audit(
    db: Queryable, prefix: str | None = None, *, after_seq: int = 0
) -> list[AuditRow]:
    """Audit rows after ``after_seq``, in write order.

    With a ``prefix``, runs and quota rows are kept when their key, agent_id
    or user_id starts with it; replica rows are always kept (replicas belong
    to the cluster, not to one test).
    """
    pattern = like_prefix(prefix) if prefix is not None else None
    return [audit_row_from(r) for r in await db.fetch(READ_SQL, after_seq, pattern)]
