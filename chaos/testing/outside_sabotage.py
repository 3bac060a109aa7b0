"""Outside sabotage: breaking a live cluster through its database, containers or network.

Issue 11's matrix proves the gate, not just the checkers: for each invariant a
normal workload runs while something outside the target breaks it, and the
checkers must find the damage in the target's own state.  So nothing here
writes to the :class:`~chaos.record.history.History`: a scenario's faults go
through :mod:`chaos.faults` and :func:`~chaos.faults.injected`, whose windows
*excuse* what they cause; a sabotage must excuse nothing and leave no marker a
checker could detect instead of the damage.  (The audit triggers do record a
sabotage's database writes: that is the target's database speaking, which is
legitimate evidence, not a marker.)

Every action proves that it struck, and says when (``Strike.wall``, epoch
seconds), so a sabotage that misfired is a test error (:class:`SabotageMissed`),
never an "undetected" row, and time to detect has a start.  Target-neutral:
the callers name the tables, columns and conditions (the loomcycle rows live in
``tests/chaos/sabotage_rows.py``).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from chaos.cluster.cluster import Cluster
from chaos.cluster.topology import Link
from chaos.faults import (
    Fault,
    HttpPath,
    LinkTarget,
    PgCredentials,
    PgPath,
    ResetCut,
    prove_effect,
    prove_heal,
)

#: Every database call of a sabotage is bounded: a stuck database must fail the test.
DB_TIMEOUT_S = 15.0
#: Names of the database objects a sabotage creates (all dropped by its undo).
OBJECT_PREFIX = "loomchaos_sabotage_"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")


class SabotageMissed(RuntimeError):
    """The sabotage could not prove it took effect: the row judged nothing."""


@dataclass
class Strike:
    """When a sabotage took effect (epoch seconds) and what it saw doing so."""

    what: str
    wall: float | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    def hit(self, wall: float | None = None, **evidence: Any) -> None:
        """Record the first moment it struck (later hits only add evidence)."""
        if self.wall is None:
            self.wall = time.time() if wall is None else wall
        self.evidence.update(evidence)

    def require(self) -> float:
        if self.wall is None:
            raise SabotageMissed(f"sabotage {self.what!r} never took effect: {self.evidence}")
        return self.wall


def sql_literal(value: str) -> str:
    """A SQL string literal (for trigger bodies, which take no bind parameters)."""
    return "'" + value.replace("'", "''") + "'"


def _rows_affected(status: str) -> int:
    """``UPDATE 3`` / ``DELETE 1`` / ``INSERT 0 1`` -> the row count asyncpg's status carries."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


@asynccontextmanager
async def _connection(dsn: str) -> AsyncIterator[Any]:
    """A fresh superuser connection (never the suite's pool), the whole use bounded."""
    async with asyncio.timeout(DB_TIMEOUT_S):
        conn = await asyncpg.connect(dsn)
        try:
            yield conn
        finally:
            await conn.close()


async def execute(dsn: str, statement: str, *args: Any) -> int:
    """Run one statement on its own connection; returns the rows it hit."""
    async with _connection(dsn) as conn:
        return _rows_affected(await conn.execute(statement, *args))


async def fetch(dsn: str, query: str, *args: Any) -> list[Any]:
    async with _connection(dsn) as conn:
        return list(await conn.fetch(query, *args))


class RewriteTrigger:
    """A ``BEFORE UPDATE`` row trigger that rewrites (or drops) the target's own write.

    ``when`` is the trigger's ``WHEN`` condition over ``OLD``/``NEW``;
    ``assign`` maps a column to the SQL expression it is set to, or is
    ``None`` to drop the write (the UPDATE then changes nothing and reports
    no row, like a write lost on its way).  Each firing is logged in a side
    table of its own (``fired_walls``), which no reader of the suite looks at.
    """

    def __init__(
        self, dsn: str, name: str, table: str, when: str, assign: Mapping[str, str] | None
    ) -> None:
        if not _NAME.match(name) or not _NAME.match(table):
            raise ValueError(f"trigger and table names must match {_NAME.pattern}: {name}, {table}")
        self.dsn = dsn
        self.object = OBJECT_PREFIX + name
        self.table = table
        self.when = when
        self.assign = assign

    def _function_sql(self) -> str:
        if self.assign is None:
            action = "RETURN NULL;"
        else:
            sets = "".join(f"NEW.{col} := {expr}; " for col, expr in self.assign.items())
            action = f"{sets}RETURN NEW;"
        return f"""
CREATE OR REPLACE FUNCTION {self.object}() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO {self.object}_fired DEFAULT VALUES;
    {action}
END
$fn$"""

    async def install(self) -> None:
        async with _connection(self.dsn) as conn, conn.transaction():
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self.object}_fired "
                "(at timestamptz NOT NULL DEFAULT clock_timestamp())"
            )
            await conn.execute(self._function_sql())
            await conn.execute(f"DROP TRIGGER IF EXISTS {self.object} ON {self.table}")
            await conn.execute(
                f"CREATE TRIGGER {self.object} BEFORE UPDATE ON {self.table} "
                f"FOR EACH ROW WHEN ({self.when}) EXECUTE FUNCTION {self.object}()"
            )

    async def fired_walls(self) -> list[float]:
        rows = await fetch(
            self.dsn, f"SELECT extract(epoch FROM at)::float8 AS at FROM {self.object}_fired"
        )
        return sorted(float(r["at"]) for r in rows)

    async def remove(self) -> None:
        """Idempotent; safe after a failed install."""
        async with _connection(self.dsn) as conn:
            await conn.execute(f"DROP TRIGGER IF EXISTS {self.object} ON {self.table}")
            await conn.execute(f"DROP FUNCTION IF EXISTS {self.object}()")
            await conn.execute(f"DROP TABLE IF EXISTS {self.object}_fired")


@asynccontextmanager
async def unrecorded(fault: Fault, strike: Strike) -> AsyncIterator[None]:
    """A nemesis in force *without* its history records: inject, prove, hold, heal, prove.

    The same fault classes the scenarios use, so the effect is proven the
    same way; only the fault window (which would excuse the damage) is missing.
    """
    try:
        await fault.inject()
        await prove_effect(fault)
        strike.hit(fault=fault.name, target=fault.target)
        yield
    finally:
        await fault.heal()
        await prove_heal(fault)


def link_cut(cluster: Cluster, link: Link, replica_id: str) -> ResetCut:
    """The Toxiproxy link ``pg`` (replica -> Postgres) or ``lb`` (nginx -> replica) disabled."""
    name = cluster.proxy_name(link, replica_id)
    creds = cluster.pg_credentials
    path: PgPath | HttpPath = (
        PgPath(PgCredentials(creds.user, creds.password, creds.database))
        if link == "pg"
        else HttpPath(path="/healthz")
    )
    target = LinkTarget(
        cluster.toxiproxy,
        name,
        cluster.probe_address(name),
        path,
        label=f"{link}:{replica_id}",
        replica=replica_id,
    )
    return ResetCut(target)
