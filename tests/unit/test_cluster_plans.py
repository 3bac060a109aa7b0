"""Topology, container plans and labels: what each node is, checked without Docker."""

from __future__ import annotations

import dataclasses
import io
import tarfile

import pytest

from chaos.cluster.docker_ops import tar_files
from chaos.cluster.faketime import FAKETIME_ENV
from chaos.cluster.launch import ReplicaLaunch
from chaos.cluster.plans import (
    nginx_plan,
    postgres_command,
    postgres_plan,
    replica_pg_dsn,
    replica_plan,
    toxiproxy_plan,
)
from chaos.cluster.readiness import PgCredentials
from chaos.cluster.spec import ClusterSpec, NginxSpec, ResolvedImages
from chaos.cluster.topology import Topology, replica_ids
from chaos.labels import LABEL_CLUSTER, LABEL_PID, LABEL_ROLE, LABEL_SESSION, LABEL_SUITE

IMAGES = ResolvedImages("pg:x", "nginx:x", "toxi:x", None)
CREDS = PgCredentials("u", "pw", "db")


def _topology(n: int = 3) -> Topology:
    return Topology("cabc123", "10.214.9.0/24", 8787, replica_ids(n))


def test_pinned_addresses_are_distinct_and_in_subnet() -> None:
    topo = _topology(8)
    nodes = (*topo.infra_nodes, *topo.replica_nodes)
    ips = [n.ip for n in nodes]
    assert len(set(ips)) == len(ips)
    assert all(ip.startswith("10.214.9.") for ip in ips)
    assert topo.gateway not in ips
    assert topo.node("r1").ip == "10.214.9.21"


def test_one_pg_and_one_lb_proxy_per_replica() -> None:
    topo = _topology(3)
    names = [p.name for p in topo.proxies]
    assert names == ["pg_r1", "pg_r2", "pg_r3", "lb_r1", "lb_r2", "lb_r3"]
    assert topo.proxy("pg_r2").upstream == "10.214.9.10:5432"
    assert topo.proxy("lb_r3").upstream == "10.214.9.23:8787"
    assert len({p.listen_port for p in topo.proxies}) == 6
    with pytest.raises(KeyError):
        topo.proxy("pg_r4")


def test_subnet_must_be_a_slash_24_or_larger() -> None:
    with pytest.raises(ValueError):
        Topology("c1", "10.214.9.0/25", 8787, ("r1",))


def test_replica_dsn_goes_through_its_own_proxy() -> None:
    assert replica_pg_dsn(CREDS, "r2") == "postgres://u:pw@toxiproxy:15402/db?sslmode=disable"


def test_postgres_command_carries_limits_and_extras() -> None:
    spec = ClusterSpec(
        pg_max_connections=300,
        pg_superuser_reserved=7,
        pg_settings=(("log_min_duration_statement", "0"),),
    )
    assert postgres_command(spec) == [
        "postgres",
        "-c",
        "max_connections=300",
        "-c",
        "superuser_reserved_connections=7",
        "-c",
        "log_min_duration_statement=0",
    ]


@pytest.mark.parametrize("setting", [("a b", "1"), ("work_mem", "64 MB"), ("x", "'1'"), ("x", "")])
def test_postgres_command_refuses_unsafe_settings(setting: tuple[str, str]) -> None:
    with pytest.raises(ValueError):
        postgres_command(ClusterSpec(pg_settings=(setting,)))


def test_every_plan_is_labelled_for_cleanup() -> None:
    topo = _topology(2)
    spec = ClusterSpec(replicas=2)
    launch = ReplicaLaunch(command=("loomcycle",), env={"A": "1"})
    plans = [
        postgres_plan(topo, spec, IMAGES, CREDS, "sess1"),
        toxiproxy_plan(topo, IMAGES, "sess1"),
        nginx_plan(topo, spec, IMAGES, "sess1"),
        replica_plan(topo, spec, "lc:x", topo.node("r1"), launch, "sess1"),
    ]
    for plan in plans:
        assert plan.labels[LABEL_SUITE] == "loomchaos"
        assert plan.labels[LABEL_SESSION] == "sess1"
        assert plan.labels[LABEL_CLUSTER] == "cabc123"
        assert plan.labels[LABEL_PID].isdigit()
        assert plan.labels[LABEL_ROLE] in {"postgres", "toxiproxy", "nginx", "replica"}
        assert plan.network == "loomchaos-cabc123"
        assert plan.name.startswith("loomchaos-cabc123-")


def test_plans_carry_limits_ports_and_files() -> None:
    topo = _topology(2)
    spec = ClusterSpec(replicas=2, replica_nofile=4096, nginx=NginxSpec(nofile=2048))
    pg = postgres_plan(topo, spec, IMAGES, CREDS, "s")
    assert pg.volumes == {"loomchaos-cabc123-pgdata": "/var/lib/postgresql/data"}
    assert pg.stop_signal == "SIGINT"
    toxi = toxiproxy_plan(topo, IMAGES, "s")
    assert set(toxi.ports) == {8474, 15401, 15402, 18701, 18702}  # API + every probe address
    nginx = nginx_plan(topo, spec, IMAGES, "s")
    assert nginx.nofile == 2048
    assert b"proxy_buffering off" in nginx.files["/etc/nginx/nginx.conf"]
    launch = ReplicaLaunch(
        command=("loomcycle", "--config", "/etc/lc.yaml"),
        env={"LOOMCYCLE_REPLICA_ID": "r2"},
        files={"/etc/lc.yaml": b"x: 1\n"},
        port=9000,
    )
    replica = replica_plan(topo, spec, "lc:x", topo.node("r2"), launch, "s")
    assert replica.nofile == 4096
    assert replica.ports == (9000,)
    assert replica.files == {"/etc/lc.yaml": b"x: 1\n"}
    assert replica.ip == "10.214.9.22"


def test_tar_files_has_files_only_with_owner() -> None:
    data = tar_files({"/etc/lc/config.yaml": b"abc", "/tmp/x": b""}, uid=65532, gid=65532)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["etc/lc/config.yaml", "tmp/x"]
    assert all(m.isfile() and m.uid == 65532 for m in members)  # no directory entries


@pytest.mark.parametrize("path", ["relative/file", "/etc/../root/x"])
def test_tar_files_refuses_odd_paths(path: str) -> None:
    with pytest.raises(ValueError):
        tar_files({path: b"x"})


def test_replica_hostname_defaults_to_node_host_never_the_replica_id() -> None:
    """Planted defect 09 (heartbeat arguments swapped) only shows if hostname and id differ."""
    topo = _topology(3)
    spec = ClusterSpec(replicas=3)
    launch = ReplicaLaunch(command=("loomcycle",), env={})
    for rid in topo.replica_ids:
        plan = replica_plan(topo, spec, "lc:x", topo.node(rid), launch, "s")
        assert plan.hostname == f"{rid}-host"
        assert plan.hostname != rid


def test_replica_hostname_given_is_used() -> None:
    """A node re-created under another replica id gets that id's hostname, not the node's."""
    topo = _topology(3)
    launch = ReplicaLaunch(command=("loomcycle",), env={})
    plan = replica_plan(
        topo, ClusterSpec(replicas=3), "lc:x", topo.node("r2"), launch, "s", hostname="r9-host"
    )
    assert plan.hostname == "r9-host"
    assert plan.hostname not in {"r2", "r9", "r2-host"}
    assert plan.aliases == ("r2",) and plan.ip == topo.node("r2").ip  # the node stays the node


def test_only_a_fake_clock_spec_puts_postgres_under_libfaketime() -> None:
    topo = _topology(1)
    spec = ClusterSpec(replicas=1)
    plain = postgres_plan(topo, spec, IMAGES, CREDS, "s")
    faked = postgres_plan(topo, dataclasses.replace(spec, pg_fake_clock=True), IMAGES, CREDS, "s")
    assert not any(k.startswith(("LOOMCHAOS_FAKETIME", "FAKETIME")) for k in plain.env)
    assert {k: faked.env[k] for k in FAKETIME_ENV} == FAKETIME_ENV
    assert faked.env["FAKETIME_DONT_FAKE_MONOTONIC"] == "1"
