"""Session-scoped cluster cache: one cluster per spec, destructive specs apart.

Starting a cluster costs seconds (tens with replicas), so tests that ask for
equal specs share one, reset to its verified start state before each reuse.
A test whose spec is ``destructive`` breaks things a reset cannot promise to
repair, so it gets a cluster of its own, torn down when it is released.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from chaos.cluster.cluster import Cluster
from chaos.cluster.spec import ClusterSpec

Key = tuple[ClusterSpec, bool]
ClusterFactory = Callable[[ClusterSpec], Cluster]


class ClusterManager:
    """Hands out started, verified clusters; :meth:`close` tears all of them down.

    ``factory`` builds an unstarted :class:`Cluster` for a spec (it carries the
    session id, images, adapter and hooks the session chose).
    """

    def __init__(self, factory: ClusterFactory) -> None:
        self._factory = factory
        self._shared: dict[Key, Cluster] = {}
        self._in_use: set[str] = set()
        self._own: list[Cluster] = []
        self._locks: dict[Key, asyncio.Lock] = {}

    @property
    def clusters(self) -> list[Cluster]:
        return [*self._shared.values(), *self._own]

    async def acquire(self, spec: ClusterSpec, *, with_replicas: bool = True) -> Cluster:
        """A ready cluster for ``spec``: new if destructive or first asked, else reset, reused."""
        if spec.destructive:
            cluster = self._factory(spec)
            self._own.append(cluster)
            return await cluster.start(with_replicas=with_replicas)
        key = (spec, with_replicas)
        async with self._locks.setdefault(key, asyncio.Lock()):
            cached = self._shared.get(key)
            if cached is not None and cached.id in self._in_use:
                raise RuntimeError(f"cluster {cached.id} is still in use by another test")
            if cached is not None and await self._reset_or_drop(cached):
                cluster = cached
            else:
                cluster = self._factory(spec)
                self._shared[key] = cluster
                await cluster.start(with_replicas=with_replicas)
            self._in_use.add(cluster.id)
            return cluster

    @staticmethod
    async def _reset_or_drop(cluster: Cluster) -> bool:
        """Reset a cached cluster; one that cannot be reset is torn down, not reused half-broken."""
        if cluster.state not in ("ready", "failed"):
            return False
        try:
            await cluster.reset()
        except Exception:
            await cluster.teardown()
            return False
        return True

    async def release(self, cluster: Cluster) -> None:
        """Give a cluster back: a destructive one is torn down, a shared one kept for reuse."""
        self._in_use.discard(cluster.id)
        if cluster in self._own:
            self._own.remove(cluster)
            await cluster.teardown()

    async def close(self) -> None:
        """Tear down every cluster this manager started (end of session)."""
        clusters = self.clusters
        self._shared.clear()
        self._own.clear()
        self._in_use.clear()
        for cluster in clusters:
            await cluster.teardown()
