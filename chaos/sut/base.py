"""The seam between the generic suite and one target system.

The workload driver and the faults talk to replicas through :class:`RunClient`;
the cluster asks the target how to launch a replica through its own protocol
(:class:`chaos.cluster.launch.TargetAdapter`, which hands out these clients);
the checkers never see any of this, only :mod:`chaos.record.vocabulary` rows
and the history.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from chaos.record.vocabulary import CancelClass, QuotaRow, ReplicaRow, RunRow


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
