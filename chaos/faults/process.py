"""Process faults on one container: kill, graceful stop, freeze, restart, Postgres restart.

Each acts on a :class:`ContainerTarget`, a small handle (docker client,
container id, a name for the history, and a health probe through the data
path).  The probe is injectable so that replica faults can pass a probe
that matters for a replica (for example "its /healthz answers", or "it has
vanished from the survivors' /healthz") once loomcycle is available; here the
faults are exercised on Postgres, nginx and Toxiproxy containers.

Every docker call runs in a thread (``asyncio.to_thread``): a ``docker stop``
can block for seconds and must not stall the streams the suite is timing.

Heals start the *same* container again (same id, name, volumes and writable
layer).  Two things Docker does NOT keep across a stop/start, recorded in the
evidence so a scenario can see them: an ephemeral published host port gets a
new number (publish fixed host ports for containers that faults restart),
and on a network without a fixed address the IP may change (nginx resolves
upstream names once and would keep the old one).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors

from chaos.faults.base import Fault
from chaos.faults.probes import PgCredentials, Probe, pg_connect
from chaos.record.vocabulary import FAULT_KILL, FAULT_PAUSE, FAULT_RESTART, FAULT_STOP


@dataclass
class ContainerTarget:
    """A container a fault acts on, and how to tell it is healthy.

    ``probe`` returns True when the container's service answers as normal
    through its data path (e.g. ``SELECT 1`` on Postgres' port).
    """

    docker_client: docker.DockerClient
    container_id: str
    name: str
    probe: Probe

    async def state(self) -> dict[str, Any]:
        """Docker's view of the container (status, exit code, start time, IPs)."""

        def read() -> dict[str, Any]:
            c = self.docker_client.containers.get(self.container_id)
            state = c.attrs["State"]
            nets = c.attrs["NetworkSettings"]["Networks"] or {}
            return {
                "status": state.get("Status"),
                "paused": bool(state.get("Paused")),
                "exit_code": state.get("ExitCode"),
                "started_at": state.get("StartedAt"),
                "ips": {n: v.get("IPAddress") for n, v in nets.items()},
            }

        return await asyncio.to_thread(read)

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        def call() -> Any:
            c = self.docker_client.containers.get(self.container_id)
            return getattr(c, method)(*args, **kwargs)

        return await asyncio.to_thread(call)

    async def kill(self, signal: str = "SIGKILL") -> None:
        await self._call("kill", signal=signal)

    async def stop(self, grace_s: int) -> None:
        await self._call("stop", timeout=grace_s)

    async def wait_exit(self, timeout_s: float) -> int:
        result = await self._call("wait", timeout=timeout_s)
        return int(result.get("StatusCode", -1))

    async def ensure_running(self) -> None:
        """Start the container if it is not running; unpause it if paused (idempotent heal)."""
        state = await self.state()
        if state["paused"]:
            await self._call("unpause")
        elif state["status"] != "running":
            await self._call("start")

    async def pause(self) -> None:
        await self._call("pause")

    async def unpause(self) -> None:
        if (await self.state())["paused"]:
            await self._call("unpause")

    async def restart(self, grace_s: int) -> None:
        await self._call("restart", timeout=grace_s)


class _ContainerFault(Fault):
    def __init__(self, container: ContainerTarget) -> None:
        self.container = container
        self._state: dict[str, Any] = {}

    @property
    def target(self) -> str:
        return self.container.name

    async def evidence(self) -> dict[str, Any]:
        self._state = await self.container.state()
        return {"container": self._state}

    async def healthy(self) -> bool:
        return await self.container.probe()

    async def effect_present(self) -> bool:
        return not await self.container.probe()

    async def heal(self) -> None:
        await self.container.ensure_running()


class Kill(_ContainerFault):
    """SIGKILL (``docker kill``).

    Effect: the service no longer answers its probe (no goodbye: a replica
    leaves its row and its runs for the sweeper).  Heal: start the same
    container again; proven when the probe answers.
    """

    name = FAULT_KILL

    async def inject(self) -> None:
        await self.container.kill("SIGKILL")


class GracefulStop(_ContainerFault):
    """SIGTERM with a grace period (``docker stop``).

    Effect: the service no longer answers its probe; the evidence records
    the exit code (137 means the grace period ran out and Docker had to
    SIGKILL it: the stop was not graceful).  Heal: start the same container.
    """

    name = FAULT_STOP

    def __init__(self, container: ContainerTarget, grace_s: int = 10) -> None:
        super().__init__(container)
        self.grace_s = grace_s
        self.effect_timeout = max(self.effect_timeout, grace_s + 5.0)

    def describe(self) -> dict[str, Any]:
        return {"grace_s": self.grace_s}

    async def inject(self) -> None:
        await self.container.stop(self.grace_s)


class Freeze(_ContainerFault):
    """Freeze every process of the container (``docker pause``, the cgroup freezer).

    Effect: the probe gets no answer (TCP may still connect: the kernel is
    not frozen, the process is), a replica keeps its row but stops
    heartbeating.  Heal: ``docker unpause``; proven when the probe answers.
    """

    name = FAULT_PAUSE

    async def inject(self) -> None:
        await self.container.pause()

    async def heal(self) -> None:
        await self.container.unpause()


class Restart(_ContainerFault):
    """``docker restart``: the same container (id, name, writable layer) boots again.

    A restart is over when ``inject()`` returns, so its effect is "it booted
    again", proven by ``boot_id`` (a value read through the data path that
    changes on every boot, e.g. ``pg_postmaster_start_time()``), or, when no
    ``boot_id`` is given, by Docker's ``StartedAt`` moving.  Heal: nothing to
    undo; proven when the probe answers again (and the container runs).
    """

    name = FAULT_RESTART

    def __init__(
        self,
        container: ContainerTarget,
        grace_s: int = 10,
        boot_id: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        super().__init__(container)
        self.grace_s = grace_s
        self.boot_id = boot_id
        self._before: object = None

    def describe(self) -> dict[str, Any]:
        return {"grace_s": self.grace_s, "boot_id_probe": self.boot_id is not None}

    async def _boot(self) -> object:
        if self.boot_id is not None:
            return await self.boot_id()
        return (await self.container.state())["started_at"]

    async def inject(self) -> None:
        self._before = await self._boot()
        await self.container.restart(self.grace_s)

    async def effect_present(self) -> bool:
        now = await self._boot()
        return now is not None and now != self._before

    async def heal_present(self) -> bool:
        # The effect (a new boot) stays true forever; the heal is "answers again".
        return await self.healthy()


async def pg_boot_time(host: str, port: int, creds: PgCredentials, timeout: float = 3.0) -> str:
    """``pg_postmaster_start_time()``: changes on every Postgres boot (a data-path boot id)."""
    conn = await pg_connect(host, port, creds, timeout)
    try:
        return str(await conn.fetchval("SELECT pg_postmaster_start_time()"))
    finally:
        conn.terminate()


class PostgresRestart(_ContainerFault):
    """Postgres down and back up, with its data kept.

    Inject: write a marker row, then stop the server: ``mode="fast"`` sends
    SIGINT (fast shutdown: clients are disconnected, a checkpoint is
    written), ``mode="crash"`` sends SIGKILL (crash recovery from WAL on the
    next start).  Effect: ``SELECT 1`` fails.  The outage lasts until the
    heal: start the same container; proven when ``SELECT 1`` answers, the
    marker row is there (data kept) and ``pg_postmaster_start_time()`` moved
    (it really rebooted).
    """

    name = "pg_restart"
    _MARKER_TABLE = "loomchaos_fault_marker"

    def __init__(
        self,
        container: ContainerTarget,
        addr: tuple[str, int],
        creds: PgCredentials,
        mode: str = "fast",
    ) -> None:
        if mode not in ("fast", "crash"):
            raise ValueError(f"mode must be 'fast' or 'crash', not {mode!r}")
        super().__init__(container)
        self.addr = addr
        self.creds = creds
        self.mode = mode
        self.effect_timeout = 30.0
        self.heal_timeout = 60.0
        self._token = ""
        self._boot_before = ""
        self._seen: dict[str, Any] = {}

    def describe(self) -> dict[str, Any]:
        return {"mode": self.mode}

    async def evidence(self) -> dict[str, Any]:
        return {**await super().evidence(), **self._seen}

    async def inject(self) -> None:
        self._token = secrets.token_hex(8)
        conn = await pg_connect(*self.addr, self.creds, 5.0)
        try:
            await conn.execute(f"CREATE TABLE IF NOT EXISTS {self._MARKER_TABLE} (token text)")
            await conn.execute(f"INSERT INTO {self._MARKER_TABLE} VALUES ($1)", self._token)
            self._boot_before = str(await conn.fetchval("SELECT pg_postmaster_start_time()"))
        finally:
            conn.terminate()
        await self.container.kill("SIGINT" if self.mode == "fast" else "SIGKILL")
        self._seen["exit_code"] = await self.container.wait_exit(30)

    async def heal_present(self) -> bool:
        # Errors ("the database system is starting up") count as "not yet" in prove_heal.
        conn = await pg_connect(*self.addr, self.creds, 3.0)
        try:
            boot = str(await conn.fetchval("SELECT pg_postmaster_start_time()"))
            kept = await conn.fetchval(
                f"SELECT count(*) FROM {self._MARKER_TABLE} WHERE token = $1", self._token
            )
        finally:
            conn.terminate()
        self._seen.update(boot_before=self._boot_before, boot_after=boot, marker_rows=kept)
        return boot != self._boot_before and kept == 1
