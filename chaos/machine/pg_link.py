"""A concrete chaos machine on real components: Postgres behind one Toxiproxy link.

The workload is a counter: ``write`` inserts the next value through the
proxied link as the application role, on one long-lived connection (so
faults hit an established connection, as they would a replica's pool) that
is reopened after any error.  Outcomes follow Jepsen:

* ``ok``   the INSERT's commit was acknowledged;
* ``fail`` the value never left the client (no connection could be opened);
* ``info`` the INSERT was sent and the answer never came or was an error:
  it may have committed (a stalled INSERT can land after the heal).

Faults: the link (reset cut, latency, black hole, stall; one at a time) and
the server (a fast or crash restart, or connection-slot exhaustion); server
faults are exclusive: every probe needs the server, and exhaustion is only
meaningful on a server whose other connections do not come and go.

Invariants after every step, on top of the base class's (active faults bite;
the path answers after the last heal): acknowledged writes are durable, read
back over the superuser's DIRECT connection (not the faulty link), across
link faults and restarts.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import ClassVar

import asyncpg
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule

from chaos.cluster.toxiproxy import ToxiproxyClient
from chaos.faults.link import BlackHole, Latency, LinkTarget, PgPath, ResetCut, Stall
from chaos.faults.probes import PgCredentials, classify, pg_connect, pg_roundtrip
from chaos.faults.process import ContainerTarget, PostgresRestart
from chaos.faults.resources import PgConnectionExhaustion
from chaos.machine.base import ChaosMachine, MachineRuntime
from chaos.machine.durability import check_durability
from chaos.record.history import Outcome
from chaos.seeds import replay_of
from chaos.verdict import render_failure

TABLE = "loomchaos_machine_writes"
LINK = "pg-link"
SERVER = "postgres"
#: Every fault this machine knows; a subclass may enable fewer (a cheaper exploration).
ALL_FAULTS = frozenset({"reset_cut", "latency", "black_hole", "stall", "pg_restart", "pg_exhaust"})
#: A write's whole deadline (connect + INSERT); under the latency fault a
#: fresh connection costs about 4 delayed answers, so this stays above that.
WRITE_DEADLINE_S = 3.0
LATENCY_MS = 200


@dataclass(frozen=True)
class PgLinkSetup:
    """The components the machine acts on; build it from any rig (tests use fault_rig.Rig).

    ``postgres.name`` should be ``"postgres"`` (the server target).  The
    Toxiproxy client must have been created on the machine's loop.
    """

    toxiproxy: ToxiproxyClient
    proxy_name: str
    proxy_addr: tuple[str, int]
    pg_addr: tuple[str, int]
    superuser: PgCredentials
    app: PgCredentials
    postgres: ContainerTarget


async def prepare_table(setup: PgLinkSetup) -> None:
    """Create the counter table and let the application role write and read it."""
    conn = await pg_connect(*setup.pg_addr, setup.superuser, 10.0)
    try:
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (v bigint PRIMARY KEY, example int NOT NULL)"
        )
        await conn.execute(f"GRANT SELECT, INSERT ON {TABLE} TO {setup.app.user}")
    finally:
        await conn.close()


class PgLinkMachine(ChaosMachine):
    """Writes, link faults and server faults on Postgres behind Toxiproxy."""

    enabled_faults: ClassVar[frozenset[str]] = ALL_FAULTS

    def __init__(self, runtime: MachineRuntime, setup: PgLinkSetup) -> None:
        super().__init__(runtime)
        self.setup = setup
        # Link probes log in as the superuser: its reserved slots keep them
        # meaningful while connection exhaustion is in force at the same time.
        self.link = LinkTarget(
            setup.toxiproxy, setup.proxy_name, setup.proxy_addr, PgPath(setup.superuser), label=LINK
        )
        self.conn: asyncpg.Connection | None = None

    def enabled(self, fault: str) -> bool:
        return fault in self.enabled_faults

    # -- the workload --------------------------------------------------------
    @initialize()
    def first_writes(self) -> None:
        """Two writes on the healthy system, so every example has acknowledgements at stake."""
        self.write_values(2)

    @rule(n=st.integers(min_value=1, max_value=3))
    def write(self, n: int) -> None:
        """``n`` writes in a row (rules are drawn uniformly; this keeps writes frequent)."""
        self.write_values(n)

    def write_values(self, n: int) -> None:
        for _ in range(n):
            value = self.runtime.next_id("write")
            self.begin_step("write", value=value)
            invoke = self.history.invoke("write", "machine", key=str(value), example=self.example)
            outcome, detail = self.run(
                self.attempt_write(value), what=f"write {value}", timeout=WRITE_DEADLINE_S + 10.0
            )
            self.history.complete(invoke, outcome, **detail)

    async def attempt_write(self, value: int) -> tuple[Outcome, dict[str, object]]:
        """Insert ``value`` within the write deadline; classify what the client learned."""
        sent = False
        try:
            async with asyncio.timeout(WRITE_DEADLINE_S):
                if self.conn is None or self.conn.is_closed():
                    self.conn = await pg_connect(
                        *self.setup.proxy_addr, self.setup.app, WRITE_DEADLINE_S
                    )
                sent = True
                await self.conn.execute(
                    f"INSERT INTO {TABLE} (v, example) VALUES ($1, $2)", value, self.example
                )
        except Exception as exc:
            await self.drop_connection()
            path_outcome, text = classify(exc)
            return ("info" if sent else "fail"), {"path": path_outcome, "error": text}
        return "ok", {}

    async def drop_connection(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.terminate()  # no polite goodbye: it could hang on a faulty link

    # -- link faults (one at a time on the link) -------------------------------
    @precondition(lambda self: self.enabled("reset_cut") and self.may_inject(LINK))
    @rule()
    def cut_link(self) -> None:
        self.inject(ResetCut(self.link))

    @precondition(lambda self: self.enabled("latency") and self.may_inject(LINK))
    @rule()
    def slow_link(self) -> None:
        self.inject(Latency(self.link, latency_ms=LATENCY_MS, direction="down"))

    @precondition(lambda self: self.enabled("black_hole") and self.may_inject(LINK))
    @rule()
    def black_hole_link(self) -> None:
        self.inject(BlackHole(self.link))

    @precondition(lambda self: self.enabled("stall") and self.may_inject(LINK))
    @rule()
    def stall_link(self) -> None:
        self.inject(Stall(self.link))

    @precondition(lambda self: self.is_active(LINK))
    @rule()
    def heal_link(self) -> None:
        self.heal(LINK)

    # -- server faults -----------------------------------------------------------
    @precondition(
        lambda self: self.enabled("pg_restart") and self.may_inject(SERVER, exclusive=True)
    )
    @rule(mode=st.sampled_from(["fast", "crash"]))
    def stop_postgres(self, mode: str) -> None:
        """Down until ``heal_postgres``: fast shutdown, or SIGKILL and WAL recovery."""
        fault = PostgresRestart(
            self.setup.postgres, self.setup.pg_addr, self.setup.superuser, mode=mode
        )
        self.inject(fault, exclusive=True)

    @precondition(
        lambda self: self.enabled("pg_exhaust") and self.may_inject(SERVER, exclusive=True)
    )
    @rule()
    def exhaust_connections(self) -> None:
        """Exclusive: it fills the slots that are free NOW.  Beside a black hole (whose
        half-open backends hold slots until the heal closes them) the heal of the link
        frees slots and the exhaustion silently stops biting; the machine found that."""
        fault = PgConnectionExhaustion(
            self.setup.pg_addr, self.setup.superuser, self.setup.app, target=SERVER
        )
        self.inject(fault, exclusive=True)

    @precondition(lambda self: self.is_active(SERVER))
    @rule()
    def heal_postgres(self) -> None:
        self.heal(SERVER)

    # -- invariants -----------------------------------------------------------------
    @invariant()
    def acknowledged_writes_durable(self) -> None:
        """Every acknowledged value is in the table; no value that never left is."""
        if self.server_down():
            return  # unreadable now; checked again after the heal
        present = self.run(self.read_values(), what="read back the counter table", timeout=30.0)
        writes = [
            op
            for op in self.history.operations("write")
            if op.invoke.data.get("example") == self.example
        ]
        verdict = check_durability(writes, present)
        if verdict.status.value == "fail":
            # The history's seed is the test's; its meta (or the seed itself, under the
            # chaos_seed fixture) knows the session seed and test id that replay it.
            seed = replay_of(self.history.seed, self.history.meta) or self.history.seed
            raise AssertionError(render_failure([verdict], seed=seed))

    def server_down(self) -> bool:
        entry = self.active.get(SERVER)
        return entry is not None and isinstance(entry.fault, PostgresRestart)

    async def read_values(self) -> set[int]:
        conn = await pg_connect(*self.setup.pg_addr, self.setup.superuser, 10.0)
        try:
            rows = await conn.fetch(f"SELECT v FROM {TABLE} WHERE example = $1", self.example)
        finally:
            conn.terminate()
        return {int(r["v"]) for r in rows}

    # -- hooks ------------------------------------------------------------------------
    async def path_answers(self) -> bool:
        result = await pg_roundtrip(*self.setup.proxy_addr, self.setup.app, timeout=5.0)
        return result.ok

    async def close_clients(self) -> None:
        await self.drop_connection()

    async def leftovers(self) -> list[str]:
        found: list[str] = []
        for name, proxy in (await self.setup.toxiproxy.proxies()).items():
            if not proxy.enabled:
                found.append(f"proxy {name} disabled")
            found.extend(f"proxy {name} toxic {t.get('name')}" for t in proxy.toxics)
        state = await self.setup.postgres.state()
        if state["status"] != "running" or state["paused"]:
            found.append(f"postgres container {state['status']}, paused={state['paused']}")
            return found
        conn = await pg_connect(*self.setup.pg_addr, self.setup.superuser, 10.0)
        try:
            sessions = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = $1", self.setup.app.user
            )
        finally:
            conn.terminate()
        if sessions:
            found.append(f"{sessions} session(s) of role {self.setup.app.user} still open")
        return found
