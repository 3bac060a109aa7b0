"""Measure what an nginx load balancer loses when its open-files limit is too low.

loomcycle's write-up lost 3-50 % of circuits to nginx 500s because the load
balancer ran with Docker's default ``nofile=1024``; the fix was a higher
container ulimit plus ``worker_rlimit_nofile`` and ``worker_connections``.
The mechanism is nginx's own, so this rig reproduces it with real nginx and
no loomcycle:

* an UPSTREAM nginx serves a small file at a throttled rate (``limit_rate``),
  so every request holds its connections open for seconds, as a streamed run
  does;
* a FRONT nginx, the load balancer under test, proxies to it exactly as the
  cluster's does (HTTP/1.1, buffering off), under a chosen :class:`NofileSetting`;
* ``n`` concurrent requests go through the front, and each ends as one
  :class:`Outcome` class: complete 2xx, a 5xx, a refused or reset connection,
  a timeout, or something else (a truncated body, another status).

Each proxied request costs the front two descriptors (client socket and
upstream socket), so ``n`` requests need about ``2n`` plus a few for logs
and listeners.  Below that, ``accept4()`` or the upstream ``socket()`` fails
with EMFILE: nginx logs "Too many open files" and answers 500, which is the
loss the write-up saw.

Everything runs on its own labelled network (:func:`chaos.labels.docker_labels`
plus role labels), the front is published on 127.0.0.1 only, and
:class:`NofileRig` removes all of it on the way out, Ctrl-C included.
Docker calls block, so they run in threads.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import resource
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import docker
import docker.errors
import httpx
from docker.models.containers import Container

from chaos.cluster.docker_ops import (
    ContainerPlan,
    create_network,
    docker_client,
    log_tail,
    remove_labelled,
)
from chaos.cluster.node_container import start_node
from chaos.cluster.spec import DEFAULT_NOFILE
from chaos.errors import SetupError
from chaos.labels import LABEL_ROLE, LABEL_SESSION, docker_labels
from chaos.wait import eventually, eventually_sync

NGINX_IMAGE = "loomchaos/nginx:local"
#: Apart from the cluster's (10.214/16) and the fault rig's (10.213/16) pools: fewer retries.
SUBNET_POOL = "10.215.0.0/16"
FRONT_PORT = 80
UPSTREAM_PORT = 8080
HEALTH_PATH = "/healthz"
SLOW_PATH = "/slow"
#: 16 KiB at 4 KiB/s: each request stays open ~3-4 s, long enough that all ``n``
#: overlap, small enough that the Python driver is not the bottleneck on 2 cores.
BODY_BYTES = 16 * 1024
RATE = "4k"
EMFILE_MARK = "Too many open files"
WORKER_CONNECTIONS_MARK = "worker_connections are not enough"


@dataclass(frozen=True)
class NofileSetting:
    """The front nginx's limits: container ulimit, ``worker_rlimit_nofile``, connections."""

    name: str
    nofile: int
    worker_connections: int

    @property
    def worker_rlimit_nofile(self) -> int:
        # Always equal to the ulimit: nginx cannot raise its limit past the container's hard one.
        return self.nofile


#: The fault: far below 2 fds per in-flight request, while worker_connections is not the cap.
LOW = NofileSetting("low", nofile=256, worker_connections=1024)
#: The fix as far as this machine allows (see DEFAULT_NOFILE for why not 65536).
HIGH = NofileSetting("high", nofile=DEFAULT_NOFILE, worker_connections=4096)


@dataclass
class Outcome:
    """How ``n`` requests through one front setting ended, plus the front's log evidence."""

    setting: NofileSetting
    n: int
    ok: int = 0
    status_5xx: collections.Counter[int] = field(default_factory=collections.Counter)
    refused_reset: int = 0
    timeouts: int = 0
    other: collections.Counter[str] = field(default_factory=collections.Counter)
    emfile_lines: int = 0
    worker_connections_lines: int = 0
    seconds: float = 0.0

    @property
    def lost(self) -> int:
        return self.n - self.ok

    @property
    def loss_pct(self) -> float:
        return 100.0 * self.lost / self.n if self.n else 0.0

    def summary(self) -> str:
        """One line for assertion messages: every class and the log counts."""
        codes = dict(sorted(self.status_5xx.items()))
        return (
            f"{self.setting.name} nofile={self.setting.nofile} n={self.n}: ok={self.ok} "
            f"5xx={codes} refused/reset={self.refused_reset} timeouts={self.timeouts} "
            f"other={dict(self.other)} loss={self.loss_pct:.1f}% "
            f"'{EMFILE_MARK}' lines={self.emfile_lines} "
            f"'{WORKER_CONNECTIONS_MARK}' lines={self.worker_connections_lines}"
        )


def raise_own_nofile_limit() -> int:
    """Raise this process's soft open-files limit to its hard limit; return the new soft limit.

    The driver holds one socket per concurrent request: without this a
    default soft limit of 1024 would make the DRIVER fail first and blame nginx.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def upstream_conf() -> str:
    """The slow upstream: a static body sent at ``RATE``, with limits far above the load."""
    return f"""
worker_processes 1;
worker_rlimit_nofile {DEFAULT_NOFILE};
pid /tmp/nginx.pid;
error_log stderr warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    server {{
        listen {UPSTREAM_PORT} backlog=4096;
        location = {HEALTH_PATH} {{ return 200 "upstream ok\\n"; }}
        location = {SLOW_PATH} {{
            root /srv;
            default_type application/octet-stream;
            limit_rate {RATE};
        }}
    }}
}}
"""


def front_conf(setting: NofileSetting, upstream_ip: str) -> str:
    """The load balancer under test, proxying as the cluster's nginx does."""
    return f"""
worker_processes 1;
worker_rlimit_nofile {setting.worker_rlimit_nofile};
pid /tmp/nginx.pid;
error_log stderr warn;
events {{ worker_connections {setting.worker_connections}; }}
http {{
    access_log off;
    upstream slow {{ server {upstream_ip}:{UPSTREAM_PORT}; }}
    server {{
        listen {FRONT_PORT};
        location = {HEALTH_PATH} {{ return 200 "front ok\\n"; }}
        location / {{
            proxy_pass http://slow;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_connect_timeout 5s;
            proxy_read_timeout 60s;
        }}
    }}
}}
"""


def count_marks(log: str) -> tuple[int, int]:
    """Lines naming EMFILE, and lines saying worker_connections ran out."""
    lines = log.splitlines()
    return (
        sum(EMFILE_MARK in line for line in lines),
        sum(WORKER_CONNECTIONS_MARK in line for line in lines),
    )


def classify(exc: BaseException) -> str:
    """The outcome class of a failed request: ``timeout``, ``refused_reset`` or ``other:<type>``."""
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError | httpx.ReadError | httpx.WriteError):
        return "refused_reset"
    if isinstance(exc, httpx.RemoteProtocolError):
        # The server closed the connection without (or in the middle of) a response.
        return "refused_reset"
    if isinstance(exc, ConnectionError):
        return "refused_reset"
    return f"other:{type(exc).__name__}"


async def _one_request(client: httpx.AsyncClient, url: str) -> str:
    """One request, read to the end; the outcome class (``ok``, ``5xx:<code>``, ...)."""
    try:
        async with client.stream("GET", url) as response:
            size = 0
            async for chunk in response.aiter_raw():
                size += len(chunk)
            if 500 <= response.status_code < 600:
                return f"5xx:{response.status_code}"
            if not 200 <= response.status_code < 300:
                return f"other:status {response.status_code}"
            return "ok" if size == BODY_BYTES else "other:truncated"
    except (httpx.HTTPError, OSError) as exc:
        return classify(exc)


async def drive(
    base_url: str, n: int, request_timeout: float, deadline: float
) -> collections.Counter[str]:
    """``n`` concurrent GETs of the slow path; outcome classes counted.

    Bounded twice: each request by ``request_timeout`` (httpx), the whole
    batch by ``deadline`` seconds (anything still running then counts as a
    timeout).
    """
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=0)
    timeout = httpx.Timeout(request_timeout, pool=request_timeout)
    url = f"{base_url}{SLOW_PATH}"
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
        tasks = [asyncio.create_task(_one_request(client, url)) for _ in range(n)]
        done, pending = await asyncio.wait(tasks, timeout=deadline)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    counts = collections.Counter(task.result() for task in done)
    counts["timeout"] += len(pending)
    return counts


def _tally(setting: NofileSetting, n: int, counts: collections.Counter[str]) -> Outcome:
    outcome = Outcome(setting=setting, n=n)
    for key, value in counts.items():
        if key == "ok":
            outcome.ok += value
        elif key.startswith("5xx:"):
            outcome.status_5xx[int(key[4:])] += value
        elif key == "refused_reset":
            outcome.refused_reset += value
        elif key == "timeout":
            outcome.timeouts += value
        else:
            outcome.other[key.removeprefix("other:")] += value
    return outcome


class NofileRig:
    """A labelled network with the slow upstream; one front per measured setting.

    Use :func:`nofile_rig` to get one; :meth:`measure` starts a front with a
    setting, drives ``n`` requests through it, reads its log, and removes it.
    """

    def __init__(self, session_id: str, image: str = NGINX_IMAGE) -> None:
        self.session_id = session_id
        self.image = image
        self.labels = docker_labels(session_id, rig="nofile")
        self._client: docker.DockerClient | None = None
        self._network = ""
        self._subnet_base = ""
        self.upstream_ip = ""

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            raise RuntimeError("NofileRig used outside nofile_rig()")
        return self._client

    def _ip(self, host: int) -> str:
        return f"{self._subnet_base}.{host}"

    def _plan(
        self, role: str, host: int, conf: str, nofile: int, files: dict[str, bytes]
    ) -> ContainerPlan:
        return ContainerPlan(
            name=f"loomchaos-nofile-{self.session_id}-{role}",
            image=self.image,
            ip=self._ip(host),
            network=self._network,
            labels={**self.labels, LABEL_ROLE: role},
            files={"/etc/nginx/nginx.conf": conf.encode(), **files},
            ports=(FRONT_PORT,) if role.startswith("front") else (),
            nofile=nofile,
        )

    def setup_sync(self) -> None:
        """Network and upstream, started and answering (blocking: run in a thread)."""
        self._client = docker_client()
        network, subnet = create_network(
            self.client, f"loomchaos-nofile-{self.session_id}", self.labels, pool=SUBNET_POOL
        )
        self._network = network.name
        self._subnet_base = subnet.rsplit(".", 1)[0]
        self.upstream_ip = self._ip(10)
        body = {f"/srv{SLOW_PATH}": b"x" * BODY_BYTES}
        plan = self._plan("upstream", 10, upstream_conf(), DEFAULT_NOFILE, body)
        upstream = start_node(self.client, plan)
        self._await_nginx(upstream)

    def _await_nginx(self, container: Container) -> None:
        """Wait until nginx in ``container`` is running with our config (its pid file exists)."""

        def probe() -> bool:
            container.reload()
            if container.status == "exited":
                raise SetupError(f"{container.name} exited:\n{log_tail(container)}")
            result = container.exec_run(["test", "-s", "/tmp/nginx.pid"])
            return bool(result.exit_code == 0)

        eventually_sync(
            probe,
            what=f"nginx in {container.name} to write its pid file",
            timeout=20,
            context=lambda: log_tail(container),
        )

    def _start_front(self, setting: NofileSetting) -> tuple[Container, str]:
        conf = front_conf(setting, self.upstream_ip)
        plan = self._plan(f"front-{setting.name}", 20, conf, setting.nofile, {})
        front = start_node(self.client, plan)
        self._await_nginx(front)

        def port() -> int:
            front.reload()
            bindings = front.attrs["NetworkSettings"]["Ports"].get(f"{FRONT_PORT}/tcp") or []
            return int(bindings[0]["HostPort"]) if bindings else 0

        host_port = eventually_sync(
            port, what=f"{front.name} to publish {FRONT_PORT}/tcp", timeout=10
        )
        return front, f"http://127.0.0.1:{host_port}"

    async def measure(
        self,
        setting: NofileSetting,
        n: int,
        *,
        request_timeout: float = 30.0,
        deadline: float = 45.0,
    ) -> Outcome:
        """Start a front with ``setting``, drive ``n`` requests, read its log, remove it."""
        front, base_url = await asyncio.to_thread(self._start_front, setting)
        try:
            await _await_path(base_url, HEALTH_PATH, f"{front.name} to answer")
            await _await_path(base_url, "/upstream-check", f"{front.name} to reach the upstream")
            began = time.monotonic()
            counts = await drive(base_url, n, request_timeout, deadline)
            outcome = _tally(setting, n, counts)
            outcome.seconds = time.monotonic() - began
            raw = await asyncio.to_thread(front.logs, stdout=True, stderr=True)
            outcome.emfile_lines, outcome.worker_connections_lines = count_marks(
                raw.decode("utf-8", "replace")
            )
            return outcome
        finally:
            await asyncio.shield(asyncio.to_thread(_remove_quietly, front))

    def teardown_sync(self) -> None:
        """Remove everything this rig's session created (blocking: run in a thread)."""
        client = self._client or docker_client()
        remove_labelled(client, {LABEL_SESSION: self.session_id, "io.loomchaos.rig": "nofile"})


async def _await_path(base_url: str, path: str, what: str) -> None:
    """Poll ``base_url + path`` until it answers below 500 (the upstream's 404 counts)."""

    async def probe() -> bool:
        async with httpx.AsyncClient(timeout=3) as client:
            response = await client.get(f"{base_url}{path}")
            return response.status_code < 500

    await eventually(probe, what=what, timeout=20)


def _remove_quietly(container: Container) -> None:
    with contextlib.suppress(docker.errors.NotFound):
        container.remove(force=True, v=True)


@contextlib.asynccontextmanager
async def nofile_rig(session_id: str, image: str = NGINX_IMAGE) -> AsyncIterator[NofileRig]:
    """A started :class:`NofileRig`; everything labelled with it is removed on exit.

    The removal is shielded so that a Ctrl-C (a cancelled task) during the
    run still waits for it instead of leaving containers behind.
    """
    rig = NofileRig(session_id, image)
    try:
        await asyncio.to_thread(rig.setup_sync)
        yield rig
    finally:
        await asyncio.shield(asyncio.to_thread(rig.teardown_sync))
