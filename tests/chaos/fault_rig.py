"""A minimal, labelled Postgres + Toxiproxy (+ nginx) rig for the fault tests.

Why not the cluster module: it is being written in parallel and needs
loomcycle, which cannot be had here.  Faults act on small handles
(:class:`~chaos.faults.ContainerTarget`, :class:`~chaos.faults.LinkTarget`), so
a few containers on their own network are enough to prove each fault's
effect and heal through a real data path.

Everything runs on one user-defined network with a fixed subnet (so a
partition heal can ask for the container's old IP back), publishes ports on
127.0.0.1 only, carries :func:`chaos.labels.docker_labels`, and is removed in
``finally`` by :func:`rig`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import docker
import docker.errors
from docker.models.containers import Container
from docker.models.networks import Network

from chaos.cluster.toxiproxy import ToxiproxyClient
from chaos.errors import SetupError
from chaos.faults.probes import PgCredentials, pg_select_ok
from chaos.labels import LABEL_SESSION, docker_labels, new_session_id
from chaos.wait import eventually, eventually_sync

PG_IMAGE = "loomchaos/postgres:local"
TOXIPROXY_IMAGE = "loomchaos/toxiproxy:local"
NGINX_IMAGE = "loomchaos/nginx:local"

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


def _published(container: Container, port: str) -> int:
    """The host port published for ``port`` (``"5432/tcp"``), once Docker reports it."""

    def probe() -> int:
        container.reload()
        bindings = container.attrs["NetworkSettings"]["Ports"].get(port) or []
        return int(bindings[0]["HostPort"]) if bindings else 0

    return eventually_sync(probe, what=f"{container.name} to publish {port}", timeout=10)


def _create_network(client: docker.DockerClient, name: str, labels: dict[str, str]) -> Network:
    """A network with a subnet of our own: a static IP needs a user-configured subnet.

    The subnet is picked at random from 10.213.0.0/16 and retried on overlap,
    because other sessions may hold one.
    """
    last: Exception | None = None
    for _ in range(8):
        third = random.randrange(1, 254)
        pool = docker.types.IPAMPool(subnet=f"10.213.{third}.0/24")
        try:
            return client.networks.create(
                name,
                driver="bridge",
                labels=labels,
                ipam=docker.types.IPAMConfig(pool_configs=[pool]),
            )
        except (
            docker.errors.APIError
        ) as exc:  # "Pool overlaps with other one on this address space"
            last = exc
    raise SetupError(f"could not create a network with a free subnet: {last}")


def _run(client: docker.DockerClient, **kwargs: Any) -> Container:
    return client.containers.run(detach=True, **kwargs)


def _free_port() -> int:
    """A free host port on 127.0.0.1, to publish at a FIXED number.

    An ephemeral published port (``("127.0.0.1", None)``) gets a new number
    every time the container starts, so a probe of a container that a fault
    stops and starts again would look at the wrong port after the heal.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_rig(with_nginx: bool) -> tuple[str, docker.DockerClient, list[Any]]:
    """Start the containers (blocking; run in a thread).  Returns what to clean up."""
    client = docker.from_env()
    for image in (PG_IMAGE, TOXIPROXY_IMAGE) + ((NGINX_IMAGE,) if with_nginx else ()):
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound as exc:
            raise SetupError(f"image {image} is missing: build the local images first") from exc
    session = new_session_id()
    labels = docker_labels(session, role="fault-rig")
    created: list[Any] = []
    prefix = f"lcfault-{session}"
    net = _create_network(client, f"{prefix}-net", labels)
    created.append(net)
    pg = _run(
        client,
        image=PG_IMAGE,
        name=f"{prefix}-pg",
        command=[
            "postgres",
            "-c",
            f"max_connections={PG_MAX_CONNECTIONS}",
            "-c",
            f"superuser_reserved_connections={PG_SUPERUSER_RESERVED}",
        ],
        environment={
            "POSTGRES_USER": SUPERUSER.user,
            "POSTGRES_PASSWORD": SUPERUSER.password,
            "POSTGRES_DB": SUPERUSER.database,
        },
        labels=labels,
        network=net.name,
        ports={"5432/tcp": ("127.0.0.1", _free_port())},
    )
    created.append(pg)
    # The proxy's listen port is published up front: Toxiproxy opens it later.
    toxi = _run(
        client,
        image=TOXIPROXY_IMAGE,
        name=f"{prefix}-toxiproxy",
        labels=labels,
        network=net.name,
        ports={
            "8474/tcp": ("127.0.0.1", _free_port()),
            f"{PROXY_PORT}/tcp": ("127.0.0.1", _free_port()),
        },
    )
    created.append(toxi)
    created_nginx = None
    if with_nginx:
        created_nginx = client.containers.create(
            image=NGINX_IMAGE,
            name=f"{prefix}-nginx",
            labels=labels,
            network=net.name,
            ports={"80/tcp": ("127.0.0.1", _free_port())},
            ulimits=[docker.types.Ulimit(name="nofile", soft=NGINX_NOFILE, hard=NGINX_NOFILE)],
        )
        created.append(created_nginx)
        _put_file(created_nginx, "/etc/nginx/nginx.conf", NGINX_CONF.encode())
        created_nginx.start()
    return session, client, created


def _put_file(container: Container, path: str, content: bytes) -> None:
    import io
    import tarfile

    directory, name = path.rsplit("/", 1)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        info.mtime = int(time.time())
        tar.addfile(info, io.BytesIO(content))
    container.put_archive(directory, buf.getvalue())


def _remove(client: docker.DockerClient, created: list[Any]) -> None:
    """Remove what this rig created, containers first, ignoring what is already gone."""
    for obj in reversed(created):
        with contextlib.suppress(docker.errors.NotFound):
            if isinstance(obj, Container):
                obj.remove(force=True, v=True)
    for obj in created:
        with contextlib.suppress(docker.errors.NotFound):
            if isinstance(obj, Network):
                obj.remove()


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
    holder: dict[str, Any] = {}

    def start() -> None:
        session, client, created = _start_rig(with_nginx)
        holder.update(session=session, client=client, created=created)

    try:
        await asyncio.to_thread(start)
        client: docker.DockerClient = holder["client"]
        created: list[Any] = holder["created"]
        pg, toxi_c = created[1], created[2]
        nginx = created[3] if with_nginx else None
        pg_port = await asyncio.to_thread(_published, pg, "5432/tcp")
        api_port = await asyncio.to_thread(_published, toxi_c, "8474/tcp")
        proxy_port = await asyncio.to_thread(_published, toxi_c, f"{PROXY_PORT}/tcp")
        nginx_port = await asyncio.to_thread(_published, nginx, "80/tcp") if nginx else None
        toxi = ToxiproxyClient(f"http://127.0.0.1:{api_port}")
        the_rig = Rig(
            session=holder["session"],
            client=client,
            network=created[0],
            postgres=pg,
            toxiproxy=toxi_c,
            nginx=nginx,
            pg_port=pg_port,
            proxy_port=proxy_port,
            api_port=api_port,
            nginx_port=nginx_port,
            toxi=toxi,
        )
        holder["toxi"] = toxi
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
        if "toxi" in holder:
            await holder["toxi"].aclose()
        if "client" in holder:
            await asyncio.to_thread(_remove, holder["client"], holder["created"])
            await asyncio.to_thread(remove_session, holder["session"])
            holder["client"].close()


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
