"""A minimal, labelled Postgres + Toxiproxy (+ nginx) rig for the fault tests.

Faults act on small handles (:class:`~chaos.faults.ContainerTarget`,
:class:`~chaos.faults.LinkTarget`), so a few containers on their own network
are enough to prove each fault's effect and heal through a real data path,
with settings no cluster preset has (20 Postgres connections and an
ordinary role to exhaust them, an nginx at 48 open files).  The rig is
built from the suite's testcontainers modules (:mod:`chaos.containers`:
``SuitePostgresContainer``, ``ToxiproxyContainer``, ``SuiteContainer``), the
same pieces another project would use, rather than a cluster.

Everything runs on one testcontainers-made network with a subnet of its own
(so a partition heal can ask for the container's old IP back), publishes
ports on 127.0.0.1 only at fixed numbers (a restart keeps them), carries the
suite's labels, and is removed in ``finally`` by :func:`rig` and again by
label.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import asyncpg
import docker
import docker.errors
import docker.types
from docker.models.containers import Container
from docker.models.networks import Network
from testcontainers.core.container import DockerContainer

from chaos.cluster.docker_ops import create_network, docker_client
from chaos.cluster.toxiproxy import ToxiproxyClient
from chaos.containers import SuiteContainer, SuitePostgresContainer, ToxiproxyContainer
from chaos.containers.toxiproxy import API_PORT as TOXIPROXY_API_PORT
from chaos.faults.probes import PgCredentials, pg_select_ok
from chaos.labels import LABEL_SESSION, docker_labels, new_session_id
from chaos.wait import eventually, eventually_sync

PG_IMAGE = "loomchaos/postgres:local"
TOXIPROXY_IMAGE = "loomchaos/toxiproxy:local"
NGINX_IMAGE = "loomchaos/nginx:local"
#: Apart from the cluster's (10.214/16) and the nofile rig's (10.215/16) pools: fewer retries.
SUBNET_POOL = "10.213.0.0/16"

#: Small on purpose: connection exhaustion opens this many connections.
PG_MAX_CONNECTIONS = 20
PG_SUPERUSER_RESERVED = 3
SUPERUSER = PgCredentials(user="chaos", password="chaos-pw", database="chaosdb")
#: The non-superuser role the exhaustion fault fills the server with.
APP_USER = PgCredentials(user="app", password="app-pw", database="chaosdb")
PROXY_PORT = 15432
PROXY_NAME = "pg"
#: nginx's fd limit: low, so that a few dozen idle connections exhaust it.
NGINX_NOFILE = 48

NGINX_CONF = f"""
worker_processes 1;
worker_rlimit_nofile {NGINX_NOFILE};
error_log stderr warn;
pid /run/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    server {{
        listen 80;
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""


@dataclass
class Rig:
    """What the tests get: docker handles and the published host ports."""

    session: str
    client: docker.DockerClient
    network: Network
    postgres: Container
    toxiproxy: Container
    nginx: Container | None
    pg_port: int
    proxy_port: int
    api_port: int
    nginx_port: int | None
    toxi: ToxiproxyClient

    @property
    def pg_addr(self) -> tuple[str, int]:
        return ("127.0.0.1", self.pg_port)

    @property
    def proxy_addr(self) -> tuple[str, int]:
        return ("127.0.0.1", self.proxy_port)

    def leftovers(self) -> list[str]:
        """Containers of this rig that are not running, or paused: heal failures."""
        bad = []
        for c in (self.postgres, self.toxiproxy, self.nginx):
            if c is None:
                continue
            c.reload()
            if c.status != "running" or c.attrs["State"].get("Paused"):
                bad.append(f"{c.name}: {c.status}")
        return bad


def _free_port() -> int:
    """A free host port on 127.0.0.1, to publish at a FIXED number.

    An ephemeral published port (``("127.0.0.1", None)``) gets a new number
    every time the container starts, so a probe of a container that a fault
    stops and starts again would look at the wrong port after the heal.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RigNginx(SuiteContainer):
    """The local nginx image with a config (and files) of the rig's own."""

    role = "nginx"


@dataclass
class Started:
    """What a rig made, in order, so that removal can undo exactly that."""

    client: docker.DockerClient
    session: str = field(default_factory=new_session_id)
    network: Network | None = None
    containers: list[DockerContainer] = field(default_factory=list)

    def rig_network(self, prefix: str, pool: str) -> Network:
        """A testcontainers-made network on a /24 of ``pool`` of its own (a static IP,
        asked back by a partition heal, needs a user-configured subnet)."""
        labels = docker_labels(self.session, role="fault-rig")
        self.network, _ = create_network(self.client, f"{prefix}-net", labels, pool=pool)
        return self.network

    def start(self, container: DockerContainer) -> Container:
        """Start ``container`` on the rig's network, fixed host ports; the docker-py handle."""
        assert self.network is not None, "create the rig's network first"
        container.with_kwargs(network=self.network.name)
        self.containers.append(container)
        container.start()
        wrapped: Container = container.get_wrapped_container()
        return wrapped

    def toxiproxy(self, prefix: str, proxy_port: int) -> ToxiproxyContainer:
        tp = ToxiproxyContainer(TOXIPROXY_IMAGE, proxy_ports=[proxy_port], session_id=self.session)
        tp.with_name(f"{prefix}-toxiproxy")
        tp.with_bind_ports(TOXIPROXY_API_PORT, _free_port())
        tp.with_bind_ports(proxy_port, _free_port())
        return tp

    def nginx(self, prefix: str, files: dict[str, bytes], nofile: int | None = None) -> RigNginx:
        ng = RigNginx(NGINX_IMAGE, session_id=self.session)
        ng.with_name(f"{prefix}-nginx")
        for path, content in files.items():
            ng.with_copy_into_container(content, path)
        if nofile is not None:
            ng.with_kwargs(ulimits=[docker.types.Ulimit(name="nofile", soft=nofile, hard=nofile)])
        return ng

    def remove(self) -> None:
        """Remove what this rig created (containers before the network), then by label."""
        for container in reversed(self.containers):
            with contextlib.suppress(docker.errors.NotFound):
                container.get_wrapped_container().remove(force=True, v=True)
        if self.network is not None:
            with contextlib.suppress(docker.errors.NotFound):
                self.network.remove()
        remove_session(self.session)
        self.client.close()


def _start_rig(started: Started, with_nginx: bool) -> tuple[Container, Container, Container | None]:
    """Start the containers (blocking; run in a thread), recording them in ``started``."""
    prefix = f"lcfault-{started.session}"
    started.rig_network(prefix, SUBNET_POOL)
    pg = SuitePostgresContainer(
        PG_IMAGE,
        username=SUPERUSER.user,
        password=SUPERUSER.password,
        dbname=SUPERUSER.database,
        session_id=started.session,
    )
    pg.with_name(f"{prefix}-pg")
    pg.with_command(
        f"postgres -c max_connections={PG_MAX_CONNECTIONS} "
        f"-c superuser_reserved_connections={PG_SUPERUSER_RESERVED}"
    )
    pg.with_bind_ports(5432, _free_port())
    postgres = started.start(pg)
    # The proxy's listen port is published up front: Toxiproxy opens it later.
    toxiproxy = started.start(started.toxiproxy(prefix, PROXY_PORT))
    nginx = None
    if with_nginx:
        conf = {"/etc/nginx/nginx.conf": NGINX_CONF.encode()}
        ng = started.nginx(prefix, conf, nofile=NGINX_NOFILE)
        ng.with_bind_ports(80, _free_port())
        nginx = started.start(ng)
    return postgres, toxiproxy, nginx


def _published(container: Container, port: str) -> int:
    """The host port published for ``port`` (``"5432/tcp"``), once Docker reports it."""

    def probe() -> int:
        container.reload()
        bindings = container.attrs["NetworkSettings"]["Ports"].get(port) or []
        return int(bindings[0]["HostPort"]) if bindings else 0

    return eventually_sync(probe, what=f"{container.name} to publish {port}", timeout=10)


def remove_session(session: str) -> None:
    """Belt and braces: remove anything still labelled with this rig's session."""
    client = docker.from_env()
    try:
        flt = {"label": f"{LABEL_SESSION}={session}"}
        for c in client.containers.list(all=True, filters=flt):
            with contextlib.suppress(docker.errors.NotFound):
                c.remove(force=True, v=True)
        for n in client.networks.list(filters=flt):
            with contextlib.suppress(docker.errors.NotFound):
                n.remove()
    finally:
        client.close()


@contextlib.asynccontextmanager
async def rig(*, with_nginx: bool = False) -> AsyncIterator[Rig]:
    """Start the rig, wait until Postgres answers directly and through the proxy, yield it."""
    started = Started(await asyncio.to_thread(docker_client))
    toxi: ToxiproxyClient | None = None
    try:
        pg, toxi_c, nginx = await asyncio.to_thread(_start_rig, started, with_nginx)
        assert started.network is not None
        pg_port = await asyncio.to_thread(_published, pg, "5432/tcp")
        api_port = await asyncio.to_thread(_published, toxi_c, f"{TOXIPROXY_API_PORT}/tcp")
        proxy_port = await asyncio.to_thread(_published, toxi_c, f"{PROXY_PORT}/tcp")
        nginx_port = await asyncio.to_thread(_published, nginx, "80/tcp") if nginx else None
        toxi = ToxiproxyClient(f"http://127.0.0.1:{api_port}")
        the_rig = Rig(
            session=started.session,
            client=started.client,
            network=started.network,
            postgres=pg,
            toxiproxy=toxi_c,
            nginx=nginx,
            pg_port=pg_port,
            proxy_port=proxy_port,
            api_port=api_port,
            nginx_port=nginx_port,
            toxi=toxi,
        )
        await eventually(toxi.version, what="toxiproxy API to answer", timeout=20)
        # Upstream by container name: Docker's DNS resolves it on user networks,
        # also after a partition heal reconnects the container.
        await toxi.create_proxy(PROXY_NAME, f"0.0.0.0:{PROXY_PORT}", f"{pg.name}:5432")
        await eventually(
            lambda: pg_select_ok("127.0.0.1", pg_port, SUPERUSER, timeout=2.0),
            what="postgres to answer SELECT 1 on its published port",
            timeout=60,
            interval=0.3,
        )
        conn = await asyncpg.connect(
            host="127.0.0.1",
            port=pg_port,
            user=SUPERUSER.user,
            password=SUPERUSER.password,
            database=SUPERUSER.database,
            timeout=5,
        )
        try:
            await conn.execute(
                f"CREATE ROLE {APP_USER.user} LOGIN PASSWORD '{APP_USER.password}' NOSUPERUSER"
            )
        finally:
            await conn.close()
        await eventually(
            lambda: pg_select_ok("127.0.0.1", proxy_port, APP_USER, timeout=2.0),
            what="postgres to answer SELECT 1 through the toxiproxy link",
            timeout=20,
        )
        yield the_rig
    finally:
        if toxi is not None:
            await toxi.aclose()
        await asyncio.to_thread(started.remove)


@contextlib.contextmanager
def timed() -> Iterator[list[float]]:
    """``with timed() as t: ...`` then ``t[0]`` is the elapsed seconds."""
    out: list[float] = []
    start = time.monotonic()
    try:
        yield out
    finally:
        out.append(time.monotonic() - start)


async def leftovers(the_rig: Rig) -> list[str]:
    """Everything a healed fault must not leave behind, as readable lines (empty = clean).

    Toxics, disabled proxies, stopped or paused containers, sessions of the
    non-superuser role (held connections) and granted advisory locks.
    """
    found: list[str] = []
    for name, proxy in (await the_rig.toxi.proxies()).items():
        if not proxy.enabled:
            found.append(f"proxy {name} disabled")
        found.extend(f"proxy {name} toxic {t.get('name')}" for t in proxy.toxics)
    found.extend(await asyncio.to_thread(the_rig.leftovers))
    conn = await asyncpg.connect(
        host="127.0.0.1",
        port=the_rig.pg_port,
        user=SUPERUSER.user,
        password=SUPERUSER.password,
        database=SUPERUSER.database,
        timeout=5,
    )
    try:
        sessions = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = $1", APP_USER.user
        )
        locks = await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
        )
    finally:
        await conn.close()
    if sessions:
        found.append(f"{sessions} sessions of role {APP_USER.user} still open")
    if locks:
        found.append(f"{locks} advisory locks still held")
    return found


async def assert_clean(the_rig: Rig, timeout: float = 10.0) -> None:
    """Wait (bounded) until :func:`leftovers` is empty: the server ends closed sessions late."""

    async def clean() -> bool:
        return not await leftovers(the_rig)

    await eventually(
        clean,
        what="no toxics, disabled proxies, stopped/paused containers, held sessions or locks",
        timeout=timeout,
        context=lambda: _describe_leftovers(the_rig),
    )


async def _describe_leftovers(the_rig: Rig) -> str:
    return "leftovers: " + "; ".join(await leftovers(the_rig))
