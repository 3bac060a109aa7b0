"""The plan of one cluster: names, pinned addresses, proxies.  Pure data, no Docker.

Why pin addresses: nginx resolves its upstream names once, at start, and a
container that comes back on a new address would be invisible to it until a
reload.  Every container therefore gets a fixed IP on the cluster's own
subnet, and a restarted container asks for the same one back.

Why a proxy per link: each replica reaches Postgres through its own Toxiproxy
proxy ``pg_r<i>`` and nginx reaches each replica through ``lb_r<i>``, so a
fault can cut or slow exactly one replica's database link or one replica's
traffic from the load balancer, and leave the others alone.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

Role = Literal["postgres", "toxiproxy", "nginx", "replica"]
Link = Literal["pg", "lb"]

POSTGRES_PORT = 5432
TOXIPROXY_API_PORT = 8474
NGINX_PORT = 80
#: Proxy listen ports inside the Toxiproxy container: pg_r<i> = 15400 + i, lb_r<i> = 18700 + i.
PG_PROXY_BASE = 15400
LB_PROXY_BASE = 18700

#: Host offsets on the /24: .1 is the bridge gateway; replicas from .21 upwards.
_OFFSETS = {"postgres": 10, "toxiproxy": 11, "nginx": 12}
_REPLICA_OFFSET = 20


def replica_ids(count: int) -> tuple[str, ...]:
    """``r1..rN``: valid loomcycle replica ids and short container suffixes."""
    return tuple(f"r{i}" for i in range(1, count + 1))


def proxy_name(link: Link, replica_id: str) -> str:
    return f"{link}_{replica_id}"


def proxy_listen_port(link: Link, replica_id: str) -> int:
    """Where proxy ``<link>_<replica_id>`` listens inside the Toxiproxy container."""
    index = int(replica_id.removeprefix("r"))
    return (PG_PROXY_BASE if link == "pg" else LB_PROXY_BASE) + index


@dataclass(frozen=True)
class Node:
    """One container.  ``name`` is ``postgres``, ``toxiproxy``, ``nginx`` or a replica id."""

    name: str
    role: Role
    ip: str
    container_name: str


@dataclass(frozen=True)
class ProxyPlan:
    """One Toxiproxy proxy: where it listens (in the Toxiproxy container) and where it forwards."""

    name: str
    link: Link
    replica_id: str
    listen_port: int
    upstream: str  # "host:port" on the cluster network

    @property
    def listen(self) -> str:
        return f"0.0.0.0:{self.listen_port}"


@dataclass(frozen=True)
class Topology:
    cluster_id: str
    subnet: str
    replica_port: int
    replica_ids: tuple[str, ...]

    def __post_init__(self) -> None:
        net = ipaddress.IPv4Network(self.subnet)
        if net.num_addresses < 256:
            raise ValueError(f"subnet {self.subnet} is smaller than a /24")

    @property
    def network_name(self) -> str:
        return f"loomchaos-{self.cluster_id}"

    @property
    def volume_name(self) -> str:
        return f"loomchaos-{self.cluster_id}-pgdata"

    @property
    def gateway(self) -> str:
        return self._host(1)

    def container_name(self, node: str) -> str:
        return f"loomchaos-{self.cluster_id}-{node}"

    def _host(self, offset: int) -> str:
        return str(ipaddress.IPv4Network(self.subnet).network_address + offset)

    def node(self, name: str) -> Node:
        if name in _OFFSETS:
            role: Role = name  # type: ignore[assignment]
            return Node(name, role, self._host(_OFFSETS[name]), self.container_name(name))
        if name in self.replica_ids:
            offset = _REPLICA_OFFSET + self.replica_ids.index(name) + 1
            return Node(name, "replica", self._host(offset), self.container_name(name))
        raise KeyError(f"no node {name!r} in cluster {self.cluster_id}")

    @property
    def infra_nodes(self) -> tuple[Node, ...]:
        """Start order of the infrastructure: database, proxies, then the load balancer."""
        return tuple(self.node(n) for n in ("postgres", "toxiproxy", "nginx"))

    @property
    def replica_nodes(self) -> tuple[Node, ...]:
        return tuple(self.node(r) for r in self.replica_ids)

    @property
    def proxies(self) -> tuple[ProxyPlan, ...]:
        pg = self.node("postgres")
        pg_upstream = f"{pg.ip}:{POSTGRES_PORT}"
        pg_plans = [
            ProxyPlan(proxy_name("pg", r), "pg", r, proxy_listen_port("pg", r), pg_upstream)
            for r in self.replica_ids
        ]
        lb_plans = [
            ProxyPlan(
                proxy_name("lb", r),
                "lb",
                r,
                proxy_listen_port("lb", r),
                f"{self.node(r).ip}:{self.replica_port}",
            )
            for r in self.replica_ids
        ]
        return (*pg_plans, *lb_plans)

    def proxy(self, name: str) -> ProxyPlan:
        for plan in self.proxies:
            if plan.name == name:
                return plan
        raise KeyError(f"no proxy {name!r} in cluster {self.cluster_id}")
