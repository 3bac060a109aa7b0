"""What a scenario or a fault needs of a running cluster, as a protocol.

:class:`chaos.cluster.cluster.Cluster` satisfies it; unit tests pass small
fakes.  It sits here, below the scenario runner and the faults, so both can
lean on it without importing each other.
"""

from __future__ import annotations

from typing import Any, Protocol

from chaos.cluster.launch import TargetAdapter
from chaos.cluster.spec import ClusterSpec
from chaos.sut.base import RunClient


class ScenarioCluster(Protocol):
    @property
    def spec(self) -> ClusterSpec: ...

    @property
    def replica_ids(self) -> tuple[str, ...]: ...

    @property
    def adapter(self) -> TargetAdapter | None: ...

    @property
    def pg_dsn(self) -> str: ...

    @property
    def lb_url(self) -> str: ...

    def replica_url(self, replica_id: str) -> str: ...

    async def container(self, node: str) -> Any: ...

    async def refresh_endpoints(self) -> None: ...


def client_for(cluster: ScenarioCluster, url: str) -> RunClient:
    """A target client for ``url`` from the cluster's own adapter."""
    if cluster.adapter is None:
        raise RuntimeError("this cluster has no target adapter (started without replicas?)")
    return cluster.adapter.client(url)
