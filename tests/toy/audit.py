"""The toy's audit trail: AFTER row triggers copying every write to its three tables.

The same idea as the loomcycle adapter's (a committed write always leaves a
row, a rolled-back one never does), written for the toy's own keys:
``user_quotas`` is keyed by ``user_id`` alone here.  Install after the first
replica has created the tables, before the workload.
"""

from __future__ import annotations

import json
from typing import Any, Literal, cast

from chaos.record.vocabulary import AuditRow
from chaos.sut.postgres import like_prefix

TABLE = "toy_audit"
FUNCTION = "toy_audit_row"
KEYS = {"runs": "id", "user_quotas": "user_id", "replicas": "id"}

INSTALL = [
    f"""CREATE TABLE IF NOT EXISTS {TABLE} (
        seq bigserial PRIMARY KEY, tbl text NOT NULL, action text NOT NULL, key text NOT NULL,
        old jsonb, new jsonb, at timestamptz NOT NULL DEFAULT clock_timestamp())""",
    f"""CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $fn$
    DECLARE
        row_json jsonb := to_jsonb(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END);
    BEGIN
        INSERT INTO {TABLE} (tbl, action, key, old, new) VALUES (
            TG_TABLE_NAME, lower(TG_OP), coalesce(row_json ->> TG_ARGV[0], ''),
            CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE to_jsonb(OLD) END,
            CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE to_jsonb(NEW) END);
        RETURN NULL;
    END $fn$""",
    *(
        f"CREATE OR REPLACE TRIGGER {TABLE}_{table} AFTER INSERT OR UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {FUNCTION}('{key}')"
        for table, key in KEYS.items()
    ),
]

READ_SQL = f"""
SELECT seq, tbl, action, key, old::text AS old, new::text AS new,
       extract(epoch FROM at)::float8 AS at
FROM {TABLE}
WHERE seq > $1 AND (tbl = 'replicas' OR key LIKE $2 ESCAPE '\\'
      OR coalesce(new, old) ->> 'agent_id' LIKE $2 ESCAPE '\\'
      OR coalesce(new, old) ->> 'user_id' LIKE $2 ESCAPE '\\')
ORDER BY seq
"""


async def install_audit(conn: Any) -> None:
    async with conn.transaction():
        for stmt in INSTALL:
            await conn.execute(stmt)


def _obj(text: str | None) -> dict[str, object] | None:
    return None if text is None else cast(dict[str, object], json.loads(text))


async def read_audit(db: Any, prefix: str, after_seq: int = 0) -> list[AuditRow]:
    """The test's rows (and every ``replicas`` row) written after ``after_seq``, in order."""
    return [
        AuditRow(
            seq=int(r["seq"]),
            table=r["tbl"],
            action=cast(Literal["insert", "update", "delete"], r["action"]),
            key=r["key"],
            old=_obj(r["old"]),
            new=_obj(r["new"]),
            at=float(r["at"]),
        )
        for r in await db.fetch(READ_SQL, after_seq, like_prefix(prefix))
    ]
