"""Provisioning against the real engine: idempotence, the local Postgres image, the start path.

These need Docker (and, for the start path, root and ``dockerd``).  Every
container carries the session's labels and is removed in ``finally``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
import docker
import pytest

from chaos.labels import docker_labels, new_session_id
from chaos.provision import Provisioned, format_summary, provision
from chaos.provision.engine import ensure_engine, ping_engine, stop_started_engine
from chaos.wait import eventually

pytestmark = pytest.mark.chaos

PG_USER, PG_PASSWORD, PG_DB = "chaos", "chaos-secret", "chaosdb"


@pytest.fixture(scope="module")
def provisioned() -> Provisioned:
    return provision(progress=lambda line: print(f"  .. {line}"))


def test_a_second_provision_rebuilds_nothing(provisioned: Provisioned) -> None:
    started = time.monotonic()
    second = provision(progress=lambda line: print(f"  .. {line}"))
    warm = time.monotonic() - started
    print(f"\nfirst run:  {sum(provisioned.timings.values()):.1f}s {provisioned.timings}")
    print(f"second run: {warm:.1f}s {second.timings}")
    print(format_summary(second))
    assert second.rebuilt == ()
    assert second.images == provisioned.images
    assert second.loomcycle_error == provisioned.loomcycle_error
    if second.loomcycle_error is not None:
        assert second.images.loomcycle is None
        assert "\n" not in second.loomcycle_error


def _host_port(container: Any) -> int:
    container.reload()
    return int(container.ports["5432/tcp"][0]["HostPort"])


async def _connect(port: int, password: str = PG_PASSWORD) -> asyncpg.Connection:
    return await asyncpg.connect(
        host="127.0.0.1", port=port, user=PG_USER, password=password, database=PG_DB, timeout=3
    )


async def _wait_ready(container: Any) -> int:
    """The published port once ``SELECT 1`` answers there (the port may change on restart)."""

    async def probe() -> int:
        port = await asyncio.to_thread(_host_port, container)
        conn = await _connect(port)
        try:
            return port if await conn.fetchval("SELECT 1") == 1 else 0
        finally:
            await conn.close()

    async def logs() -> str:
        raw: bytes = await asyncio.to_thread(container.logs, tail=20)
        return raw.decode(errors="replace")

    return await eventually(
        probe, what="postgres SELECT 1 from the host", timeout=60, interval=0.3, context=logs
    )


@pytest.fixture
def docker_client() -> Iterator[docker.DockerClient]:
    client = docker.from_env(timeout=60)
    yield client
    client.close()


async def test_local_postgres_keeps_data_and_honours_server_args(
    provisioned: Provisioned, docker_client: docker.DockerClient
) -> None:
    if provisioned.source != "local":
        pytest.skip("checks the locally built image")
    container = await asyncio.to_thread(
        docker_client.containers.run,
        provisioned.images.postgres,
        command=["postgres", "-c", "max_connections=37"],
        environment={
            "POSTGRES_USER": PG_USER,
            "POSTGRES_PASSWORD": PG_PASSWORD,
            "POSTGRES_DB": PG_DB,
        },
        ports={"5432/tcp": ("127.0.0.1", None)},
        labels=docker_labels(new_session_id(), role="provision-test"),
        detach=True,
    )
    try:
        port = await _wait_ready(container)
        conn = await _connect(port)
        try:
            assert await conn.fetchval("SHOW max_connections") == "37"
            assert await conn.fetchval("SELECT current_user") == PG_USER
            assert await conn.fetchval("SHOW password_encryption") == "scram-sha-256"
            await conn.execute("CREATE TABLE survives (v text); INSERT INTO survives VALUES ('x')")
        finally:
            await conn.close()
        with pytest.raises(asyncpg.InvalidPasswordError):
            await _connect(port, password="wrong")

        await asyncio.to_thread(container.restart, timeout=20)
        port = await _wait_ready(container)
        conn = await _connect(port)
        try:
            assert await conn.fetchval("SELECT v FROM survives") == "x"
            assert await conn.fetchval("SHOW max_connections") == "37"
        finally:
            await conn.close()
    finally:
        await asyncio.to_thread(container.remove, force=True, v=True)


#: A bridge of the test's own for the private engine.  NOT ``--bridge=none``: a dockerd
#: started with it deletes the host's ``docker0`` at start-up, breaking the main engine's
#: default network (builds and plain ``docker run``).
PRIVATE_BRIDGE = "lcdtest0"
PRIVATE_BRIDGE_ADDR = "198.18.251.1/24"  # benchmarking range: no real network uses it


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@pytest.mark.skipif(
    not sys.platform.startswith("linux")
    or os.geteuid() != 0
    or shutil.which("dockerd") is None
    or shutil.which("ip") is None,
    reason="starting an engine needs root on Linux, dockerd and ip",
)
def test_the_start_path_on_a_private_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start a second, private engine (never the main one), reuse it, stop it.

    Private data/exec roots, a bridge of its own and its own containerd
    namespaces keep it from touching the engine the rest of the suite uses.
    """
    root = tempfile.mkdtemp(prefix="lcd", dir="/tmp")  # short: unix socket paths are limited
    monkeypatch.setenv("DOCKER_HOST", f"unix://{root}/d.sock")
    monkeypatch.setenv("LOOMCHAOS_CACHE", f"{root}/c")
    extra = (
        f"--bridge={PRIVATE_BRIDGE}",
        "--containerd-namespace=loomchaos-test",
        "--containerd-plugins-namespace=loomchaos-test-plugins",
    )
    info = None
    _ip("link", "add", PRIVATE_BRIDGE, "type", "bridge")
    try:
        _ip("addr", "add", PRIVATE_BRIDGE_ADDR, "dev", PRIVATE_BRIDGE)
        assert ping_engine(timeout=1.0) is None
        started = time.monotonic()
        info = ensure_engine(progress=print, extra_args=extra)
        print(f"private engine up in {time.monotonic() - started:.1f}s: {info}")
        assert info.started_by_us and info.pid is not None and info.server_version
        again = ensure_engine(progress=print, extra_args=extra)
        assert not again.started_by_us and again.server_version == info.server_version
        stop_started_engine(again)  # not ours in this call: must be a no-op
        assert ping_engine(timeout=2.0) is not None
    finally:
        if info is not None:
            stop_started_engine(info)
        _ip("link", "del", PRIVATE_BRIDGE)
        shutil.rmtree(root, ignore_errors=True)
    assert ping_engine(timeout=1.0) is None
