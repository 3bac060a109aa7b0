"""Readiness judgements, the exit hook, the session cache and the orphan sweep, without Docker."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from chaos.cluster import lifecycle, sweep
from chaos.cluster.cluster import _all_settled
from chaos.cluster.docker_ops import Removed
from chaos.cluster.manager import ClusterManager
from chaos.cluster.readiness import Pending, health_lists_all, nginx_self_check, proxies_ready
from chaos.cluster.spec import ClusterSpec
from chaos.cluster.toxiproxy import Proxy
from chaos.sut.base import Health

# --------------------------------------------------------------------------- readiness


def test_health_lists_all_needs_every_id() -> None:
    ids = ("r1", "r2", "r3")
    assert health_lists_all(Health(True, "r1", "v", ("r1", "r2", "r3")), ids) is True
    partial = health_lists_all(Health(True, "r1", "v", ("r1", "r2")), ids)
    assert not partial and "r3" in partial
    assert not health_lists_all(Health(True, "r1", "v", None), ids)  # db read failed
    assert not health_lists_all(Health(False, "r1", "v", ids), ids)


class FakeToxiproxy:
    def __init__(self, proxies: dict[str, Proxy]) -> None:
        self._proxies = proxies

    async def proxies(self) -> dict[str, Proxy]:
        return self._proxies


def _proxy(name: str, enabled: bool = True) -> Proxy:
    return Proxy(name, "0.0.0.0:1", "10.0.0.1:2", enabled)


async def test_proxies_ready_flags_missing_and_disabled_proxies() -> None:
    wanted = ["pg_r1", "lb_r1"]
    ok = FakeToxiproxy({"pg_r1": _proxy("pg_r1"), "lb_r1": _proxy("lb_r1")})
    assert await proxies_ready(ok, wanted) is True  # type: ignore[arg-type]
    missing = await proxies_ready(FakeToxiproxy({"pg_r1": _proxy("pg_r1")}), wanted)  # type: ignore[arg-type]
    assert not missing and "lb_r1" in missing
    off = FakeToxiproxy({"pg_r1": _proxy("pg_r1", enabled=False), "lb_r1": _proxy("lb_r1")})
    disabled = await proxies_ready(off, wanted)  # type: ignore[arg-type]
    assert not disabled and "disabled proxies: ['pg_r1']" in disabled


def _nginx(status: int, body: str) -> httpx.AsyncClient:
    transport = httpx.MockTransport(lambda request: httpx.Response(status, text=body))
    return httpx.AsyncClient(transport=transport)


async def test_nginx_self_check_wants_this_clusters_answer() -> None:
    url = "http://127.0.0.1:1/__loomchaos/lb"
    async with _nginx(200, "loomchaos lb cabc\n") as http:
        assert await nginx_self_check(http, url, "cabc") is True
    async with _nginx(200, "loomchaos lb cother\n") as http:  # another cluster's nginx
        assert not await nginx_self_check(http, url, "cabc")
    async with _nginx(502, "bad gateway") as http:
        seen = await nginx_self_check(http, url, "cabc")
        assert not seen and "502" in seen


async def test_all_settled_waits_for_every_step_before_raising() -> None:
    finished: list[str] = []

    async def fails_fast() -> None:
        raise RuntimeError("nginx refused")

    async def slow() -> None:
        await asyncio.sleep(0.05)  # stands for a container still being created
        finished.append("slow")

    with pytest.raises(RuntimeError, match="nginx refused"):
        await _all_settled([fails_fast(), slow()])
    assert finished == ["slow"]


def test_pending_is_falsy_but_says_what_it_saw() -> None:
    seen = Pending("missing proxies: ['pg_r2']")
    assert not seen
    assert "pg_r2" in repr(seen)


# --------------------------------------------------------------------------- exit hook


def test_teardown_all_runs_every_teardown_even_after_a_failure() -> None:
    calls: list[str] = []

    def boom() -> None:
        calls.append("boom")
        raise RuntimeError("engine gone")

    lifecycle.register("unit-a", boom)
    lifecycle.register("unit-b", lambda: calls.append("b"))
    lifecycle.teardown_all()
    assert sorted(calls) == ["b", "boom"]
    assert "unit-a" not in lifecycle.live_clusters()
    lifecycle.unregister("unit-missing")  # unknown ids are fine


def test_sigterm_becomes_keyboard_interrupt_and_runs_exit_teardown(tmp_path: Any) -> None:
    marker = tmp_path / "torn-down"
    code = f"""
import os, signal, time
from chaos.cluster import lifecycle
lifecycle.register("c1", lambda: open({str(marker)!r}, "w").write("yes"))
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(30)  # never reached: SIGTERM raised KeyboardInterrupt
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert proc.returncode != 0
    assert b"KeyboardInterrupt" in proc.stderr
    assert marker.read_text() == "yes"


# --------------------------------------------------------------------------- manager


@dataclass
class FakeCluster:
    spec: ClusterSpec
    id: str
    state: str = "new"
    log: list[str] = field(default_factory=list)
    fail_reset: bool = False

    async def start(self, with_replicas: bool = True) -> FakeCluster:
        self.log.append(f"start:{with_replicas}")
        self.state = "ready"
        return self

    async def reset(self) -> float:
        self.log.append("reset")
        if self.fail_reset:
            raise RuntimeError("cannot reset")
        return 0.1

    async def teardown(self) -> Removed:
        self.log.append("teardown")
        self.state = "torn_down"
        return Removed()


class Factory:
    def __init__(self) -> None:
        self.made: list[FakeCluster] = []

    def __call__(self, spec: ClusterSpec) -> Any:
        cluster = FakeCluster(spec, f"c{len(self.made)}")
        self.made.append(cluster)
        return cluster


async def test_manager_shares_equal_specs_and_resets_on_reuse() -> None:
    factory = Factory()
    manager = ClusterManager(factory)
    spec = ClusterSpec(replicas=2)
    first = await manager.acquire(spec, with_replicas=False)
    await manager.release(first)
    again = await manager.acquire(ClusterSpec(replicas=2), with_replicas=False)
    assert again is first
    assert first.log == ["start:False", "reset"]  # type: ignore[attr-defined]
    other = await manager.acquire(ClusterSpec(replicas=3), with_replicas=False)
    assert other is not first
    await manager.close()
    assert all(c.state == "torn_down" for c in factory.made)


async def test_manager_refuses_to_share_a_cluster_in_use() -> None:
    manager = ClusterManager(Factory())
    await manager.acquire(ClusterSpec(), with_replicas=False)
    with pytest.raises(RuntimeError, match="in use"):
        await manager.acquire(ClusterSpec(), with_replicas=False)
    await manager.close()


async def test_manager_gives_destructive_specs_their_own_cluster() -> None:
    factory = Factory()
    manager = ClusterManager(factory)
    spec = ClusterSpec(destructive=True)
    a = await manager.acquire(spec, with_replicas=False)
    b = await manager.acquire(spec, with_replicas=False)
    assert a is not b
    await manager.release(a)
    assert a.state == "torn_down"  # released destructive clusters go at once
    assert b.state == "ready"
    await manager.close()
    assert str(b.state) == "torn_down"  # str(): mypy narrowed it to "ready" above


async def test_manager_replaces_a_cluster_that_cannot_reset() -> None:
    factory = Factory()
    manager = ClusterManager(factory)
    first = await manager.acquire(ClusterSpec(), with_replicas=False)
    await manager.release(first)
    factory.made[0].fail_reset = True
    second = await manager.acquire(ClusterSpec(), with_replicas=False)
    assert second is not first
    assert factory.made[0].log == ["start:False", "reset", "teardown"]
    await manager.close()


# --------------------------------------------------------------------------- sweep


@dataclass
class FakeObject:
    name: str
    labels: dict[str, str]

    @property
    def attrs(self) -> dict[str, Any]:
        return {"Labels": self.labels}


class FakeCollection:
    def __init__(self, objects: list[FakeObject]) -> None:
        self.objects = objects

    def list(self, **_: Any) -> list[FakeObject]:
        return self.objects


class FakeDocker:
    def __init__(self, containers: list[FakeObject]) -> None:
        self.containers = FakeCollection(containers)
        self.networks = FakeCollection([])
        self.volumes = FakeCollection([])


def _labels(pid: int, session: str, **extra: str) -> dict[str, str]:
    return {
        "io.loomchaos.suite": "loomchaos",
        "io.loomchaos.pid": str(pid),
        "io.loomchaos.session": session,
        **extra,
    }


def test_sweep_only_removes_dead_pids_of_this_host(monkeypatch: pytest.MonkeyPatch) -> None:
    dead_pid = 2**22 + 12345  # above pid_max on default Linux: never alive
    client = FakeDocker(
        [
            FakeObject("dead", _labels(dead_pid, "s-dead")),
            FakeObject("alive", _labels(os.getpid(), "s-alive")),
            FakeObject(
                "other-host", _labels(dead_pid, "s-far", **{"io.loomchaos.host": "elsewhere"})
            ),
            FakeObject(
                "same-host",
                _labels(dead_pid, "s-near", **{"io.loomchaos.host": socket.gethostname()}),
            ),
            FakeObject("no-pid", {"io.loomchaos.suite": "loomchaos", "io.loomchaos.session": "x"}),
        ]
    )
    asked: list[dict[str, str]] = []

    def fake_remove(_client: Any, labels: dict[str, str]) -> Removed:
        asked.append(labels)
        return Removed(containers=[labels["io.loomchaos.session"]])

    monkeypatch.setattr(sweep, "remove_labelled", fake_remove)
    removed = sweep.sweep_orphans(client)
    assert sorted(removed.containers) == ["s-dead", "s-near"]
    for labels in asked:  # always scoped to suite + pid + session, never broader
        assert set(labels) == {"io.loomchaos.suite", "io.loomchaos.pid", "io.loomchaos.session"}
