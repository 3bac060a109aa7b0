"""A toy cluster: the suite's own :class:`~chaos.cluster.cluster.Cluster`, given the toy's
adapter and image.  No backplane hook (the toy has none) and no idle hook (each test
starts its own cluster and never resets it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

from chaos.cluster.cluster import Cluster
from chaos.cluster.spec import ClusterSpec, ResolvedImages
from tests.toy.adapter import DEFECT_ENV, ToyAdapter, ToySettings

#: The toy's timers: stale 6 s, sweep 1 s, so a kill is reaped within ~7 s.
TOY_SPEC = ClusterSpec(
    replicas=3, pool_size=8, replica_extra_connections=0, target=ToySettings(6_000, 1_000, 3)
)
DEFECT_SPEC = replace(TOY_SPEC, replica_env=((DEFECT_ENV, "1"),))


def toy_images(infra: ResolvedImages, toy_tag: str) -> ResolvedImages:
    """The infrastructure images the session provisioned, with the toy as the replica image.

    The replica image's field is named ``loomcycle`` in :class:`ResolvedImages`; it is
    simply "the target's image", so the toy's tag goes there.
    """
    return ResolvedImages(
        postgres=infra.postgres, nginx=infra.nginx, toxiproxy=infra.toxiproxy, loomcycle=toy_tag
    )


@asynccontextmanager
async def toy_cluster(
    spec: ClusterSpec,
    images: ResolvedImages,
    session_id: str,
    logs_on_failure: Path | None = None,
) -> AsyncIterator[Cluster]:
    """A started, verified toy cluster, torn down on the way out (logs kept if the body raised)."""
    cluster = Cluster(spec, images, session_id=session_id, adapter=ToyAdapter())
    await cluster.start()
    try:
        yield cluster
    except BaseException:
        if logs_on_failure is not None:
            await cluster.collect_logs(logs_on_failure)
        raise
    finally:
        await cluster.teardown()
