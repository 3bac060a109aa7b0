"""A fault on time: Postgres's wall clock set apart from the replicas'.

Docker containers share the host's kernel clock and Linux has no namespace for
``CLOCK_REALTIME``, so the skew is made inside the Postgres container of a
cluster whose spec sets ``pg_fake_clock`` (:mod:`chaos.cluster.faketime`):
this fault writes the offset libfaketime reads.  Only the wall clock moves:
Postgres's ``now()`` and every timestamp it writes, not its timeouts.

Why it matters to a cluster on one database: loomcycle writes heartbeats with
Postgres's ``now()`` and its replicas sweeper compares them with the sweeping
replica's own clock (``internal/coord/replicas_sweeper.go:141-144``), where
its operator documentation says the cutoff is computed on the Postgres side so
that skew cannot cause false reaps (``docs/MULTI-REPLICA.md``, "Clock skew").
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from chaos.cluster.faketime import FAKETIME_FILE, FAKETIME_LIB
from chaos.faults.base import Fault

#: The effect is proven when Postgres's clock is within this of the asked offset, the
#: heal when it is within this of the host's (a query's round trip is milliseconds).
TOLERANCE_S = 2.0


def offset_spec(seconds: float) -> str:
    """libfaketime's relative offset: "-45" is 45 s behind, "+0" the real time."""
    return f"{seconds:+.0f}"


async def db_clock_offset(dsn: str) -> float:
    """Postgres's ``clock_timestamp()`` minus the host's wall clock, in seconds (the
    host's taken half way through the query's round trip)."""
    conn = await asyncpg.connect(dsn, timeout=5.0)
    try:
        before = time.time()
        db = await conn.fetchval("SELECT extract(epoch FROM clock_timestamp())::float8")
        after = time.time()
    finally:
        await conn.close()
    return float(db) - (before + after) / 2.0


class PgClockSkew(Fault):
    """Postgres's wall clock ``seconds`` off the replicas' (negative: behind).

    Effect: Postgres's ``clock_timestamp()`` is ``seconds`` from the host's, within
    :data:`TOLERANCE_S`.  Heal: the offset file back to "+0"; proven when Postgres's clock
    agrees with the host's within :data:`TOLERANCE_S`.  Needs a cluster whose spec sets
    ``pg_fake_clock`` (else the effect is never proven: a one-line error).
    """

    name = "clock:skew"

    def __init__(
        self,
        container: Any,
        dsn: str,
        seconds: float,
        read_offset: Callable[[str], Awaitable[float]] = db_clock_offset,
    ) -> None:
        if seconds == 0:
            raise ValueError("a clock skew of 0 s proves nothing")
        self.container = container
        self.dsn = dsn
        self.seconds = seconds
        self.read_offset = read_offset
        self._seen: float | None = None
        self.effect_timeout = 15.0
        self.heal_timeout = 15.0

    @property
    def target(self) -> str:
        return "postgres"

    def describe(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "file": FAKETIME_FILE}

    async def evidence(self) -> dict[str, Any]:
        return {"db_clock_offset_s": None if self._seen is None else round(self._seen, 3)}

    async def _write(self, spec: str) -> None:
        command = ["sh", "-c", f"printf '%s\\n' '{spec}' > {FAKETIME_FILE}"]
        result = await asyncio.to_thread(self.container.exec_run, command, user="root")
        if result.exit_code != 0:
            raise RuntimeError(f"writing {FAKETIME_FILE} failed: {result.output!r}")

    async def _offset(self) -> float:
        self._seen = await self.read_offset(self.dsn)
        return self._seen

    async def inject(self) -> None:
        probe = ["sh", "-c", f"test -e {FAKETIME_LIB} && test -e {FAKETIME_FILE}"]
        result = await asyncio.to_thread(self.container.exec_run, probe, user="root")
        if result.exit_code != 0:
            raise RuntimeError(
                f"this Postgres has no libfaketime ({FAKETIME_LIB}) or no offset file "
                f"({FAKETIME_FILE}): a clock skew needs a pg_fake_clock cluster on the local "
                "images (--chaos-image-source local)"
            )
        await self._write(offset_spec(self.seconds))

    async def heal(self) -> None:
        await self._write(offset_spec(0))

    async def effect_present(self) -> bool:
        return abs(await self._offset() - self.seconds) <= TOLERANCE_S

    async def healthy(self) -> bool:
        return abs(await self._offset()) <= TOLERANCE_S
