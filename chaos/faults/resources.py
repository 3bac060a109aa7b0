"""Resource faults: Postgres connection slots, a sweeper's lock, nginx's file descriptors."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import asyncpg

from chaos.faults.base import Fault
from chaos.faults.probes import PgCredentials, http_get, pg_connect, tcp_hold
from chaos.faults.process import ContainerTarget
from chaos.wait import eventually

#: FNV-1a 64-bit of "replicas_sweeper" as signed int64 (CONTRACT.md, "Timers").
REPLICAS_SWEEPER_LOCK_KEY = 6518818882528774796
#: FNV-1a 64-bit of "heartbeat_sweeper".
HEARTBEAT_SWEEPER_LOCK_KEY = -4592717545380319881

_TOO_MANY = "53300"  # too_many_connections: both "too many clients" and "slots are reserved"


async def refused_as_too_many(
    addr: tuple[str, int], creds: PgCredentials, seen: dict[str, Any]
) -> bool:
    """A new connection as ``creds`` is refused with too_many_connections (recorded in
    ``seen``); any other answer, a connection included, is ``False``."""
    try:
        conn = await pg_connect(*addr, creds, 5.0)
    except asyncpg.PostgresError as exc:
        if getattr(exc, "sqlstate", None) != _TOO_MANY:
            return False
        seen["probe_refused_with"] = str(exc)
        return True
    conn.terminate()
    return False


class PgConnectionExhaustion(Fault):
    """Fill every connection slot a non-superuser may use, and hold them.

    Inject: connect as ``role`` (a non-superuser) until the server says
    53300, at most ``max_connections`` times.  Effect: a new ``role``
    connection is refused with 53300 ("too many clients" / "remaining
    connection slots are reserved"), while ``admin`` (a superuser) still
    connects through the reserved slots.  Heal: close every held connection;
    proven when ``role`` connects again.
    """

    name = "pg_exhaust_connections"

    def __init__(
        self,
        addr: tuple[str, int],
        admin: PgCredentials,
        role: PgCredentials,
        target: str = "postgres",
    ) -> None:
        self.addr = addr
        self.admin = admin
        self.role = role
        self._target = target
        self.held: list[asyncpg.Connection] = []
        self._seen: dict[str, Any] = {}
        self.effect_timeout = 10.0

    @property
    def target(self) -> str:
        return self._target

    def describe(self) -> dict[str, Any]:
        return {"role": self.role.user}

    async def evidence(self) -> dict[str, Any]:
        return {"held": len(self.held), **self._seen}

    async def inject(self) -> None:
        admin = await pg_connect(*self.addr, self.admin, 5.0)
        try:
            max_conn = int(await admin.fetchval("SHOW max_connections"))
            reserved = int(await admin.fetchval("SHOW superuser_reserved_connections"))
        finally:
            admin.terminate()
        self._seen.update(max_connections=max_conn, superuser_reserved=reserved)
        await self._fill(max_conn)  # bounded: no server has more slots than this

    async def _fill(self, limit: int) -> None:
        """Connect as ``role`` until refused with 53300 (at most ``limit`` times)."""
        for _ in range(limit):
            try:
                self.held.append(await pg_connect(*self.addr, self.role, 5.0))
            except asyncpg.PostgresError as exc:
                if getattr(exc, "sqlstate", None) == _TOO_MANY:
                    self._seen["refused_with"] = str(exc)
                    return
                raise
        raise RuntimeError(f"opened {limit} connections without being refused")

    async def effect_present(self) -> bool:
        if not await refused_as_too_many(self.addr, self.role, self._seen):
            return False
        admin = await pg_connect(*self.addr, self.admin, 5.0)  # the superuser must still get in
        try:
            return bool(await admin.fetchval("SELECT 1") == 1)
        finally:
            admin.terminate()

    async def heal(self) -> None:
        held, self.held = self.held, []
        for conn in held:
            conn.terminate()

    async def healthy(self) -> bool:
        conn = await pg_connect(*self.addr, self.role, 5.0)
        try:
            return bool(await conn.fetchval("SELECT 1") == 1)
        finally:
            conn.terminate()

    async def heal_present(self) -> bool:
        return await self.healthy()


def _lock_ids(key: int) -> tuple[int, int]:
    """How pg_locks shows a bigint advisory key: (classid, objid), the high and low 32 bits."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return unsigned >> 32, unsigned & 0xFFFF_FFFF


class AdvisoryLockHold(Fault):
    """Stall a singleton sweeper by holding its advisory lock on a dedicated connection.

    Every replica runs the sweeper, and each round only the one that wins
    ``pg_try_advisory_lock(key)`` works; holding the lock elsewhere means no
    replica ever wins, so dead replicas are never reaped.  Inject:
    ``pg_advisory_lock(key)`` (waits at most one round if a replica holds it
    right now).  Effect: pg_locks shows our session holding it AND another
    session's ``pg_try_advisory_lock(key)`` returns false.  Heal: unlock and
    close; proven when our session is gone and holds no lock.
    """

    name = "sweeper_stall"

    def __init__(
        self,
        addr: tuple[str, int],
        creds: PgCredentials,
        key: int = REPLICAS_SWEEPER_LOCK_KEY,
        target: str = "replicas_sweeper",
    ) -> None:
        self.addr = addr
        self.creds = creds
        self.key = key
        self._target = target
        self.holder: asyncpg.Connection | None = None
        self.holder_pid: int | None = None
        self._seen: dict[str, Any] = {}
        self.effect_timeout = 10.0

    @property
    def target(self) -> str:
        return self._target

    def describe(self) -> dict[str, Any]:
        return {"key": self.key}

    async def evidence(self) -> dict[str, Any]:
        return {"holder_pid": self.holder_pid, **self._seen}

    async def inject(self) -> None:
        self.holder = await pg_connect(*self.addr, self.creds, 5.0)
        self.holder_pid = int(self.holder.get_server_pid())
        async with asyncio.timeout(self.effect_timeout):
            await self.holder.execute("SELECT pg_advisory_lock($1::bigint)", self.key)

    async def _lock_rows(self, conn: asyncpg.Connection) -> list[int]:
        classid, objid = _lock_ids(self.key)
        rows = await conn.fetch(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1",
            classid,
            objid,
        )
        return [int(r["pid"]) for r in rows]

    async def effect_present(self) -> bool:
        conn = await pg_connect(*self.addr, self.creds, 5.0)
        try:
            holders = await self._lock_rows(conn)
            got = bool(await conn.fetchval("SELECT pg_try_advisory_lock($1::bigint)", self.key))
            if got:  # we must not keep what the probe took
                await conn.execute("SELECT pg_advisory_unlock($1::bigint)", self.key)
        finally:
            conn.terminate()
        self._seen.update(lock_holders=holders, try_lock_elsewhere=got)
        return self.holder_pid in holders and not got

    async def heal(self) -> None:
        holder, self.holder = self.holder, None
        if holder is None:
            return
        try:
            if not holder.is_closed():
                async with asyncio.timeout(5):
                    await holder.execute("SELECT pg_advisory_unlock($1::bigint)", self.key)
        except (asyncpg.PostgresError, OSError, TimeoutError):
            pass  # closing the session below releases its locks anyway
        finally:
            holder.terminate()

    async def healthy(self) -> bool:
        conn = await pg_connect(*self.addr, self.creds, 5.0)
        try:
            holders = await self._lock_rows(conn)
            alive = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", self.holder_pid or -1
            )
        finally:
            conn.terminate()
        self._seen.update(lock_holders_after=holders, holder_session_left=alive)
        return self.holder_pid not in holders and alive == 0

    async def heal_present(self) -> bool:
        # Not "try_lock succeeds elsewhere": a replica may legitimately hold it this instant.
        return await self.healthy()


class NginxFdExhaustion(Fault):
    """Run nginx out of file descriptors with idle connections.

    Needs nginx started with a low ``nofile`` ulimit / ``worker_rlimit_nofile``
    and its error log on stderr (``error_log stderr``), so Docker's log shows
    it.  Inject: open up to ``max_connections`` idle TCP connections (each
    costs nginx one descriptor).  Effect: a new HTTP request gets no good
    answer (hang, reset or 5xx) AND nginx's log since injection says "Too
    many open files".  Heal: close the idle connections; proven when a
    request answers again.
    """

    name = "nginx_fd_exhaustion"
    #: How the target's log says EMFILE (nginx: strerror's text).
    emfile_text = "Too many open files"

    def __init__(
        self,
        container: ContainerTarget,
        addr: tuple[str, int],
        max_connections: int = 256,
        path: str = "/",
    ) -> None:
        self.container = container
        self.addr = addr
        self.max_connections = max_connections
        self.path = path
        self.held: list[asyncio.StreamWriter] = []
        self._since = 0.0
        self._seen: dict[str, Any] = {}
        self.effect_timeout = 15.0

    @property
    def target(self) -> str:
        return self.container.name

    def describe(self) -> dict[str, Any]:
        return {"max_connections": self.max_connections}

    async def evidence(self) -> dict[str, Any]:
        return {"held": len(self.held), **self._seen}

    async def inject(self) -> None:
        self._since = time.time() - 1
        for _ in range(self.max_connections):
            try:
                _, writer = await tcp_hold(*self.addr, timeout=2.0)
            except (OSError, TimeoutError):
                break  # the front door itself is full: that is the point
            self.held.append(writer)

    async def _log_says_emfile(self) -> bool:
        def read() -> str:
            c = self.container.docker_client.containers.get(self.container.container_id)
            return bytes(c.logs(since=int(self._since), stdout=True, stderr=True)).decode(
                errors="replace"
            )

        text = await asyncio.to_thread(read)
        lines = [ln for ln in text.splitlines() if self.emfile_text in ln]
        if lines:
            self._seen["log"] = lines[-1][:300]
        return bool(lines)

    async def effect_present(self) -> bool:
        result = await http_get(*self.addr, self.path, timeout=2.0)
        self._seen["request"] = result.to_dict()
        return not result.ok and await self._log_says_emfile()

    async def heal(self) -> None:
        held, self.held = self.held, []
        for writer in held:
            with contextlib.suppress(Exception):
                writer.transport.abort()

    async def healthy(self) -> bool:
        result = await http_get(*self.addr, self.path, timeout=2.0)
        self._seen["heal_request"] = result.to_dict()
        return result.ok

    async def heal_present(self) -> bool:
        return await self.healthy()


class ReplicaFdExhaustion(NginxFdExhaustion):
    """The same on a service written in Go (a loomcycle replica started with a low
    ``nofile``): the idle connections go straight to its published port, and Go's
    ``net/http`` logs a failed accept as "http: Accept error: ... too many open files;
    retrying" (Go's EMFILE text is lower case)."""

    name = "replica_fd_exhaustion"
    emfile_text = "too many open files"


class PgSlotsTaken(PgConnectionExhaustion):
    """Take every connection slot Postgres has, the superusers' reserved ones included,
    and push out every client that connects from elsewhere (a replica, through its
    Toxiproxy link), so that those clients must connect again and cannot.

    :class:`PgConnectionExhaustion` fills only the slots a non-superuser may use; a
    client that logs in as a superuser (loomcycle's replicas, given the cluster's one
    role) still gets the reserved slots and keeps the connections it holds.  Here the
    fault connects as ``creds`` (that same superuser) from this host:

    Inject: one keeper connection (for the probes), then rounds of "connect until the
    server says 53300, then terminate every client backend that is not ours and not from
    this host, and wait until those sessions are gone", until a round finds none, at most
    ``max_rounds``.  Clients from this host (the suite's own already-open connections)
    are left alone.  Then a holder task repeats that round every ``hold_interval_s``
    until the heal: a slot that frees later (one of this host's own sessions closing, a
    session the first rounds did not list) is taken back, and a client that got in is
    pushed out again.  Without the holder the effect was not proven in 1 of ~40
    injections after a Postgres restart: a replica's idle session, connected since
    before the fault, was listed only after the rounds had ended, and nothing pushed it
    out.  Each such late push is recorded (``late_terminated``, ``late_sessions``).
    Effect: a new connection is refused with 53300, no client backend from elsewhere
    remains, and the keeper still answers.  Heal: stop the holder, close every held
    connection; proven when a new connection answers ``SELECT 1``.
    """

    def __init__(
        self,
        addr: tuple[str, int],
        creds: PgCredentials,
        target: str = "postgres",
        max_rounds: int = 20,
        hold_interval_s: float = 0.2,
    ) -> None:
        super().__init__(addr, creds, creds, target)
        self.creds = creds
        self.max_rounds = max_rounds
        self.hold_interval_s = hold_interval_s
        self.keeper: asyncpg.Connection | None = None
        self.effect_timeout = 20.0
        # One query at a time on the keeper: the holder and the probes share it.
        self._keeper_lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._holder: asyncio.Task[None] | None = None

    def describe(self) -> dict[str, Any]:
        return {"role": self.creds.user, "reserved_slots_too": True}

    async def _foreign(self, keeper: asyncpg.Connection) -> list[dict[str, Any]]:
        """Client backends neither ours nor from this host's address."""
        ours = [int(c.get_server_pid()) for c in self.held]
        ours.append(int(keeper.get_server_pid()))
        async with self._keeper_lock:
            rows = await keeper.fetch(
                "SELECT pid, client_addr::text AS client_addr, state,"
                " backend_start::text AS backend_start FROM pg_stat_activity"
                " WHERE backend_type = 'client backend' AND pid <> ALL($1::int[])"
                " AND client_addr IS DISTINCT FROM inet_client_addr()",
                ours,
            )
        return [dict(r) for r in rows]

    async def _push_out(self, keeper: asyncpg.Connection, foreign: list[dict[str, Any]]) -> None:
        """Terminate ``foreign`` and wait until their sessions are gone (their slots free
        only once they exited)."""
        pids = [int(f["pid"]) for f in foreign]
        async with self._keeper_lock:
            await keeper.execute("SELECT pg_terminate_backend(p) FROM unnest($1::int[]) p", pids)

        async def exited() -> bool:
            async with self._keeper_lock:
                return bool(
                    await keeper.fetchval(
                        "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = ANY($1::int[])",
                        pids,
                    )
                )

        await eventually(
            exited, what=f"{len(pids)} terminated sessions to exit", timeout=5.0, interval=0.05
        )

    async def _round(self, keeper: asyncpg.Connection, max_conn: int) -> list[dict[str, Any]]:
        """Fill, then push out whoever is foreign; return those pushed out."""
        await self._fill(max_conn)
        foreign = await self._foreign(keeper)
        if foreign:
            await self._push_out(keeper, foreign)
        return foreign

    async def inject(self) -> None:
        self.keeper = keeper = await pg_connect(*self.addr, self.creds, 5.0)
        max_conn = int(await keeper.fetchval("SHOW max_connections"))
        self._seen.update(
            max_connections=max_conn, home=str(await keeper.fetchval("SELECT inet_client_addr()"))
        )
        terminated = 0
        for round_no in range(1, self.max_rounds + 1):
            foreign = await self._round(keeper, max_conn)
            self._seen.update(rounds=round_no, terminated=terminated)
            if not foreign:
                self._stop.clear()
                self._holder = asyncio.create_task(
                    self._hold(keeper, max_conn), name=f"pg_slots_holder:{self.target}"
                )
                return
            terminated += len(foreign)
        raise RuntimeError(f"clients kept reconnecting through {self.max_rounds} rounds")

    async def _hold(self, keeper: asyncpg.Connection, max_conn: int) -> None:
        """Repeat the round until the heal; record whoever had to be pushed out late."""
        late: list[dict[str, Any]] = []
        try:
            while not self._stop.is_set():
                pushed = await self._round(keeper, max_conn)
                if pushed:
                    late.extend(pushed)
                    self._seen.update(late_terminated=len(late), late_sessions=late[-5:])
                # Wait for the heal, at most one interval: the holder's pacing.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.hold_interval_s):
                        await self._stop.wait()
        except Exception as exc:  # recorded; the effect probe then fails on its own
            self._seen["holder_error"] = f"{type(exc).__name__}: {exc}"[:300]

    async def effect_present(self) -> bool:
        if not await refused_as_too_many(self.addr, self.creds, self._seen):
            return False
        keeper = self.keeper
        holder = self._holder
        if keeper is None or keeper.is_closed() or holder is None or holder.done():
            return False
        foreign = await self._foreign(keeper)
        self._seen["foreign_backends"] = len(foreign)
        async with self._keeper_lock:
            return not foreign and bool(await keeper.fetchval("SELECT 1") == 1)

    async def heal(self) -> None:
        self._stop.set()
        holder, self._holder = self._holder, None
        if holder is not None:
            # A round is bounded (connects of 5 s, an exit wait of 5 s); past this, cancel.
            try:
                async with asyncio.timeout(self.hold_interval_s + 30.0):
                    await asyncio.gather(holder, return_exceptions=True)
            except TimeoutError:
                holder.cancel()
                await asyncio.gather(holder, return_exceptions=True)
        keeper, self.keeper = self.keeper, None
        if keeper is not None:
            keeper.terminate()
        await super().heal()
