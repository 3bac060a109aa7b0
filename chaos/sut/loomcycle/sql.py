"""Reading loomcycle's Postgres state into :mod:`chaos.record.vocabulary` rows.

Only this module knows loomcycle's tables (CONTRACT.md, "Postgres state the
invariants read").  Every read is scoped to a test's id prefix, because a
shared database holds other tests' runs, and checkers must judge only
their own test's window.

Times are converted to epoch seconds in SQL (``extract(epoch ...)``) so no
timezone handling happens in Python; they are on the database's clock,
which is also the clock loomcycle's heartbeats and sweepers use.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from chaos.record.vocabulary import QuotaRow, ReplicaRow, RunRow, Snapshot
from chaos.sut.postgres import epoch, like_prefix, quota_from, replica_from, run_from

#: Tables and the columns the suite relies on; :func:`missing_columns` compares.
CONTRACT_COLUMNS: Mapping[str, frozenset[str]] = {
    "runs": frozenset(
        {
            "id",
            "agent_id",
            "user_id",
            "tenant_id",
            "replica_id",
            "status",
            "stop_reason",
            "error",
            "started_at",
            "completed_at",
            "last_heartbeat_at",
            "parent_run_id",
            "provider",
        }
    ),
    "replicas": frozenset({"id", "hostname", "started_at", "last_heartbeat_at", "version"}),
    "user_quotas": frozenset({"tenant_id", "user_id", "active_count"}),
    "events": frozenset({"seq", "run_id", "type", "payload", "ts"}),
    "runtime_state": frozenset({"id", "state"}),
}


class Queryable(Protocol):
    """What the reader needs of an asyncpg ``Connection`` or ``Pool``."""

    async def fetch(self, query: str, *args: Any) -> list[Any]: ...

    async def fetchval(self, query: str, *args: Any) -> Any: ...


# Empty strings read as NULL: the Go store writes "" for "no value" in some
# paths, and the contract's invariants ("error IS NULL for completed") are
# about absence, not about which spelling of absence was stored.
_RUN_COLUMNS = ", ".join(
    [
        "id",
        "agent_id",
        "NULLIF(user_id, '') AS user_id",
        "NULLIF(replica_id, '') AS replica_id",
        "status",
        "NULLIF(stop_reason, '') AS stop_reason",
        "NULLIF(error, '') AS error",
        epoch("started_at"),
        epoch("completed_at"),
        epoch("last_heartbeat_at"),
    ]
)

RUNS_SQL = f"""
SELECT {_RUN_COLUMNS}
FROM runs
WHERE agent_id LIKE $1 ESCAPE '\\' OR user_id LIKE $1 ESCAPE '\\'
ORDER BY started_at, id
"""

REPLICAS_SQL = f"""
SELECT id, {epoch("started_at")}, {epoch("last_heartbeat_at")}
FROM replicas ORDER BY id
"""

# user_quotas is keyed by (tenant_id, user_id); a user's slots are the sum
# over tenants (the suite runs every user in the default tenant '').
QUOTAS_SQL = """
SELECT user_id, sum(active_count)::bigint AS active_count
FROM user_quotas
WHERE $1::text IS NULL OR user_id LIKE $1 ESCAPE '\\'
GROUP BY user_id ORDER BY user_id
"""

EVENTS_SQL = f"""
SELECT seq, type, payload, {epoch("ts")}
FROM events WHERE run_id = $1 ORDER BY seq
"""

# runs.provider is the provider that served a run's last successful call
# (migration 0027): ``mock-stable`` there means the fallback carried the run.
PROVIDERS_SQL = """
SELECT COALESCE(NULLIF(provider, ''), '(none)') AS provider, status, count(*)::bigint AS n
FROM runs
WHERE agent_id LIKE $1 ESCAPE '\\' OR user_id LIKE $1 ESCAPE '\\'
GROUP BY 1, 2 ORDER BY 1, 2
"""

COLUMNS_SQL = """
SELECT table_name::text, column_name::text
FROM information_schema.columns
WHERE table_schema = current_schema() AND table_name = ANY($1::text[])
"""


@dataclass(frozen=True)
class EventRow:
    """One persisted run event; ``payload`` decoded from its bytea JSON when possible."""

    seq: int
    type: str
    payload: Any
    ts: float | None


def decode_payload(raw: bytes | str | None) -> Any:
    """Event payloads are JSON stored as bytea; keep undecodable ones as text."""
    if raw is None:
        return None
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes | bytearray) else raw
    try:
        return json.loads(text)
    except ValueError:
        return text


def event_from(rec: Mapping[str, Any]) -> EventRow:
    return EventRow(
        seq=int(rec["seq"]), type=rec["type"], payload=decode_payload(rec["payload"]), ts=rec["ts"]
    )


def missing_columns(found: Mapping[str, set[str] | frozenset[str]]) -> list[str]:
    """Contract columns absent from ``found`` ({table: columns}), as readable lines."""
    out: list[str] = []
    for table, wanted in CONTRACT_COLUMNS.items():
        have = found.get(table)
        if not have:
            out.append(f"table {table} is missing")
            continue
        out.extend(f"column {table}.{col} is missing" for col in sorted(wanted - set(have)))
    return out


class LoomcycleStateReader:
    """:class:`~chaos.sut.base.StateReader` over an asyncpg connection or pool."""

    def __init__(self, db: Queryable) -> None:
        self._db = db

    async def runs(self, prefix: str) -> Sequence[RunRow]:
        """Runs whose agent_id or user_id starts with ``prefix``."""
        return [run_from(r) for r in await self._db.fetch(RUNS_SQL, like_prefix(prefix))]

    async def replicas(self) -> Sequence[ReplicaRow]:
        return [replica_from(r) for r in await self._db.fetch(REPLICAS_SQL)]

    async def quotas(self, prefix: str | None = None) -> Sequence[QuotaRow]:
        pattern = like_prefix(prefix) if prefix is not None else None
        return [quota_from(r) for r in await self._db.fetch(QUOTAS_SQL, pattern)]

    async def quota_total(self, prefix: str | None = None) -> int:
        """Slots held by the prefix's users across the cluster (0 when none)."""
        return sum(q.active_count for q in await self.quotas(prefix))

    async def provider_counts(self, prefix: str) -> dict[tuple[str, str], int]:
        """``{(provider, status): runs}`` of the prefix: who served each run, how it ended."""
        rows = await self._db.fetch(PROVIDERS_SQL, like_prefix(prefix))
        return {(str(r["provider"]), str(r["status"])): int(r["n"]) for r in rows}

    async def runtime_state(self) -> str | None:
        """``running``/``paused`` from the singleton row; None before migration."""
        value = await self._db.fetchval("SELECT state FROM runtime_state WHERE id = 'singleton'")
        return value if isinstance(value, str) else None

    async def events(self, run_id: str) -> Sequence[EventRow]:
        return [event_from(r) for r in await self._db.fetch(EVENTS_SQL, run_id)]

    async def db_clock(self) -> float:
        """The database's wall clock (epoch s).

        Not every stored time uses it: in loomcycle v1.59.0 a run's ``started_at``,
        a normal ``completed_at``, ``last_heartbeat_at`` and the sweepers' cutoffs come
        from the replica's clock (Go ``time.Now()``); a reaped run's ``completed_at``
        and the ``replicas`` heartbeats use the database's ``now()``.  In one Docker
        host both clocks are the host's; ``CheckParams.clock_slack_s`` covers the rest.
        """
        return float(
            await self._db.fetchval("SELECT extract(epoch FROM clock_timestamp())::float8")
        )

    async def contract_columns(self) -> dict[str, set[str]]:
        """The contract tables' columns as they exist ({table: columns})."""
        rows = await self._db.fetch(COLUMNS_SQL, list(CONTRACT_COLUMNS))
        found: dict[str, set[str]] = {}
        for rec in rows:
            found.setdefault(rec["table_name"], set()).add(rec["column_name"])
        return found

    @asynccontextmanager
    async def _consistent(self) -> AsyncIterator[Any]:
        """One connection in a read-only REPEATABLE READ transaction.

        A snapshot's three reads then see one instant; read separately, a
        run could be reaped between the runs read and the quotas read and
        the snapshot would show a state that never existed.
        """
        acquire = getattr(self._db, "acquire", None)
        if acquire is not None:  # a Pool
            async with (
                acquire() as conn,
                conn.transaction(isolation="repeatable_read", readonly=True),
            ):
                yield conn
        else:  # a Connection
            async with self._db.transaction(  # type: ignore[attr-defined]
                isolation="repeatable_read", readonly=True
            ):
                yield self._db

    async def snapshot(self, prefix: str) -> Snapshot:
        """Runs, replicas and the prefix's quotas as of one database instant.

        A REPEATABLE READ transaction takes its snapshot at its first query, not
        at BEGIN (and the pool acquire before it can wait): the instant is the
        middle of that first query, stamped around it.
        """
        async with self._consistent() as conn:
            reader = LoomcycleStateReader(conn)
            mono0, wall0 = time.monotonic(), time.time()
            runs = await reader.runs(prefix)
            mono1, wall1 = time.monotonic(), time.time()
            mono, wall = (mono0 + mono1) / 2, (wall0 + wall1) / 2
            replicas = await reader.replicas()
            quotas = await reader.quotas(prefix)
        return Snapshot(
            mono=mono, wall=wall, runs=tuple(runs), replicas=tuple(replicas), quotas=tuple(quotas)
        )
