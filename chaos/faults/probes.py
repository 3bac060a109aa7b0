"""Data-path probes: what a client sees when it talks to a target.

Every fault proves its effect and its heal with these, never by reading back
its own configuration: a toxic that Toxiproxy lists but that does not bite,
or a container that Docker calls "paused" while its port still answers, is
exactly the test bug the proof exists to catch.

Each probe is bounded by its own ``timeout`` and returns a
:class:`PathResult` (it does not raise for the failures it is meant to see),
so a fault can tell "refused at once" from "hangs" from "answers slowly".
"""

from __future__ import annotations

import asyncio
import errno
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import asyncpg

#: An async health check of one target: True means "answers as normal".
Probe = Callable[[], Awaitable[bool]]

#: ``ok``: answered.  ``refused``: TCP connect refused.  ``closed``: the peer
#: closed or reset the connection.  ``timeout``: no answer before the deadline.
#: ``rejected``: the server answered with an error (``detail`` has its code).
PathOutcome = Literal["ok", "refused", "closed", "timeout", "rejected", "error"]


@dataclass(frozen=True)
class PgCredentials:
    user: str
    password: str
    database: str


@dataclass(frozen=True)
class PathResult:
    """One probe's outcome, how long it took, and the error text if any."""

    outcome: PathOutcome
    elapsed: float
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    def to_dict(self) -> dict[str, object]:
        return {"outcome": self.outcome, "elapsed_s": round(self.elapsed, 3), "detail": self.detail}


def classify(exc: BaseException) -> tuple[PathOutcome, str]:
    """Map a client-side exception to what it means on the path."""
    text = f"{type(exc).__name__}: {exc}"[:300]
    if isinstance(exc, ConnectionRefusedError):
        return "refused", text
    if isinstance(exc, TimeoutError):
        return "timeout", text
    # Before PostgresError: asyncpg reports a dropped connection as a
    # PostgresError subclass with sqlstate 08003, but no server said anything.
    if isinstance(exc, asyncpg.exceptions.ConnectionDoesNotExistError):
        return "closed", text
    if isinstance(exc, asyncpg.PostgresError):
        return "rejected", f"{getattr(exc, 'sqlstate', '?')} {text}"
    if isinstance(exc, ConnectionError | EOFError | asyncio.IncompleteReadError):
        return "closed", text
    if isinstance(exc, OSError) and exc.errno in (errno.ECONNRESET, errno.EPIPE):
        return "closed", text
    return "error", text


async def _timed(work: Callable[[], Awaitable[object]], timeout: float) -> PathResult:
    start = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            await work()
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        outcome, detail = classify(exc)
        return PathResult(outcome, time.monotonic() - start, detail)
    return PathResult("ok", time.monotonic() - start)


async def pg_connect(
    host: str, port: int, creds: PgCredentials, timeout: float
) -> asyncpg.Connection:
    """A plain asyncpg connection (no TLS: the rig's links carry plain Postgres)."""
    return await asyncpg.connect(
        host=host,
        port=port,
        user=creds.user,
        password=creds.password,
        database=creds.database,
        timeout=timeout,
        ssl=False,
    )


async def pg_roundtrip(
    host: str, port: int, creds: PgCredentials, *, timeout: float, query: str = "SELECT 1"
) -> PathResult:
    """A fresh connection and one query: the path a replica's pool takes."""

    async def work() -> None:
        conn = await pg_connect(host, port, creds, timeout)
        try:
            await conn.fetchval(query)
        finally:
            conn.terminate()  # no polite Terminate round trip: it could hang on a bad link

    return await _timed(work, timeout)


async def pg_select_ok(host: str, port: int, creds: PgCredentials, *, timeout: float) -> bool:
    return (await pg_roundtrip(host, port, creds, timeout=timeout)).ok


def pg_probe(host: str, port: int, creds: PgCredentials, *, timeout: float = 3.0) -> Probe:
    """A :data:`Probe` that is True when ``SELECT 1`` answers on a fresh connection."""

    async def probe() -> bool:
        return await pg_select_ok(host, port, creds, timeout=timeout)

    return probe


async def pg_bulk(
    host: str,
    port: int,
    creds: PgCredentials,
    *,
    nbytes: int,
    direction: Literal["down", "up"],
    timeout: float,
) -> PathResult:
    """Move ``nbytes`` through the path in one direction; ``elapsed`` covers the transfer only.

    ``down``: the server sends ``nbytes`` (``repeat('x', n)``).  ``up``: the
    client sends them as a parameter and the server returns only the length.
    The connection is made before the clock starts, so the result measures
    throughput rather than the handshake.
    """
    conn: asyncpg.Connection | None = None
    try:
        async with asyncio.timeout(timeout):
            conn = await pg_connect(host, port, creds, timeout)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        outcome, detail = classify(exc)
        return PathResult(outcome, 0.0, f"connect: {detail}")
    assert conn is not None

    async def work() -> None:
        assert conn is not None
        if direction == "down":
            got = await conn.fetchval("SELECT repeat('x', $1::int)", nbytes)
            if len(got) != nbytes:
                raise EOFError(f"short read: {len(got)} of {nbytes}")
        else:
            got = await conn.fetchval("SELECT length($1::text)", "x" * nbytes)
            if got != nbytes:
                raise EOFError(f"server saw {got} of {nbytes} bytes")

    try:
        return await _timed(work, timeout)
    finally:
        conn.terminate()


# A StartupMessage with protocol version 9999.0: every Postgres answers it
# with an ErrorResponse and closes the connection, no credentials needed.
_BAD_STARTUP = struct.pack("!ii", 8, 9999 << 16)


async def pg_close_delay(host: str, port: int, *, timeout: float) -> PathResult:
    """Time from asking Postgres to hang up until the client sees EOF.

    Postgres closes at once after rejecting an unknown protocol version, so
    any delay beyond a round trip is the path holding the close (slow_close).
    ``ok`` means EOF arrived; ``elapsed`` is the time to it.
    """

    async def work() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(_BAD_STARTUP)
            await writer.drain()
            while await reader.read(4096):
                pass
        finally:
            writer.transport.abort()

    return await _timed(work, timeout)


async def tcp_hold(
    host: str, port: int, *, timeout: float
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open one TCP connection and return it (for faults that hold connections idle)."""
    async with asyncio.timeout(timeout):
        return await asyncio.open_connection(host, port)


async def http_get(host: str, port: int, path: str = "/", *, timeout: float) -> PathResult:
    """A bare HTTP/1.0 GET on a fresh connection; ``ok`` only for a 2xx/3xx/4xx status.

    A 5xx answer is ``rejected`` with the status line in ``detail``.  Raw
    sockets rather than httpx: a fault probe must not be hidden by client
    retries or pooling.
    """
    status_line = ""

    async def work() -> None:
        nonlocal status_line
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(f"GET {path} HTTP/1.0\r\nHost: probe\r\n\r\n".encode())
            await writer.drain()
            line = await reader.readline()
            if not line:
                raise EOFError("connection closed before a status line")
            status_line = line.decode(errors="replace").strip()
        finally:
            writer.transport.abort()

    result = await _timed(work, timeout)
    if result.ok:
        parts = status_line.split()
        code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        if code == 0 or code >= 500:
            return PathResult("rejected", result.elapsed, status_line)
        return PathResult("ok", result.elapsed, status_line)
    return result


def http_probe(host: str, port: int, path: str = "/", *, timeout: float = 3.0) -> Probe:
    async def probe() -> bool:
        return (await http_get(host, port, path, timeout=timeout)).ok

    return probe
