"""The seam between the generic suite and one target system.

The cluster module asks the adapter how to launch a replica; the workload
driver and the faults talk to replicas through :class:`RunClient`; the
checkers never see any of this, only :mod:`chaos.record.vocabulary` rows and the history.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from chaos.record.vocabulary import CancelClass, QuotaRow, ReplicaRow, RunRow

if TYPE_CHECKING:
    # Only for annotations: chaos.cluster imports this module for Health, so a
    # runtime import here would be a cycle.
    from chaos.cluster.spec import ClusterSpec


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


@dataclass(frozen=True)
class RunRequest:
    agent: str
    agent_id: str
    prompt: str
    user_id: str | None = None
    session_id: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StreamEvent:
    """One SSE event as received; ``mono`` is the suite's monotonic clock on arrival."""

    type: str
    data: Mapping[str, Any]
    mono: float


@dataclass(frozen=True)
class Rejection:
    """The target refused a run before opening its stream (HTTP status and code)."""

    status: int
    code: str | None
    body: str


@dataclass(frozen=True)
class CancelResult:
    http_status: int
    body: Mapping[str, Any]
    classification: CancelClass
    latency_s: float


@dataclass(frozen=True)
class Health:
    ok: bool
    replica_id: str | None
    version: str | None
    replica_ids: tuple[str, ...] | None  # None when the replica could not read its table


class RunClient(Protocol):
    """Talks to one base URL (the load balancer or one replica's published port)."""

    base_url: str

    def start_run(self, req: RunRequest) -> AsyncIterator[StreamEvent]:
        """Open the run's stream and yield its events until ``done``/``error``.

        Raises :class:`RunRejected` (carrying a :class:`Rejection`) when the
        target answers an error status instead of a stream.  Closing the
        iterator early closes the stream, which cancels the run on the target.
        """
        ...

    async def status(self, agent_id: str) -> Mapping[str, Any] | None: ...

    async def cancel(self, agent_id: str, reason: str | None = None) -> CancelResult: ...

    async def health(self) -> Health: ...

    async def aclose(self) -> None: ...


class RunRejected(Exception):
    def __init__(self, rejection: Rejection) -> None:
        self.rejection = rejection
        super().__init__(f"HTTP {rejection.status} {rejection.code or ''}".strip())


class StateReader(Protocol):
    """Reads the target's database into :mod:`chaos.record.vocabulary` rows (it alone knows SQL)."""

    async def runs(self, prefix: str) -> Sequence[RunRow]: ...

    async def replicas(self) -> Sequence[ReplicaRow]: ...

    async def quotas(self, prefix: str | None = None) -> Sequence[QuotaRow]: ...


class TargetAdapter(Protocol):
    name: str
    version: str

    def replica_launch(self, spec: ClusterSpec, replica_id: str, pg_dsn: str) -> ReplicaLaunch: ...

    def client(self, base_url: str) -> RunClient: ...
