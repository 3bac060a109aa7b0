"""Cluster.recreate_replica and reset()'s identity restore, on a fake engine (no Docker).

Only the steps that would need a live network are stood in for: the engine
(``containers.get`` and ``remove``, and ``start_node`` making a container from
its plan), the Toxiproxy client, and the readiness waits.  Everything else is
the real :class:`~chaos.cluster.cluster.Cluster`: its start, its plans, its
identity bookkeeping, its port cache and reset's revive loop.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Mapping
from typing import Any

import docker.errors
import pytest

from chaos.cluster import cluster as cluster_module
from chaos.cluster import lifecycle
from chaos.cluster.cluster import Cluster
from chaos.cluster.docker_ops import ContainerPlan
from chaos.cluster.launch import ReplicaLaunch
from chaos.cluster.spec import ClusterSpec, ResolvedImages
from chaos.sut.base import RunClient

SPEC = ClusterSpec(replicas=3)
IMAGES = ResolvedImages("pg:x", "nginx:x", "toxi:x", "target:x")
SUBNET = "10.214.9.0/24"


class FakeContainer:
    """A running container as the cluster reads it: its address, network and published ports."""

    def __init__(self, engine: FakeEngine, plan: ContainerPlan, host_ports: Mapping[int, int]):
        self.engine, self.plan, self.name = engine, plan, plan.name
        self.attrs: dict[str, Any] = {
            "NetworkSettings": {
                "Networks": {plan.network: {"IPAMConfig": {"IPv4Address": plan.ip}}},
                "Ports": {
                    f"{port}/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(host)}]
                    for port, host in host_ports.items()
                },
            },
            "State": {"Running": True},
        }

    def remove(self, force: bool = False) -> None:
        assert force, "the old replica goes without a goodbye"
        del self.engine.live[self.name]
        self.engine.removed.append(self.name)


class FakeEngine:
    """docker-py's client as far as these paths reach: ``client.containers.get(name)``."""

    def __init__(self) -> None:
        self.containers = self
        self.live: dict[str, FakeContainer] = {}
        self.removed: list[str] = []
        #: Every plan a container was made from, in order.
        self.plans: list[ContainerPlan] = []
        self._next_port = itertools.count(40000)

    def get(self, name: str) -> FakeContainer:
        try:
            return self.live[name]
        except KeyError:
            raise docker.errors.NotFound(f"no container {name}") from None

    def start_node(self, client: object, plan: ContainerPlan) -> FakeContainer:
        """Stands in for :func:`chaos.cluster.node_container.start_node`."""
        assert client is self and plan.name not in self.live
        container = FakeContainer(self, plan, {p: next(self._next_port) for p in plan.ports})
        self.live[plan.name] = container
        self.plans.append(plan)
        return container

    def last_plan(self, container_name: str) -> ContainerPlan:
        return [p for p in self.plans if p.name == container_name][-1]


class FakeToxiproxy:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.resets = 0

    async def reset(self) -> None:
        self.resets += 1

    async def aclose(self) -> None:
        pass


class FakeAdapter:
    """Puts the replica id and DSN where a test can read them back from the plan."""

    name, version = "fake", "0"

    def replica_launch(self, spec: ClusterSpec, replica_id: str, pg_dsn: str) -> ReplicaLaunch:
        return ReplicaLaunch(command=("serve",), env={"REPLICA_ID": replica_id, "PG_DSN": pg_dsn})

    def client(self, base_url: str) -> RunClient:
        raise AssertionError("the readiness waits are stood in for: no client is asked for")


async def _ready() -> None:
    pass


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    fake = FakeEngine()
    monkeypatch.setattr(cluster_module, "docker_client", lambda: fake)
    monkeypatch.setattr(cluster_module, "start_node", fake.start_node)
    monkeypatch.setattr(cluster_module, "ToxiproxyClient", FakeToxiproxy)
    return fake


@pytest.fixture
async def cluster(engine: FakeEngine, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Cluster]:
    c = Cluster(SPEC, IMAGES, session_id="s", adapter=FakeAdapter(), cluster_id="cu1")
    monkeypatch.setattr(c, "_check_images", lambda: None)
    monkeypatch.setattr(c, "_create_network_and_volume", lambda: SUBNET)
    for wait in ("_ensure_proxies", "_wait_postgres", "verify"):
        monkeypatch.setattr(c, wait, _ready)
    await c.start()
    yield c
    await c._close_clients()
    # Not teardown(): its removal by label is more engine than the fake has; and the exit
    # hook start() registered must not try it either.
    lifecycle.unregister(c.id)


def _served_as(engine: FakeEngine, c: Cluster, node: str) -> tuple[str, str, str]:
    """(replica id, DSN, hostname) of the container ``node`` runs now."""
    plan = engine.last_plan(c.container_name(node))
    return plan.env["REPLICA_ID"], plan.env["PG_DSN"], str(plan.hostname)


async def test_start_plans_each_replica_under_its_own_id(
    engine: FakeEngine, cluster: Cluster
) -> None:
    assert len(engine.plans) == 6  # three infrastructure nodes, three replicas
    for rid in ("r1", "r2", "r3"):
        assert cluster.replica_identity(rid) == rid and cluster.node_of(rid) == rid
        replica_id, dsn, hostname = _served_as(engine, cluster, rid)
        assert (replica_id, hostname) == (rid, f"{rid}-host")
        assert dsn == cluster.replica_pg_dsn(rid)


async def test_recreate_under_a_new_id_records_the_identity(
    engine: FakeEngine, cluster: Cluster
) -> None:
    old = engine.get(cluster.container_name("r2"))
    assert await cluster.recreate_replica("r2", "r9") == "r9"

    assert cluster.replica_identity("r2") == "r9"
    assert cluster.node_of("r9") == "r2"
    assert cluster.replica_identity("r1") == "r1" and cluster.node_of("r1") == "r1"
    assert engine.removed == [cluster.container_name("r2")]
    assert engine.get(cluster.container_name("r2")) is not old
    replica_id, dsn, hostname = _served_as(engine, cluster, "r2")
    assert (replica_id, hostname) == ("r9", "r9-host")
    # The node keeps its links: Postgres through pg_r2, its address and alias.
    assert dsn == cluster.replica_pg_dsn("r2")
    plan = engine.last_plan(cluster.container_name("r2"))
    assert plan.ip == cluster.topology.node("r2").ip and tuple(plan.aliases) == ("r2",)
    # The new id's URL is the node's freshly published port.
    assert cluster.replica_url("r9") == cluster.replica_url("r2")
    port = engine.get(cluster.container_name("r2")).attrs["NetworkSettings"]["Ports"]
    assert cluster.replica_url("r9").endswith(f":{port['8787/tcp'][0]['HostPort']}")


@pytest.mark.parametrize("back_as", [None, "r2"])
async def test_recreate_with_the_nodes_own_id_restores_it(
    engine: FakeEngine, cluster: Cluster, back_as: str | None
) -> None:
    await cluster.recreate_replica("r2", "r9")
    assert await cluster.recreate_replica("r2", back_as) == "r2"

    assert cluster.replica_identity("r2") == "r2"
    assert cluster.node_of("r9") == "r9"  # no node serves as r9 any more
    replica_id, _, hostname = _served_as(engine, cluster, "r2")
    assert (replica_id, hostname) == ("r2", "r2-host")
    assert engine.removed == [cluster.container_name("r2")] * 2


@pytest.mark.parametrize("node", ["r7", "postgres"])
async def test_recreate_of_an_unknown_replica_node_raises_key_error(
    engine: FakeEngine, cluster: Cluster, node: str
) -> None:
    made = len(engine.plans)
    with pytest.raises(KeyError):
        await cluster.recreate_replica(node, "r9")
    assert len(engine.plans) == made and engine.removed == []
    assert cluster.node_of("r9") == "r9"
    with pytest.raises(KeyError):
        cluster.replica_identity("r7")


async def test_reset_restores_every_renamed_node(engine: FakeEngine, cluster: Cluster) -> None:
    await cluster.recreate_replica("r1", "r8")
    await cluster.recreate_replica("r3", "r9")
    r2_plans = len([p for p in engine.plans if p.name == cluster.container_name("r2")])

    await cluster.reset()

    assert cluster.state == "ready"
    for rid in ("r1", "r2", "r3"):
        assert cluster.replica_identity(rid) == rid and cluster.node_of(rid) == rid
        replica_id, _, hostname = _served_as(engine, cluster, rid)
        assert (replica_id, hostname) == (rid, f"{rid}-host")
    assert cluster.node_of("r8") == "r8" and cluster.node_of("r9") == "r9"
    # r2 was never renamed: reset leaves its container alone.
    assert len([p for p in engine.plans if p.name == cluster.container_name("r2")]) == r2_plans
    assert isinstance(cluster.toxiproxy, FakeToxiproxy) and cluster.toxiproxy.resets == 1
