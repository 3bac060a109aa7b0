"""What a scenario needs of a cluster, as a protocol.

:class:`chaos.cluster.cluster.Cluster` satisfies it; unit tests pass small
fakes.  Keeping the scenario code on this narrow surface is what lets its
logic be tested without Docker or the target.
"""

from __future__ import annotations

from typing import Any, Protocol

from chaos.cluster.spec import ClusterSpec
from chaos.sut.base import RunClient, TargetAdapter


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


def describe_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]
