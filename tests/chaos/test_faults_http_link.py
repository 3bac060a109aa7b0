"""Toxiproxy link faults on an HTTP link (load balancer -> replica): proven effect and heal.

The cluster's nginx reaches each replica through Toxiproxy proxy ``lb_r<i>``;
here a real nginx plays the replica behind a real Toxiproxy, and every link
fault of :mod:`chaos.faults.link` is proven through :class:`HttpPath` exactly
as ``test_faults_link.py`` proves them through Postgres.

The rig is built like ``fault_rig``'s, from the suite's testcontainers modules
(nginx + Toxiproxy on a labelled 10.216.x.0/24 network, ports on 127.0.0.1
only), removed in ``finally`` and again by label.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio
from docker.models.containers import Container
from fault_rig import TOXIPROXY_API_PORT, Started, _published

from chaos.cluster.docker_ops import docker_client
from chaos.cluster.toxiproxy import ToxiproxyClient
from chaos.faults import (
    Bandwidth,
    BlackHole,
    LinkTarget,
    injected,
)
from chaos.faults.base import self_test
from chaos.faults.catalogue import LINK_FAULTS
from chaos.faults.http_path import HttpPath
from chaos.record.history import History
from chaos.wait import eventually

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(120), pytest.mark.asyncio(loop_scope="module")]

PROXY_NAME = "lb_r1"
PROXY_PORT = 18701
#: Apart from the fault rig's 10.213/16: fewer retries when both run.
SUBNET_POOL = "10.216.0.0/16"
#: Larger than any bulk a fault asks for (Bandwidth caps at 5000 KB/s x 1 s).
BLOB_BYTES = 6_000_000
PATH = HttpPath(path="/ok", bulk_down_path="/blob", bulk_up_path="/upload")

# /upload answers only after reading the whole body: with request buffering on
# (the default) nginx reads it all before it proxies to the inner server.  A
# bare `return 200` would answer at once and discard the body afterwards.
NGINX_CONF = f"""
worker_processes 1;
error_log stderr warn;
pid /tmp/nginx.pid;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path /tmp/nginx-body;
    server {{
        listen 80;
        location = /ok {{ return 200 "ok\\n"; }}
        location = /blob {{ root /srv; default_type application/octet-stream; }}
        location = /upload {{
            client_max_body_size {BLOB_BYTES * 2};
            client_body_buffer_size {BLOB_BYTES * 2};
            proxy_pass http://127.0.0.1:8081;
        }}
    }}
    server {{
        listen 127.0.0.1:8081;
        location / {{ return 200 "read\\n"; }}
    }}
}}
"""


@dataclass
class HttpRig:
    session: str
    nginx: Container
    toxiproxy: Container
    toxi: ToxiproxyClient
    proxy_addr: tuple[str, int]

    def link(self, path: HttpPath = PATH) -> LinkTarget:
        return LinkTarget(self.toxi, PROXY_NAME, self.proxy_addr, path, "lb:r1", "r1")


def _start(started: Started) -> tuple[Container, Container]:
    """Blocking (run in a thread): network, nginx with its blob, Toxiproxy."""
    prefix = f"lchttp-{started.session}"
    started.rig_network(prefix, SUBNET_POOL)
    files = {"/etc/nginx/nginx.conf": NGINX_CONF.encode(), "/srv/blob": b"x" * BLOB_BYTES}
    nginx = started.start(started.nginx(prefix, files))
    toxiproxy = started.start(started.toxiproxy(prefix, PROXY_PORT))
    return nginx, toxiproxy


@contextlib.asynccontextmanager
async def http_rig() -> AsyncIterator[HttpRig]:
    """Start the rig, wait until ``GET /ok`` answers through the proxy, yield; always remove."""
    started = Started(await asyncio.to_thread(docker_client))
    toxi: ToxiproxyClient | None = None
    try:
        nginx, toxi_c = await asyncio.to_thread(_start, started)
        api_port = await asyncio.to_thread(_published, toxi_c, f"{TOXIPROXY_API_PORT}/tcp")
        proxy_port = await asyncio.to_thread(_published, toxi_c, f"{PROXY_PORT}/tcp")
        toxi = ToxiproxyClient(f"http://127.0.0.1:{api_port}")
        await eventually(toxi.version, what="toxiproxy API to answer", timeout=20)
        await toxi.create_proxy(PROXY_NAME, f"0.0.0.0:{PROXY_PORT}", f"{nginx.name}:80")
        the_rig = HttpRig(started.session, nginx, toxi_c, toxi, ("127.0.0.1", proxy_port))

        async def answers() -> bool:
            return (await the_rig.link().roundtrip(timeout=2.0)).ok

        await eventually(answers, what="nginx to answer GET /ok through lb_r1", timeout=30)
        yield the_rig
    finally:
        if toxi is not None:
            await toxi.aclose()
        await asyncio.to_thread(started.remove)


async def leftovers(the_rig: HttpRig) -> list[str]:
    """Toxics, disabled proxies, containers not running: what a healed fault must not leave."""
    found: list[str] = []
    for name, proxy in (await the_rig.toxi.proxies()).items():
        if not proxy.enabled:
            found.append(f"proxy {name} disabled")
        found.extend(f"proxy {name} toxic {t.get('name')}" for t in proxy.toxics)

    def containers() -> list[str]:
        bad = []
        for c in (the_rig.nginx, the_rig.toxiproxy):
            c.reload()
            if c.status != "running":
                bad.append(f"{c.name}: {c.status}")
        return bad

    return found + await asyncio.to_thread(containers)


async def assert_clean(the_rig: HttpRig) -> None:
    found = await leftovers(the_rig)
    assert not found, f"leftovers: {found}"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_rig() -> AsyncIterator[HttpRig]:
    async with http_rig() as the_rig:
        yield the_rig


@pytest_asyncio.fixture(loop_scope="module")
async def hrig(shared_rig: HttpRig) -> AsyncIterator[HttpRig]:
    """The shared rig; reset after each test so one test's failed heal cannot fail the next."""
    yield shared_rig
    await shared_rig.toxi.reset()


FAULTS = LINK_FAULTS


@pytest.mark.parametrize("kind", list(FAULTS))
async def test_http_link_fault_effect_and_heal(hrig: HttpRig, kind: str) -> None:
    history = History()
    window = await self_test(FAULTS[kind](hrig.link()), history)
    phases = [r.data["phase"] for r in history.records]
    assert phases == ["inject", "effect", "heal", "healed"]
    assert window.name == "link:" + kind and window.target == "lb:r1"
    assert window.data["link"] == "lb:r1" and window.data["replica"] == "r1"
    await assert_clean(hrig)


async def test_every_http_effect_probe_is_false_on_a_healthy_link(hrig: HttpRig) -> None:
    """Control: a probe that says "effect" on a healthy link would make every proof vacuous."""
    for kind, make in FAULTS.items():
        assert not await make(hrig.link()).effect_present(), kind


async def test_http_path_measures_a_healthy_link(hrig: HttpRig) -> None:
    host, port = hrig.proxy_addr
    rt = await PATH.roundtrip(host, port, timeout=3)
    assert rt.ok and "200" in rt.detail, rt
    down = await PATH.bulk(host, port, nbytes=1_000_000, direction="down", timeout=5)
    assert down.ok and "206" in down.detail, down
    up = await PATH.bulk(host, port, nbytes=1_000_000, direction="up", timeout=5)
    assert up.ok and "200" in up.detail, up
    close = await PATH.close_delay(host, port, timeout=3)
    assert close.ok and close.elapsed < 0.5, close


async def test_http_path_tells_a_refusing_server_from_a_broken_link(hrig: HttpRig) -> None:
    host, port = hrig.proxy_addr
    missing = await HttpPath(path="/missing").roundtrip(host, port, timeout=3)
    assert missing.outcome == "rejected" and "404" in missing.detail, missing
    too_big = await PATH.bulk(host, port, nbytes=BLOB_BYTES + 1, direction="down", timeout=5)
    assert too_big.outcome == "error" and "offers" in too_big.detail, too_big


async def test_upload_location_reads_the_whole_body_before_answering(hrig: HttpRig) -> None:
    """Why /upload proxies: a bare `return 200` answers before the body is in."""
    host, port = hrig.proxy_addr
    fault = Bandwidth(hrig.link(), rate_kb=200, direction="up")
    async with injected(fault, History()):
        bare = await HttpPath(bulk_up_path="/ok").bulk(
            host, port, nbytes=200_000, direction="up", timeout=5
        )
        buffered = await PATH.bulk(host, port, nbytes=200_000, direction="up", timeout=5)
    assert bare.ok and bare.elapsed < 0.5, bare
    assert buffered.ok and buffered.elapsed >= 0.7, buffered


async def test_black_hole_forwards_a_close_the_server_starts(hrig: HttpRig) -> None:
    """Why the probes keep connections alive: Toxiproxy drops the bytes but passes the close.

    With ``Connection: close`` nginx hangs up after answering, and the client
    sees EOF at once through a ``black_hole_down``: a "closed" link, not a hang.
    """
    host, port = hrig.proxy_addr
    async with injected(BlackHole(hrig.link(), direction="down"), History()):
        closing = await PATH.close_delay(host, port, timeout=1.5)
        keep_alive = await PATH.roundtrip(host, port, timeout=1.5)
    assert closing.outcome == "closed" and closing.elapsed < 0.5, closing
    assert keep_alive.outcome == "timeout", keep_alive
