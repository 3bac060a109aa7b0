"""The testcontainers modules on a real engine: Toxiproxy cuts and heals a
Postgres link, and a loomcycle replica starts on that Postgres.

Every container and network is made with testcontainers-python (through
:mod:`chaos.containers`), and every one of them must be gone afterwards.
"""

from __future__ import annotations

import asyncio
import io
import tarfile
import time
from typing import Any

import asyncpg
import docker
import pytest

from chaos.cluster.addresses import LOOPBACK
from chaos.containers import SuitePostgresContainer, ToxiproxyContainer, suite_network
from chaos.containers.settings import LABEL_MADE_BY, MADE_BY
from chaos.labels import LABEL_SESSION
from chaos.sut.loomcycle.container import LoomcycleContainer
from chaos.wait import eventually

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(300)]

PG_ALIAS = "pg"
PG_LISTEN = 15432
PROXY = "pg"
#: A cut shows as a prompt failure: refused, or accepted and closed by Docker's port proxy.
CUT_FAILS_WITHIN_S = 3.0
HEAL_DEADLINE_S = 15.0


def _leftovers(session_id: str) -> list[str]:
    """Containers and networks of this session made through the testcontainers modules."""
    client = docker.from_env()
    labels = {"label": [f"{LABEL_SESSION}={session_id}", f"io.loomchaos.{LABEL_MADE_BY}={MADE_BY}"]}
    try:
        found = [f"container {c.name}" for c in client.containers.list(all=True, filters=labels)]
        found += [f"network {n.name}" for n in client.networks.list(filters=labels)]
    finally:
        client.close()
    return found


async def _select_one(dsn: str, timeout: float) -> int:
    conn = await asyncpg.connect(dsn, timeout=timeout)
    try:
        return int(await asyncio.wait_for(conn.fetchval("SELECT 1"), timeout))
    finally:
        await conn.close(timeout=timeout)


async def _cut_and_heal(tp: ToxiproxyContainer, dsn: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    async with tp.client() as toxi:
        assert await _select_one(dsn, timeout=5) == 1, "the healthy link answers"
        await toxi.set_enabled(PROXY, False)
        started = time.monotonic()
        with pytest.raises((OSError, asyncpg.PostgresError, asyncpg.InterfaceError)) as cut:
            await _select_one(dsn, timeout=CUT_FAILS_WITHIN_S * 2)
        seen["cut"] = f"{type(cut.value).__name__} after {time.monotonic() - started:.2f}s"
        assert time.monotonic() - started < CUT_FAILS_WITHIN_S, seen
        await toxi.set_enabled(PROXY, True)
        started = time.monotonic()
        await eventually(
            lambda: _select_one(dsn, timeout=2),
            what="SELECT 1 through the healed proxy",
            timeout=HEAL_DEADLINE_S,
        )
        seen["healed_after_s"] = round(time.monotonic() - started, 2)
    return seen


def test_toxiproxy_container_cuts_and_heals_a_postgres_link(
    chaos_session_id: str, chaos_provisioned: Any
) -> None:
    images = chaos_provisioned.images
    with (
        suite_network(chaos_session_id) as net,
        SuitePostgresContainer(
            images.postgres, session_id=chaos_session_id, network=net, network_aliases=[PG_ALIAS]
        ) as pg,
        ToxiproxyContainer(
            images.toxiproxy, session_id=chaos_session_id, proxy_ports=[PG_LISTEN], network=net
        ) as tp,
    ):
        assert tp.api_url().startswith(f"http://{LOOPBACK}:")
        tp.create_proxy(PROXY, upstream=f"{PG_ALIAS}:5432", listen_port=PG_LISTEN)
        dsn = (
            f"postgresql://{pg.username}:{pg.password}@{LOOPBACK}:"
            f"{tp.proxy_port(PG_LISTEN)}/{pg.dbname}"
        )
        seen = asyncio.run(_cut_and_heal(tp, dsn))
        print(f"toxiproxy container: {seen}")
    assert _leftovers(chaos_session_id) == []


def _file_in(container: LoomcycleContainer, path: str) -> bytes:
    chunks, _ = container.get_wrapped_container().get_archive(path)
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        member = tar.extractfile(tar.getmembers()[0])
        assert member is not None
        return member.read()


async def _health(replica: LoomcycleContainer) -> Any:
    client = replica.client()
    try:
        return await asyncio.wait_for(client.health(), 10)
    finally:
        await client.aclose()


def test_loomcycle_container_is_ready_on_a_postgres_container(
    chaos_session_id: str, loomcycle_images: Any
) -> None:
    images = loomcycle_images
    with (
        suite_network(chaos_session_id) as net,
        SuitePostgresContainer(
            images.postgres, session_id=chaos_session_id, network=net, network_aliases=[PG_ALIAS]
        ) as pg,
        LoomcycleContainer(
            pg.network_dsn(PG_ALIAS),
            replica_id="r1",
            image=images.loomcycle,
            session_id=chaos_session_id,
            network=net,
        ) as replica,
    ):
        assert replica.env["LOOMCYCLE_STORAGE_BACKEND"] == "postgres"
        # Ready already means /healthz listed r1; read it once more to show what it says.
        health = asyncio.run(_health(replica))
        assert health.ok and health.replica_id == "r1" and "r1" in (health.replica_ids or ())
        for path, content in replica.launch.files.items():
            assert _file_in(replica, path) == content, f"{path} was not copied in as rendered"
        print(f"loomcycle container: {replica.base_url()} version={health.version}")
    assert _leftovers(chaos_session_id) == []
