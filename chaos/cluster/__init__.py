"""Cluster topology and lifecycle: Postgres, Toxiproxy, nginx and N replicas in Docker.

Public entry points: :class:`Cluster` (one cluster), :class:`ClusterManager`
(session cache), :func:`sweep_orphans` (what killed sessions left), and the
127.0.0.1-only address helpers.
"""

from chaos.cluster.addresses import NotLoopback, localhost_url, published_port
from chaos.cluster.cluster import Cluster, Deadlines
from chaos.cluster.docker_ops import Removed
from chaos.cluster.manager import ClusterManager
from chaos.cluster.readiness import PgCredentials
from chaos.cluster.sweep import sweep_orphans, sweep_orphans_async

__all__ = [
    "Cluster",
    "ClusterManager",
    "Deadlines",
    "NotLoopback",
    "PgCredentials",
    "Removed",
    "localhost_url",
    "published_port",
    "sweep_orphans",
    "sweep_orphans_async",
]
