"""One cluster's lifecycle: start, verify, reset between tests, tear down, collect logs.

A :class:`Cluster` owns one Docker network with pinned addresses, Postgres on
a named volume, one Toxiproxy, nginx, and (when the target can be had) N
replicas; see :mod:`chaos.cluster.topology` for the shape and why.

Rules it keeps:

* docker-py blocks, so every Docker call runs in ``asyncio.to_thread``;
* "ready" means verified from the host through 127.0.0.1, each wait with a
  deadline whose failure names what was awaited, what was last seen and the
  log tail of the container concerned;
* whatever happens, :meth:`teardown` removes everything carrying this
  cluster's labels; a failed or interrupted :meth:`start` tears down before
  re-raising, and :mod:`chaos.cluster.lifecycle` covers the process exiting.

Published host ports change whenever a container restarts (Docker picks a new
free one), so the host-side accessors read a cache that :meth:`refresh_endpoints`
rebuilds; :meth:`start_node` and :meth:`reset` refresh it themselves, and a
fault that restarts a container on its own must call :meth:`refresh_endpoints`
afterwards.  The cluster offers no kill, stop or pause of its own: a scenario
breaks things only through :mod:`chaos.faults`, which records every fault in
the history (tests of reset itself use :mod:`chaos.testing.sabotage`).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import docker
import docker.errors
import httpx
from docker.models.containers import Container

from chaos.cluster import lifecycle
from chaos.cluster.addresses import LOOPBACK, localhost_url, published_port
from chaos.cluster.docker_ops import (
    ContainerPlan,
    Removed,
    create_network,
    docker_client,
    log_tail,
    remove_labelled,
    require_image,
    write_container_logs,
)
from chaos.cluster.launch import ReplicaLaunch, TargetAdapter
from chaos.cluster.nginx import SELF_CHECK_PATH
from chaos.cluster.node_container import start_existing, start_node
from chaos.cluster.plans import (
    cluster_labels,
    nginx_plan,
    postgres_plan,
    replica_pg_dsn,
    replica_plan,
    toxiproxy_plan,
)
from chaos.cluster.readiness import (
    PgCredentials,
    health_lists_all,
    nginx_self_check,
    pg_select_one,
    proxies_ready,
)
from chaos.cluster.spec import ClusterSpec, ResolvedImages
from chaos.cluster.topology import (
    NGINX_PORT,
    POSTGRES_PORT,
    TOXIPROXY_API_PORT,
    Link,
    Node,
    Topology,
    proxy_name,
    replica_ids,
)
from chaos.cluster.toxiproxy import ToxiproxyClient
from chaos.errors import SetupError, TargetUnavailable
from chaos.labels import LABEL_CLUSTER, LABEL_SESSION, LABEL_SUITE, SUITE
from chaos.wait import eventually

Hook = Callable[["Cluster"], Awaitable[None]]
State = Literal["new", "starting", "ready", "failed", "torn_down"]


@dataclass(frozen=True)
class Deadlines:
    """How long each readiness wait may take, in seconds (generous: 2 cores, cold caches)."""

    postgres_s: float = 60.0
    toxiproxy_s: float = 20.0
    replicas_s: float = 120.0
    lb_s: float = 30.0
    #: ``docker stop`` grace before SIGKILL.
    stop_grace_s: int = 10


async def _all_settled(steps: Iterable[Awaitable[None]]) -> None:
    """Run steps concurrently and let every one finish before raising the first error.

    ``asyncio.gather`` would raise at the first failure while the other steps'
    threads go on creating containers, after the teardown had looked for them.
    """
    results = await asyncio.gather(*steps, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


class Cluster:
    """A running (or about to run) cluster; see the module docstring for its rules."""

    def __init__(
        self,
        spec: ClusterSpec,
        images: ResolvedImages,
        *,
        session_id: str,
        adapter: TargetAdapter | None = None,
        verify_backplane: Hook | None = None,
        wait_idle: Hook | None = None,
        deadlines: Deadlines = Deadlines(),
        cluster_id: str | None = None,
    ) -> None:
        self.spec = spec
        self.images = images
        self.session_id = session_id
        self.adapter = adapter
        #: Target-specific proof that cross-replica messaging works (run after health).
        self.verify_backplane = verify_backplane
        #: Target-specific wait for "no run is running" (run by :meth:`reset`).
        self.wait_idle = wait_idle
        self.deadlines = deadlines
        self.id = cluster_id or f"c{secrets.token_hex(3)}"
        self.replica_ids: tuple[str, ...] = replica_ids(spec.replicas)
        self.with_replicas = False
        self.state: State = "new"
        #: Seconds: ``start_s``, ``teardown_s``, ``last_reset_s``.
        self.timings: dict[str, float] = {}
        self.reset_times: list[float] = []
        # Database name differs from the user on purpose: the local image's entrypoint
        # (unlike the official one) creates POSTGRES_DB only when it differs from the user.
        self._creds = PgCredentials("loomchaos", secrets.token_hex(8), "chaos")
        self._docker: docker.DockerClient | None = None
        self._topology: Topology | None = None
        self._launches: dict[str, ReplicaLaunch] = {}
        #: Replica node -> the replica id its container serves as, where it differs from
        #: the node's own (see :meth:`recreate_replica`); :meth:`reset` restores them.
        self._identities: dict[str, str] = {}
        self._ports: dict[str, dict[int, int]] = {}
        self._toxiproxy: ToxiproxyClient | None = None
        self._http: httpx.AsyncClient | None = None
        # Guards container creation against a concurrent teardown (see _teardown_sync).
        self._creating = threading.Condition()
        self._in_flight = 0
        self._closing = False

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Cluster:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.teardown()

    async def start(self, with_replicas: bool = True) -> Cluster:
        """Create and verify everything; on any failure or interruption, tear down and re-raise."""
        if self.state != "new":
            raise RuntimeError(f"cluster {self.id} was already started (state {self.state})")
        if with_replicas:
            if self.images.loomcycle is None:
                raise TargetUnavailable(
                    "no target image: replicas cannot start here; use start(with_replicas=False)"
                )
            if self.adapter is None:
                raise ValueError("start(with_replicas=True) needs a target adapter")
        self.with_replicas = with_replicas
        self.state = "starting"
        # Registered before the first Docker object exists, so exit cleans up whatever exists.
        lifecycle.register(self.id, self._teardown_sync)
        began = time.monotonic()
        try:
            await self._start()
        except BaseException:
            self.state = "failed"
            await self._teardown_after_failure()
            raise
        self.state = "ready"
        self.timings["start_s"] = time.monotonic() - began
        return self

    async def _start(self) -> None:
        if self.with_replicas:
            assert self.adapter is not None
            self._launches = {
                rid: self.adapter.replica_launch(self.spec, rid, replica_pg_dsn(self._creds, rid))
                for rid in self.replica_ids
            }
        ports = {launch.port for launch in self._launches.values()} or {8787}
        if len(ports) != 1:
            raise ValueError(f"replicas must all listen on one port, got {sorted(ports)}")
        self._docker = await asyncio.to_thread(docker_client)
        await asyncio.to_thread(self._check_images)
        subnet = await asyncio.to_thread(self._create_network_and_volume)
        self._topology = Topology(self.id, subnet, ports.pop(), self.replica_ids)
        self._http = httpx.AsyncClient(timeout=10.0)
        # The three infrastructure containers do not depend on each other to start.
        await _all_settled(self._create_and_start(n.name) for n in self.topology.infra_nodes)
        await self.refresh_endpoints()
        await self._ensure_proxies()
        # loomcycle's first Postgres ping at boot is fatal: Postgres first, then replicas.
        await self._wait_postgres()
        if self.with_replicas:
            await _all_settled(self._create_and_start(rid) for rid in self.replica_ids)
            await self.refresh_endpoints()
        await self.verify()

    def _check_images(self) -> None:
        client = self._client()
        refs = [self.images.postgres, self.images.toxiproxy, self.images.nginx]
        if self.with_replicas and self.images.loomcycle:
            refs.append(self.images.loomcycle)
        for ref in refs:
            require_image(client, ref)

    def _create_network_and_volume(self) -> str:
        client = self._client()
        name = f"loomchaos-{self.id}"
        _, subnet = create_network(
            client, name, cluster_labels(self.session_id, self.id, "network")
        )
        client.volumes.create(
            name=f"{name}-pgdata", labels=cluster_labels(self.session_id, self.id, "pgdata")
        )
        return subnet

    def _plan(self, node: str) -> ContainerPlan:
        topo = self.topology
        if node == "postgres":
            return postgres_plan(topo, self.spec, self.images, self._creds, self.session_id)
        if node == "toxiproxy":
            return toxiproxy_plan(topo, self.images, self.session_id)
        if node == "nginx":
            return nginx_plan(topo, self.spec, self.images, self.session_id)
        assert self.images.loomcycle is not None
        identity = self._identities.get(node)
        return replica_plan(
            topo,
            self.spec,
            self.images.loomcycle,
            topo.node(node),
            self._launches[node],
            self.session_id,
            hostname=None if identity is None else f"{identity}-host",
        )

    async def _create_and_start(self, node: str) -> None:
        plan = self._plan(node)

        def run() -> None:
            with self._creating:
                if self._closing:
                    raise RuntimeError(f"cluster {self.id} is being torn down; not creating {node}")
                self._in_flight += 1
            try:
                container = start_node(self._client(), plan)
                self._attach_check(container, node)
            finally:
                with self._creating:
                    self._in_flight -= 1
                    self._creating.notify_all()

        await asyncio.to_thread(run)

    def _attach_check(self, container: Container, node: str) -> None:
        """Fail loudly if Docker did not give the container its pinned address."""
        networks = (container.attrs.get("NetworkSettings") or {}).get("Networks") or {}
        endpoint = networks.get(self.topology.network_name) or {}
        wanted = self.topology.node(node).ip
        got = (endpoint.get("IPAMConfig") or {}).get("IPv4Address")
        if got != wanted:
            raise SetupError(f"{container.name} was created with address {got!r}, not {wanted}")

    async def verify(self) -> None:
        """Prove the cluster ready from the host; raise :class:`~chaos.wait.WaitTimeout` if not.

        Postgres answers ``SELECT 1``; Toxiproxy answers and has every proxy,
        enabled; every replica's health lists all ids; the load balancer
        answers (with no replicas, nginx's own probe path is the proof it is up); then
        the target's backplane hook, if any.
        """
        await self._wait_postgres()
        await eventually(
            lambda: proxies_ready(self.toxiproxy, self.proxy_names),
            what=f"Toxiproxy at {self.toxiproxy_url} to hold proxies {list(self.proxy_names)}",
            timeout=self.deadlines.toxiproxy_s,
            context=lambda: self.log_tail("toxiproxy"),
        )
        if self.with_replicas:
            await asyncio.gather(*(self._wait_replica(rid) for rid in self.replica_ids))
        await self._wait_lb()
        if self.with_replicas and self.verify_backplane is not None:
            await self.verify_backplane(self)

    async def _wait_postgres(self) -> None:
        async def probe() -> bool:
            return await pg_select_one(self._creds, self._port("postgres", POSTGRES_PORT))

        await eventually(
            probe,
            what="Postgres to answer SELECT 1 from the host",
            timeout=self.deadlines.postgres_s,
            interval=0.5,
            context=lambda: self.log_tail("postgres"),
        )

    async def _wait_replica(self, rid: str) -> None:
        assert self.adapter is not None

        async def probe() -> object:
            client = self.adapter.client(self.replica_url(rid))  # type: ignore[union-attr]
            try:
                return health_lists_all(await client.health(), self.replica_ids)
            finally:
                await client.aclose()

        await eventually(
            probe,
            what=f"replica {rid}'s health to list {list(self.replica_ids)}",
            timeout=self.deadlines.replicas_s,
            interval=0.5,
            context=lambda: self.log_tail(rid),
        )

    async def _wait_lb(self) -> None:
        if self.with_replicas:
            assert self.adapter is not None

            async def probe() -> object:
                client = self.adapter.client(self.lb_url)  # type: ignore[union-attr]
                try:
                    return (await client.health()).ok
                finally:
                    await client.aclose()

            what = f"the load balancer at {self.lb_url} to answer a healthy replica"
        else:

            async def probe() -> object:
                assert self._http is not None
                url = f"{self.lb_url}{SELF_CHECK_PATH}"
                return await nginx_self_check(self._http, url, self.id)

            what = f"nginx at {self.lb_url} to answer its own probe {SELF_CHECK_PATH}"
        await eventually(
            probe,
            what=what,
            timeout=self.deadlines.lb_s,
            interval=0.5,
            context=lambda: self.log_tail("nginx"),
        )

    async def reset(self) -> float:
        """Bring the cluster back to its verified start state between tests; returns seconds.

        Unpauses, starts or re-creates any container a test paused, stopped or
        removed (a replica comes back under its own id, address and volume);
        Toxiproxy loses every toxic and gets back exactly the planned proxies,
        all enabled; then waits for the target to have no running run and
        verifies the whole cluster again.
        """
        if self.state not in ("ready", "failed") or self._topology is None:
            raise RuntimeError(f"cannot reset cluster {self.id} in state {self.state}")
        began = time.monotonic()
        try:
            await self._reset()
        except BaseException:
            self.state = "failed"  # a later reset may retry; the manager replaces it
            raise
        self.state = "ready"
        elapsed = time.monotonic() - began
        self.reset_times.append(elapsed)
        self.timings["last_reset_s"] = elapsed
        return elapsed

    async def _reset(self) -> None:
        for node in list(self._identities):  # a node serving under another id: back to its own
            await self.recreate_replica(node)
        names = [n.name for n in self.topology.infra_nodes]
        if self.with_replicas:
            names += list(self.replica_ids)
        for name in names:  # in order: Postgres before the replicas that need it
            await self._revive(name)
        await self.refresh_endpoints()
        await self._ensure_proxies()
        await self.toxiproxy.reset()
        await self._wait_postgres()
        if self.with_replicas and self.wait_idle is not None:
            await self.wait_idle(self)
        await self.verify()

    async def _revive(self, node: str) -> str:
        """Make ``node``'s container run again, on its network at its address.

        Returns what was done ("recreate", "reconnected+started", "running", ...)
        so that logs and tests can tell a no-op from a repair.
        """

        def revive() -> str:
            client = self._client()
            try:
                container = client.containers.get(self.container_name(node))
            except docker.errors.NotFound:
                return "recreate"
            done: list[str] = []
            networks = (container.attrs.get("NetworkSettings") or {}).get("Networks") or {}
            if self.topology.network_name not in networks:  # a partition fault disconnected it
                plan = self._plan(node)
                client.networks.get(plan.network).connect(
                    container, ipv4_address=plan.ip, aliases=list(plan.aliases)
                )
                done.append("reconnected")
            state = container.attrs.get("State") or {}
            if state.get("Paused"):
                container.unpause()
                done.append("unpaused")
            elif not state.get("Running"):
                start_existing(container)
                done.append("started")
            return "+".join(done) or "running"

        action = await asyncio.to_thread(revive)
        if action == "recreate":
            await self._create_and_start(node)
        return action

    async def _ensure_proxies(self) -> None:
        """Exactly the planned proxies: create missing ones, drop any a test added."""

        async def api_up() -> str:
            return await self.toxiproxy.version()

        await eventually(
            api_up,
            what=f"Toxiproxy's API at {self.toxiproxy_url}",
            timeout=self.deadlines.toxiproxy_s,
            context=lambda: self.log_tail("toxiproxy"),
        )
        present = await self.toxiproxy.proxies()
        planned = {plan.name: plan for plan in self.topology.proxies}
        for name in set(present) - set(planned):
            await self.toxiproxy.delete_proxy(name)
        for name, plan in planned.items():
            if name not in present:
                await self.toxiproxy.create_proxy(name, plan.listen, plan.upstream)

    async def teardown(self) -> Removed:
        """Remove every container, network and volume of this cluster.  Safe to call again."""
        began = time.monotonic()
        await self._close_clients()
        removed = await asyncio.to_thread(self._teardown_sync)
        self.state = "torn_down"
        self.timings["teardown_s"] = time.monotonic() - began
        return removed

    async def _teardown_after_failure(self) -> None:
        # The task may be cancelled (Ctrl-C under asyncio); the removal runs in a
        # thread that finishes even then, and the exit hook repeats it if needed.
        try:
            await self._close_clients()
            await asyncio.to_thread(self._teardown_sync)
            self.state = "torn_down"
        except BaseException:
            pass

    def _teardown_sync(self) -> Removed:
        """Removal by label (suite, session, cluster id): finds what a half-done call created.

        Creation threads still running (an interrupted ``start()`` cannot stop
        them) are waited for first, and no new one begins, so nothing is
        created after the removal has looked.
        """
        with self._creating:
            self._closing = True
            self._creating.wait_for(lambda: self._in_flight == 0, timeout=120)
        client = self._docker or docker_client()
        removed = remove_labelled(
            client, {LABEL_SUITE: SUITE, LABEL_SESSION: self.session_id, LABEL_CLUSTER: self.id}
        )
        lifecycle.unregister(self.id)
        return removed

    async def _close_clients(self) -> None:
        toxiproxy, http = self._toxiproxy, self._http
        self._toxiproxy = self._http = None
        if toxiproxy is not None:
            await toxiproxy.aclose()
        if http is not None:
            await http.aclose()

    async def collect_logs(self, dest_dir: Path) -> list[Path]:
        """Write each container's log (and Toxiproxy's proxy table) under ``dest_dir``."""
        written = await asyncio.to_thread(self._write_logs, dest_dir)
        if self._toxiproxy is not None:
            try:
                proxies = await self._toxiproxy.proxies()
            except (httpx.HTTPError, RuntimeError) as exc:
                text = f"toxiproxy unreachable: {exc}\n"
            else:
                text = json.dumps({n: p.__dict__ for n, p in proxies.items()}, indent=2)
            path = dest_dir / "toxiproxy-proxies.json"
            await asyncio.to_thread(path.write_text, text)
            written.append(path)
        return written

    def _write_logs(self, dest_dir: Path) -> list[Path]:
        labels = {LABEL_CLUSTER: self.id, LABEL_SESSION: self.session_id}
        return write_container_logs(self._client(), labels, dest_dir)

    # ------------------------------------------------------------------ node operations

    async def container(self, node: str) -> Container:
        """The docker-py handle of ``node`` (``postgres``, ``toxiproxy``, ``nginx``, ``r1``...)."""
        name = self.container_name(node)
        return await asyncio.to_thread(self._client().containers.get, name)

    async def start_node(self, node: str) -> None:
        """Start ``node`` again (re-created if it was removed) and re-read its ports."""
        await self._revive(node)
        await self._refresh_node(node)

    def replica_identity(self, node: str) -> str:
        """The replica id replica node ``node`` serves as (its own unless re-created)."""
        self.topology.node(node)  # KeyError for an unknown node
        return self._identities.get(node, node)

    def node_of(self, replica_id: str) -> str:
        """The replica node serving as ``replica_id`` (``replica_id`` itself if none does)."""
        return next((n for n, i in self._identities.items() if i == replica_id), replica_id)

    async def recreate_replica(self, node: str, replica_id: str | None = None) -> str:
        """Replace replica node ``node``'s container by a new one serving as ``replica_id``.

        The node keeps its address, network alias, published-port plan and both
        Toxiproxy links (``pg_<node>``, ``lb_<node>``), so nginx and Postgres reach
        the new process as they reached the old one; what changes is the target's
        replica id and the container's hostname (``<replica_id>-host``, never equal
        to the id: see :func:`chaos.cluster.plans.replica_plan`).  The old container
        is removed by force (SIGKILL if it still runs: no goodbye).  ``None`` means
        the node's own id, which is how :meth:`reset` restores it.  Returns the id.
        """
        if not self.with_replicas or self.adapter is None:
            raise RuntimeError(f"cluster {self.id} runs no replicas to re-create")
        if node not in self.replica_ids:
            raise KeyError(f"no replica node {node!r} in cluster {self.id}")
        wanted = replica_id or node
        self._launches[node] = self.adapter.replica_launch(
            self.spec, wanted, replica_pg_dsn(self._creds, node)
        )
        if wanted == node:
            self._identities.pop(node, None)
        else:
            self._identities[node] = wanted

        def remove() -> None:
            try:
                old = self._client().containers.get(self.container_name(node))
            except docker.errors.NotFound:
                return
            old.remove(force=True)

        await asyncio.to_thread(remove)
        await self._create_and_start(node)
        await self._refresh_node(node)
        return wanted

    async def log_tail(self, node: str, lines: int = 40) -> str:
        try:
            container = await self.container(node)
        except docker.errors.DockerException as exc:
            return f"(no container for {node}: {exc})"
        return await asyncio.to_thread(log_tail, container, lines)

    # ------------------------------------------------------------------ endpoints

    async def refresh_endpoints(self) -> None:
        """Re-read every node's published ports (they change when a container restarts)."""
        nodes = [n.name for n in self.nodes]
        await asyncio.gather(*(self._refresh_node(n) for n in nodes))

    async def _follow_toxiproxy(self) -> None:
        """Point the Toxiproxy client at the API's current host port (new after a restart)."""
        if self.state in ("new", "torn_down") or "toxiproxy" not in self._ports:
            return
        url = self.toxiproxy_url
        if self._toxiproxy is not None and self._toxiproxy.base_url == url:
            return
        old, self._toxiproxy = self._toxiproxy, ToxiproxyClient(url)
        if old is not None:
            await old.aclose()

    async def _refresh_node(self, node: str) -> None:
        wanted = self._plan_ports(node)

        def read() -> dict[int, int]:
            try:
                container = self._client().containers.get(self.container_name(node))
            except docker.errors.NotFound:
                return {}
            published = (container.attrs.get("NetworkSettings") or {}).get("Ports") or {}
            found: dict[int, int] = {}
            for port in wanted:
                try:
                    found[port] = published_port(published, port)
                except LookupError:
                    continue  # not running: no binding until it starts again
            return found

        found = await asyncio.to_thread(read)
        if found:
            self._ports[node] = found
        else:
            self._ports.pop(node, None)
        if node == "toxiproxy":
            await self._follow_toxiproxy()

    def _plan_ports(self, node: str) -> tuple[int, ...]:
        if node == "postgres":
            return (POSTGRES_PORT,)
        if node == "toxiproxy":
            return (TOXIPROXY_API_PORT, *(p.listen_port for p in self.topology.proxies))
        if node == "nginx":
            return (NGINX_PORT,)
        return (self.topology.replica_port,)

    def _port(self, node: str, container_port: int) -> int:
        try:
            return self._ports[node][container_port]
        except KeyError:
            raise LookupError(
                f"{node} has no published port {container_port} (not running, or restarted "
                "outside the cluster: call refresh_endpoints())"
            ) from None

    # ------------------------------------------------------------------ accessors

    @property
    def topology(self) -> Topology:
        if self._topology is None:
            raise RuntimeError(f"cluster {self.id} has not been started")
        return self._topology

    @property
    def nodes(self) -> tuple[Node, ...]:
        topo = self.topology
        return topo.infra_nodes + (topo.replica_nodes if self.with_replicas else ())

    def container_name(self, node: str) -> str:
        return self.topology.node(node).container_name

    @property
    def pg_credentials(self) -> PgCredentials:
        return self._creds

    @property
    def pg_port(self) -> int:
        return self._port("postgres", POSTGRES_PORT)

    @property
    def pg_dsn(self) -> str:
        """Superuser DSN from the host (127.0.0.1, published port), URL form."""
        return self._creds.url(LOOPBACK, self.pg_port)

    def replica_pg_dsn(self, replica_id: str) -> str:
        """The DSN replica ``replica_id`` was given (inside the network, through ``pg_<id>``)."""
        return replica_pg_dsn(self._creds, replica_id)

    @property
    def toxiproxy(self) -> ToxiproxyClient:
        if self._toxiproxy is None:
            raise RuntimeError(
                f"cluster {self.id} has no Toxiproxy client (not started or torn down)"
            )
        return self._toxiproxy

    @property
    def toxiproxy_url(self) -> str:
        return localhost_url(self._port("toxiproxy", TOXIPROXY_API_PORT))

    @property
    def lb_url(self) -> str:
        return localhost_url(self._port("nginx", NGINX_PORT))

    def replica_url(self, replica_id: str) -> str:
        """One replica's own published port (bypasses nginx and its ``lb_<id>`` proxy).

        ``replica_id`` may also be the id a re-created node serves as
        (:meth:`recreate_replica`): its node's port then."""
        return localhost_url(self._port(self.node_of(replica_id), self.topology.replica_port))

    @property
    def replica_urls(self) -> Mapping[str, str]:
        return (
            {rid: self.replica_url(rid) for rid in self.replica_ids} if self.with_replicas else {}
        )

    @property
    def proxy_names(self) -> tuple[str, ...]:
        return tuple(plan.name for plan in self.topology.proxies)

    def proxy_name(self, link: Link, replica_id: str) -> str:
        """``pg_<id>`` (replica -> Postgres) or ``lb_<id>`` (nginx -> replica)."""
        name = proxy_name(link, replica_id)
        self.topology.proxy(name)  # KeyError for an unknown replica
        return name

    def probe_address(self, proxy: str) -> tuple[str, int]:
        """Host address of ``proxy``'s listener: connect here to prove a fault in the data path.

        A connection to it goes host -> Toxiproxy -> the proxy's upstream, the
        same way the replica's (``pg_*``) or nginx's (``lb_*``) traffic does.
        """
        plan = self.topology.proxy(proxy)
        return LOOPBACK, self._port("toxiproxy", plan.listen_port)

    def _client(self) -> docker.DockerClient:
        if self._docker is None:
            raise SetupError(f"cluster {self.id} has no Docker client (not started)")
        return self._docker
