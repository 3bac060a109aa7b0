"""Container plans: what each node of a cluster is, derived from the spec.  Pure, no Docker.

Kept apart from the lifecycle code so the exact command lines, limits,
labels and files can be unit-tested without an engine.
"""

from __future__ import annotations

import re
import socket

from chaos.cluster.docker_ops import ContainerPlan
from chaos.cluster.faketime import FAKETIME_ENV
from chaos.cluster.launch import ReplicaLaunch
from chaos.cluster.nginx import render_nginx_conf
from chaos.cluster.readiness import PgCredentials
from chaos.cluster.spec import ClusterSpec, ResolvedImages
from chaos.cluster.topology import (
    NGINX_PORT,
    POSTGRES_PORT,
    TOXIPROXY_API_PORT,
    Node,
    Topology,
    proxy_listen_port,
)
from chaos.labels import docker_labels

PG_DATA_DIR = "/var/lib/postgresql/data"
NGINX_CONF_PATH = "/etc/nginx/nginx.conf"
#: Extra label: which machine created the object.  The orphan sweep only trusts
#: a pid from its own host (another host's pid 1234 says nothing about ours).
LABEL_HOST_KEY = "host"

_PG_KEY = re.compile(r"^[a-z_][a-z0-9_.]*$")
# The local image's entrypoint passes settings through a shell line: no spaces or quotes.
_PG_VALUE = re.compile(r"^[A-Za-z0-9_.:/+,-]+$")


def node_labels(session_id: str, cluster_id: str, node: str, role: str) -> dict[str, str]:
    return docker_labels(
        session_id, cluster=cluster_id, role=role, node=node, host=socket.gethostname()
    )


def cluster_labels(session_id: str, cluster_id: str, role: str) -> dict[str, str]:
    """Labels of the cluster's network and volume (no node)."""
    return docker_labels(session_id, cluster=cluster_id, role=role, host=socket.gethostname())


def postgres_command(spec: ClusterSpec) -> list[str]:
    """``postgres -c k=v ...``: connection limits from the spec, then the spec's extra settings."""
    settings = [
        ("max_connections", str(spec.pg_max_connections)),
        ("superuser_reserved_connections", str(spec.pg_superuser_reserved)),
        *spec.pg_settings,
    ]
    command = ["postgres"]
    for key, value in settings:
        if not _PG_KEY.match(key) or not _PG_VALUE.match(value):
            raise ValueError(f"unsupported Postgres setting {key}={value!r} (no spaces or quotes)")
        command += ["-c", f"{key}={value}"]
    return command


def postgres_plan(
    topology: Topology,
    spec: ClusterSpec,
    images: ResolvedImages,
    creds: PgCredentials,
    session_id: str,
) -> ContainerPlan:
    node = topology.node("postgres")
    return ContainerPlan(
        name=node.container_name,
        image=images.postgres,
        ip=node.ip,
        network=topology.network_name,
        labels=node_labels(session_id, topology.cluster_id, node.name, node.role),
        command=postgres_command(spec),
        env={
            "POSTGRES_USER": creds.user,
            "POSTGRES_PASSWORD": creds.password,
            "POSTGRES_DB": creds.database,
            **(FAKETIME_ENV if spec.pg_fake_clock else {}),
        },
        ports=(POSTGRES_PORT,),
        aliases=("postgres",),
        # Fast shutdown: the default SIGTERM is Postgres's "smart" mode, which
        # waits for every client (replicas never leave) until Docker kills it.
        stop_signal="SIGINT",
        volumes={topology.volume_name: PG_DATA_DIR},
        hostname="postgres",
    )


def toxiproxy_plan(topology: Topology, images: ResolvedImages, session_id: str) -> ContainerPlan:
    """Toxiproxy publishes its API and every proxy's listen port (the host's probe addresses)."""
    node = topology.node("toxiproxy")
    return ContainerPlan(
        name=node.container_name,
        image=images.toxiproxy,
        ip=node.ip,
        network=topology.network_name,
        labels=node_labels(session_id, topology.cluster_id, node.name, node.role),
        ports=(TOXIPROXY_API_PORT, *(p.listen_port for p in topology.proxies)),
        aliases=("toxiproxy",),
        hostname="toxiproxy",
    )


def nginx_plan(
    topology: Topology, spec: ClusterSpec, images: ResolvedImages, session_id: str
) -> ContainerPlan:
    node = topology.node("nginx")
    return ContainerPlan(
        name=node.container_name,
        image=images.nginx,
        ip=node.ip,
        network=topology.network_name,
        labels=node_labels(session_id, topology.cluster_id, node.name, node.role),
        command=("nginx", "-g", "daemon off;"),
        ports=(NGINX_PORT,),
        aliases=("lb",),
        files={NGINX_CONF_PATH: render_nginx_conf(topology, spec.nginx).encode()},
        nofile=spec.nginx.nofile,
        hostname="lb",
    )


def replica_plan(
    topology: Topology,
    spec: ClusterSpec,
    image: str,
    node: Node,
    launch: ReplicaLaunch,
    session_id: str,
    *,
    hostname: str | None = None,
) -> ContainerPlan:
    """``hostname`` defaults to ``<node>-host``; a node re-created under another replica
    id (:meth:`chaos.cluster.cluster.Cluster.recreate_replica`) passes ``<id>-host``."""
    return ContainerPlan(
        name=node.container_name,
        image=image,
        ip=node.ip,
        network=topology.network_name,
        labels=node_labels(session_id, topology.cluster_id, node.name, node.role),
        command=launch.command,
        env=launch.env,
        ports=(launch.port,),
        aliases=(node.name,),
        files=launch.files,
        nofile=spec.replica_nofile,
        # Not the replica id on purpose: a target that mixed up its id and its hostname
        # (planted defect 09: heartbeat arguments swapped) would go unseen if both were equal.
        hostname=hostname or f"{node.name}-host",
    )


def replica_pg_dsn(creds: PgCredentials, replica_id: str) -> str:
    """The DSN a replica is given: Postgres through its own proxy ``pg_<id>`` on Toxiproxy."""
    return creds.url("toxiproxy", proxy_listen_port("pg", replica_id))
