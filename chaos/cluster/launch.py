"""What the cluster needs of a target to launch its replicas (the launch half of the seam).

The cluster knows infrastructure only: it asks the target's adapter for one
replica's command, environment and files, starts the container, and hands
out the adapter's clients.  It lives beside the cluster, not in
:mod:`chaos.sut`, so the dependency runs one way: the cluster imports the
target-neutral client types from :mod:`chaos.sut.base`, never the reverse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from chaos.cluster.spec import ClusterSpec
from chaos.sut.base import RunClient


@dataclass(frozen=True)
class ReplicaLaunch:
    """How to start one replica container.

    ``command`` is the argument list after the image's ENTRYPOINT (which is the
    target's binary in both image families), not including the binary itself.

    ``files`` maps an absolute path inside the container to its content; the
    cluster copies them in before start (no host bind mounts, so the same
    code works for the distroless public image).
    """

    command: tuple[str, ...]
    env: Mapping[str, str]
    files: Mapping[str, bytes] = field(default_factory=dict)
    port: int = 8787
    health_path: str = "/healthz"


class TargetAdapter(Protocol):
    name: str
    version: str

    def replica_launch(self, spec: ClusterSpec, replica_id: str, pg_dsn: str) -> ReplicaLaunch: ...

    def client(self, base_url: str) -> RunClient: ...
