"""Reading the toy's tables into :mod:`chaos.record.vocabulary` rows (only this module
knows its SQL).  Every read is scoped to a test's id prefix; times are epoch seconds
on the database's clock, which is also the clock the toy's heartbeats and reaper use.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from chaos.record.vocabulary import QuotaRow, ReplicaRow, RunRow, Snapshot
from chaos.sut.base import StateReader
from chaos.sut.postgres import epoch, like_prefix, quota_from, replica_from, run_from

RUNS_SQL = f"""
SELECT id, agent_id, user_id, replica_id, status, stop_reason, error,
       {epoch("started_at")}, {epoch("completed_at")}, {epoch("last_heartbeat_at")}
FROM runs
WHERE agent_id LIKE $1 ESCAPE '\\' OR user_id LIKE $1 ESCAPE '\\'
ORDER BY started_at, id
"""
REPLICAS_SQL = f"""
SELECT id, {epoch("started_at")}, {epoch("last_heartbeat_at")} FROM replicas ORDER BY id
"""
QUOTAS_SQL = """
SELECT user_id, active_count FROM user_quotas
WHERE $1::text IS NULL OR user_id LIKE $1 ESCAPE '\\' ORDER BY user_id
"""


class ToyStateReader:
    """Over an asyncpg pool (snapshots need ``acquire``) or a connection (plain reads)."""

    def __init__(self, db: Any) -> None:
        self._db = db

    async def runs(self, prefix: str) -> Sequence[RunRow]:
        return [run_from(r) for r in await self._db.fetch(RUNS_SQL, like_prefix(prefix))]

    async def replicas(self) -> Sequence[ReplicaRow]:
        rows = await self._db.fetch(REPLICAS_SQL)
        return [replica_from(r) for r in rows]

    async def quotas(self, prefix: str | None = None) -> Sequence[QuotaRow]:
        pattern = None if prefix is None else like_prefix(prefix)
        rows = await self._db.fetch(QUOTAS_SQL, pattern)
        return [quota_from(r) for r in rows]

    async def snapshot(self, prefix: str) -> Snapshot:
        """The three reads in one REPEATABLE READ transaction: one database instant, stamped
        around the first query (where such a transaction takes its snapshot)."""
        async with (
            self._db.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            reader = ToyStateReader(conn)
            mono0, wall0 = time.monotonic(), time.time()
            runs = await reader.runs(prefix)
            mono, wall = (mono0 + time.monotonic()) / 2, (wall0 + time.time()) / 2
            replicas = await reader.replicas()
            quotas = await reader.quotas(prefix)
        return Snapshot(mono, wall, tuple(runs), tuple(replicas), tuple(quotas))


def _as_state_reader(reader: ToyStateReader) -> StateReader:
    return reader
