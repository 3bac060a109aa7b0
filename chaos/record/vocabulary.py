"""The target-neutral vocabulary that flows from the adapter to the checkers.

The target adapter (``chaos/sut/``) is the only code that knows the
target's SQL and JSON; it turns what it reads into these rows.  Checkers read
only these rows and the :class:`~chaos.record.history.History`, so another system
with runs, owners, quotas and a reaper needs a new adapter and nothing else.

History vocabulary (``op`` names and the data each record carries):

``start_run`` (process = driver worker, key = agent_id)
    invoke data: ``user_id``, ``agent``, ``via`` ("lb" or a replica id).
    ok data: ``run_id``, ``replica_id`` (owner, when known), ``stop_reason``,
    ``events`` (list of ``{"type", "mono"}`` for session/agent/done/error).
    fail data: ``status`` (HTTP status), ``code`` (e.g. ``per_user_quota_exhausted``),
    ``error``.  info data: ``error`` (the stream broke; outcome unknown to the client),
    ``run_id`` if the ``agent`` event had arrived, ``cut`` = True when the suite
    itself closed the stream on purpose.
``cancel`` (key = agent_id)
    invoke data: ``via``, ``reason``.  ok data: the response body
    (``cancelled``, ``reason``, ``status``) and ``classification`` (a
    :data:`CANCEL_CLASSES` member).
``run_status`` (key = agent_id)
    a status poll after a broken or cut stream; invoke data: ``reason``; ok data:
    ``found``, ``status``, ``stop_reason``, ``error``, ``run_id``, ``replica_id``,
    ``live``, ``polls``; ``info`` when its deadline passed.
Every completion of ``start_run`` also carries ``end``: ``done``, ``error`` (the
    stream's ``error`` event: the run existed and ended failed, so the record is
    ``ok``), ``rejected``, ``broken``, ``cut``, ``timeout`` or ``cancelled``.
    Invokes may carry ``attempt``, ``phase``, ``wave`` and ``circuit``.
Notes: ``phase`` and ``wave`` (the wave's summary), ``circuit_drain`` (circuit,
    reused, drained, empty), ``check_params``.
``kill`` / ``stop`` / ``pause`` / ... : faults, recorded with
    :meth:`~chaos.record.history.History.fault`, target = container or link name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

# -- records -------------------------------------------------------------------------
#: The kinds of record a History holds (Jepsen's ``:type``, plus the suite's own).
RecordType = Literal["invoke", "ok", "fail", "info", "fault", "snapshot", "lag", "note"]
#: How an invoked operation ended: the system said yes, said no, or we never heard.
Outcome = Literal["ok", "fail", "info"]
#: The phases of a fault window, in order (``effect_failed``/``heal_failed`` end it early).
FaultPhase = Literal["inject", "effect", "heal", "healed", "heal_failed", "effect_failed"]
RECORD_TYPES: frozenset[str] = frozenset(get_args(RecordType))
OUTCOMES: frozenset[str] = frozenset(get_args(Outcome))

# -- operation and note names (writers and readers import these, never spell them) ----

RunStatus = Literal["running", "completed", "failed", "cancelled"]
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled"})

OP_START_RUN = "start_run"
OP_CANCEL = "cancel"
#: The status poll after a broken or cut stream.
OP_RUN_STATUS = "run_status"
#: Stream event types whose arrival a ``start_run`` completion lists in ``events``.
RECORDED_EVENTS: frozenset[str] = frozenset({"session", "agent", "done", "error"})
#: A database snapshot's op name, and the notes the end of a scenario writes.
SNAPSHOT_OP = "db"
NOTE_PARAMS = "check_params"
NOTE_AUDIT = "audit"
NOTE_LIVE_PROBE = "live_probe"
NOTE_DONE_EVENTS = "done_events"
NOTE_CIRCUIT_OUTPUTS = "circuit_outputs"
#: Scenario notes: the convergence wait's result, a background sample that failed.
NOTE_CONVERGE = "converge"
NOTE_SAMPLE_ERROR = "sample_error"
#: Workload notes: a phase started, a wave's summary, a circuit id's queues checked.
NOTE_PHASE = "phase"
OP_WAVE = "wave"
OP_CIRCUIT_DRAIN = "circuit_drain"
#: A fault schedule (:mod:`chaos.schedule`): the concrete plan (``steps``, drawn
#: from the seed) once, then one note per step as it ran (``ran`` = its index).
NOTE_SCHEDULE = "schedule"

CancelClass = Literal[
    "acknowledged",  # cancelled:true with the caller's reason
    "already_terminal",  # cancelled:false, the run had ended (a race the contract calls normal)
    "owner_unreachable",  # cancelled:false, reason owner_replica_unreachable
    "owner_dead",  # cancelled:true/false, reason owner_dead_marked_failed
    "running_elsewhere",  # cancelled:false, status running on an owner that no longer holds it
    "not_found",  # 404 unknown_agent_id: no run of that agent (yet); judged against the rows
    "unknown",  # anything else: always a failure
]
CANCEL_CLASSES: frozenset[str] = frozenset(
    {
        "acknowledged",
        "already_terminal",
        "owner_unreachable",
        "owner_dead",
        "running_elsewhere",
        "not_found",
        "unknown",
    }
)


@dataclass(frozen=True, slots=True)
class RunRow:
    """One run as the database holds it; times are wall-clock epoch seconds."""

    run_id: str
    agent_id: str
    user_id: str | None
    replica_id: str | None
    status: str
    stop_reason: str | None
    error: str | None
    started_at: float | None
    completed_at: float | None
    last_heartbeat_at: float | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


@dataclass(frozen=True, slots=True)
class ReplicaRow:
    replica_id: str
    started_at: float | None
    last_heartbeat_at: float | None


@dataclass(frozen=True, slots=True)
class QuotaRow:
    user_id: str
    active_count: int


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One transition recorded by the suite's own triggers (see the target adapter).

    ``table`` is ``runs``, ``replicas`` or the target's quota table; ``old``/``new`` are
    the row before and after (``None`` for insert/delete); ``at`` is the
    database clock (epoch seconds), ``seq`` its commit order.
    """

    seq: int
    table: str
    action: Literal["insert", "update", "delete"]
    key: str
    old: dict[str, object] | None
    new: dict[str, object] | None
    at: float


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The database's state at one instant (``mono``/``wall`` on the suite's clocks)."""

    mono: float
    wall: float
    runs: tuple[RunRow, ...] = ()
    replicas: tuple[ReplicaRow, ...] = ()
    quotas: tuple[QuotaRow, ...] = ()


# Fault names as recorded in the history (History.fault(phase, name, target, ...)).
# Replica process faults use the replica id as target.
FAULT_KILL = "kill"  # SIGKILL: the replica is dead; its runs must be reaped
FAULT_STOP = "stop"  # SIGTERM: graceful; it deletes its own row
FAULT_PAUSE = "pause"  # docker pause: frozen, still "alive" for the one-truth check
FAULT_RESTART = "restart"
#: Link faults are named "link:<kind>" (e.g. "link:reset_cut") with data
#: {"link": "pg:r1" | "lb:r1", "replica": "r1"}.
LINK_FAULT_PREFIX = "link:"
#: Faults after which the replica process is gone (its runs should be reaped).
DEATH_FAULTS: frozenset[str] = frozenset({FAULT_KILL, FAULT_STOP})
