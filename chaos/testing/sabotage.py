"""Breaking a cluster's nodes behind the history's back, for tests of the cluster itself.

A scenario must break things only through :mod:`chaos.faults`, whose every
inject and heal is recorded (the checkers excuse nothing they cannot see).
The tests of :meth:`~chaos.cluster.cluster.Cluster.reset` and of the sweep
need the opposite: a node broken *without* a record, to show that reset
heals whatever it finds.  These helpers do that and keep the cluster's
endpoint cache honest afterwards.
"""

from __future__ import annotations

import asyncio

from chaos.cluster.cluster import Cluster


async def kill_node(cluster: Cluster, node: str) -> None:
    container = await cluster.container(node)
    await asyncio.to_thread(container.kill)
    await cluster.refresh_endpoints()


async def stop_node(cluster: Cluster, node: str) -> None:
    container = await cluster.container(node)
    await asyncio.to_thread(container.stop, timeout=cluster.deadlines.stop_grace_s)
    await cluster.refresh_endpoints()


async def pause_node(cluster: Cluster, node: str) -> None:
    container = await cluster.container(node)
    await asyncio.to_thread(container.pause)
