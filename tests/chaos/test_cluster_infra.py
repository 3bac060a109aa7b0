"""The infrastructure cluster on the real engine: Postgres, Toxiproxy, nginx (no replicas).

loomcycle cannot be had on this machine, so these tests start what CI can run
(``start(with_replicas=False)``) and prove each readiness claim from the host:
Postgres answers, every proxy exists and carries traffic, nginx answers, and
reset and teardown do what they promise.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import docker
import docker.errors
import httpx
import pytest

from chaos.cluster import Cluster, Deadlines
from chaos.cluster.spec import ClusterSpec, NginxSpec, ResolvedImages
from chaos.labels import LABEL_CLUSTER, LABEL_ROLE, LABEL_SESSION, LABEL_SUITE, new_session_id
from chaos.testing.sabotage import kill_node, pause_node, stop_node
from chaos.wait import WaitTimeout

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(240)]

IMAGES = ResolvedImages(
    postgres=os.environ.get("LOOMCHAOS_PG_IMAGE", "loomchaos/postgres:local"),
    nginx=os.environ.get("LOOMCHAOS_NGINX_IMAGE", "loomchaos/nginx:local"),
    toxiproxy=os.environ.get("LOOMCHAOS_TOXIPROXY_IMAGE", "loomchaos/toxiproxy:local"),
    loomcycle=None,
)
#: The engine here runs with a 20000 open-files limit, so the spec's 65536 default
#: cannot be granted to a container; these tests ask for what it can give.
SPEC = ClusterSpec(replicas=2, nginx=NginxSpec(nofile=16384, worker_rlimit_nofile=16384))


def _engine_or_skip() -> docker.DockerClient:
    try:
        client = docker.from_env()
        client.ping()
        for ref in (IMAGES.postgres, IMAGES.nginx, IMAGES.toxiproxy):
            client.images.get(ref)
    except docker.errors.ImageNotFound as exc:
        pytest.skip(f"image missing: {exc}")
    except docker.errors.DockerException as exc:
        pytest.skip(f"no Docker engine: {exc}")
    return client


def _labelled(client: docker.DockerClient, session: str) -> list[str]:
    """Every container, network and volume carrying this session's label."""
    flt = {"label": [f"{LABEL_SESSION}={session}"]}
    return (
        [f"container:{c.name}" for c in client.containers.list(all=True, filters=flt)]
        + [f"network:{n.name}" for n in client.networks.list(filters=flt)]
        + [f"volume:{v.name}" for v in client.volumes.list(filters=flt)]
    )


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    await asyncio.to_thread(_engine_or_skip)
    c = Cluster(SPEC, IMAGES, session_id=new_session_id())
    try:
        await c.start(with_replicas=False)
        yield c
    finally:
        await c.teardown()


async def _select_one(host: str, port: int, c: Cluster) -> int:
    creds = c.pg_credentials
    conn = await asyncpg.connect(
        host=host,
        port=port,
        user=creds.user,
        password=creds.password,
        database=creds.database,
        timeout=5,
    )
    try:
        return int(await conn.fetchval("SELECT 1"))
    finally:
        await conn.close()


async def test_infra_cluster_is_verified_from_the_host(cluster: Cluster) -> None:
    # Postgres through its own published port, superuser DSN on 127.0.0.1.
    assert cluster.pg_dsn.startswith("postgres://loomchaos:")
    assert "@127.0.0.1:" in cluster.pg_dsn
    conn = await asyncpg.connect(cluster.pg_dsn)
    try:
        assert await conn.fetchval("SHOW max_connections") == str(SPEC.pg_max_connections)
        assert await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    finally:
        await conn.close()
    # Every proxy present and enabled.
    proxies = await cluster.toxiproxy.proxies()
    assert sorted(proxies) == sorted(["pg_r1", "pg_r2", "lb_r1", "lb_r2"])
    assert all(p.enabled for p in proxies.values())
    # nginx itself answers; with no replica behind it, a proxied path is its 502,
    # and its own probe path names this cluster.
    async with httpx.AsyncClient(timeout=30) as http:
        resp = await http.get(f"{cluster.lb_url}/healthz")
        own = await http.get(f"{cluster.lb_url}/__loomchaos/lb")
    assert resp.status_code == 502
    assert resp.headers["server"].startswith("nginx")
    assert own.status_code == 200 and cluster.id in own.text
    # Every URL the host uses is on the loopback interface.
    for url in (cluster.lb_url, cluster.toxiproxy_url):
        assert url.startswith("http://127.0.0.1:")


async def test_probe_address_carries_traffic_and_shows_a_cut(cluster: Cluster) -> None:
    host, port = cluster.probe_address(cluster.proxy_name("pg", "r2"))
    assert host == "127.0.0.1"
    assert await _select_one(host, port, cluster) == 1  # host -> pg_r2 -> Postgres
    await cluster.toxiproxy.set_enabled("pg_r2", False)
    with pytest.raises((OSError, asyncpg.PostgresError, TimeoutError)):
        await _select_one(host, port, cluster)
    # The other replica's link is untouched by pg_r2's cut.
    assert await _select_one(*cluster.probe_address("pg_r1"), cluster) == 1
    await cluster.reset()  # heals every proxy
    assert await _select_one(host, port, cluster) == 1


def _cluster_objects(cluster_id: str) -> tuple[list[Any], list[Any], list[Any]]:
    client = docker.from_env()
    flt = {"label": [f"{LABEL_CLUSTER}={cluster_id}"]}
    return (
        client.containers.list(all=True, filters=flt),
        client.networks.list(filters=flt),
        client.volumes.list(filters=flt),
    )


async def test_every_object_is_labelled(cluster: Cluster) -> None:
    containers, networks, volumes = await asyncio.to_thread(_cluster_objects, cluster.id)
    assert sorted(c.labels[LABEL_ROLE] for c in containers) == ["nginx", "postgres", "toxiproxy"]
    assert len(networks) == 1 and len(volumes) == 1
    for labels in [c.labels for c in containers] + [
        o.attrs["Labels"] for o in (*networks, *volumes)
    ]:
        assert labels[LABEL_SUITE] == "loomchaos"
        assert labels[LABEL_SESSION] == cluster.session_id
    # Containers and the network were made by testcontainers (its own labels ride beside ours).
    for labels in [c.labels for c in containers] + [n.attrs["Labels"] for n in networks]:
        assert any(key.startswith("org.testcontainers") for key in labels), labels
    # nginx got the file limit the spec asked for.
    nginx = await cluster.container("nginx")
    ulimits = nginx.attrs["HostConfig"]["Ulimits"]
    assert {"Name": "nofile", "Soft": 16384, "Hard": 16384} in ulimits


async def test_reset_heals_stopped_paused_and_killed_nodes_keeping_data(
    cluster: Cluster, tmp_path: Path
) -> None:
    conn = await asyncpg.connect(cluster.pg_dsn)
    await conn.execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before-restart')")
    await conn.close()
    await stop_node(cluster, "postgres")
    with pytest.raises(LookupError):
        _ = cluster.pg_dsn  # stopped: no published port, and the accessor says so
    await pause_node(cluster, "nginx")
    await kill_node(cluster, "toxiproxy")  # its proxies live in memory: they are gone now

    elapsed = await cluster.reset()

    assert elapsed > 0 and cluster.reset_times == [elapsed]
    conn = await asyncpg.connect(cluster.pg_dsn)  # a new published port, re-read by reset
    try:
        assert await conn.fetchval("SELECT v FROM kept") == "before-restart"
    finally:
        await conn.close()
    assert cluster.toxiproxy.base_url == cluster.toxiproxy_url  # followed the new port
    assert sorted(await cluster.toxiproxy.proxies()) == sorted(cluster.proxy_names)
    async with httpx.AsyncClient(timeout=30) as http:
        assert (await http.get(f"{cluster.lb_url}/healthz")).status_code == 502
    logs = await cluster.collect_logs(tmp_path / "logs")
    names = {p.name for p in logs}
    assert {"postgres.log", "nginx.log", "toxiproxy.log", "toxiproxy-proxies.json"} <= names
    assert "database system is ready" in (tmp_path / "logs" / "postgres.log").read_text()


async def test_teardown_leaves_nothing_and_is_idempotent() -> None:
    client = await asyncio.to_thread(_engine_or_skip)
    session = new_session_id()
    c = Cluster(SPEC, IMAGES, session_id=session)
    await c.start(with_replicas=False)
    # 3 containers, 1 network, 1 volume
    assert len(await asyncio.to_thread(_labelled, client, session)) == 5
    removed = await c.teardown()
    assert len(removed.containers) == 3 and removed.networks and removed.volumes
    assert await asyncio.to_thread(_labelled, client, session) == []
    again = await c.teardown()
    assert not again


async def test_failed_start_tears_down_and_explains() -> None:
    client = await asyncio.to_thread(_engine_or_skip)
    session = new_session_id()
    # Postgres needs seconds to initialise; half a second makes start() fail after
    # every container exists: the partial-start path.
    c = Cluster(SPEC, IMAGES, session_id=session, deadlines=Deadlines(postgres_s=0.5))
    with pytest.raises(WaitTimeout) as err:
        await c.start(with_replicas=False)
    message = str(err.value)
    assert "Postgres to answer SELECT 1" in message
    assert "log lines of" in message  # the container's log tail is in the failure
    assert c.state == "torn_down"
    assert await asyncio.to_thread(_labelled, client, session) == []


async def test_replicas_need_a_target_image() -> None:
    from chaos.errors import TargetUnavailable

    c = Cluster(SPEC, IMAGES, session_id=new_session_id())
    with pytest.raises(TargetUnavailable):
        await c.start(with_replicas=True)


def _disconnect(network_name: str, container_name: str) -> None:
    client = docker.from_env()
    client.networks.get(network_name).disconnect(container_name, force=True)


async def test_reset_reconnects_a_partitioned_node_at_its_address(cluster: Cluster) -> None:
    probe = cluster.probe_address("pg_r1")
    assert await _select_one(*probe, cluster) == 1
    await asyncio.to_thread(
        _disconnect, cluster.topology.network_name, cluster.container_name("postgres")
    )
    with pytest.raises((OSError, asyncpg.PostgresError, TimeoutError)):
        await _select_one(*probe, cluster)  # Toxiproxy cannot reach Postgres any more
    await cluster.reset()
    assert await _select_one(*probe, cluster) == 1
    pg = await cluster.container("postgres")
    ip = pg.attrs["NetworkSettings"]["Networks"][cluster.topology.network_name]["IPAddress"]
    assert ip == cluster.topology.node("postgres").ip
