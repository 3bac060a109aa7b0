"""What every checker reads: the history, database snapshots, the audit log, the bounds.

:class:`CheckContext` also builds, once and lazily, the indexes the checkers
share (runs by agent id and run id, cancels, fault windows by replica), so a
checker never scans the whole history inside a loop: every checker stays
O(n log n) in the number of runs.

Nothing here imports the target adapter, the cluster or Docker: a saved
history is all a re-check needs (see :mod:`chaos.record.readers`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from chaos.checks.params import CheckParams, params_from_history, record_params
from chaos.record.history import FaultWindow, History, Outcome, Record
from chaos.record.readers import (
    audit_from_history,
    note_key,
    record_audit,
    record_snapshot,
    snapshots_from_history,
)
from chaos.record.vocabulary import (
    NOTE_CIRCUIT_OUTPUTS,
    NOTE_DONE_EVENTS,
    NOTE_LIVE_PROBE,
    OP_CANCEL,
    OP_RUN_STATUS,
    OP_START_RUN,
    TERMINAL,
    AuditRow,
    RunRow,
    Snapshot,
)

__all__ = [
    "CancelCall",
    "CheckContext",
    "CheckParams",
    "ClientRun",
    "audit_from_history",
    "params_from_history",
    "record_audit",
    "record_params",
    "record_snapshot",
    "snapshots_from_history",
]


@dataclass(frozen=True)
class ClientRun:
    """One ``start_run`` as the driver saw it (mono times on the suite's clock)."""

    agent_id: str
    user_id: str | None
    via: str | None
    circuit: str | None
    outcome: Outcome | None
    run_id: str | None
    replica_id: str | None
    code: str | None
    got_done: bool
    done_stop_reason: str | None
    got_error: bool
    error: str | None
    cut: bool
    start: float
    end: float | None
    invoke_index: int
    #: When the first stream frame arrived (mono): the target had admitted the run by then
    #: (a queued or stuck POST has no response yet).  None when no frame was recorded.
    admitted: float | None = None
    #: The HTTP status of a refused start (``outcome == "fail"``), when there was one.
    http_status: int | None = None

    @property
    def maybe_admitted(self) -> bool:
        """Refused with a 5xx that carries no target code: the load balancer's own answer
        (502/504 when the replica died mid-request) or a server error.  The target may have
        taken a quota slot and written the run's row before the answer was lost."""
        return (
            self.outcome == "fail"
            and self.code is None
            and self.http_status is not None
            and self.http_status >= 500
        )

    @property
    def accepted(self) -> bool:
        """The target took the run: the stream finished, or its ``agent`` event arrived."""
        return self.outcome == "ok" or self.run_id is not None

    @property
    def stream_broken(self) -> bool:
        """The client never learned how the run ended (stream cut, or never completed)."""
        return self.outcome == "info" or self.outcome is None


@dataclass(frozen=True)
class CancelCall:
    """One cancel request and what came back."""

    agent_id: str
    via: str | None
    reason: str | None
    outcome: Outcome | None
    classification: str | None
    cancelled: bool | None
    response_reason: str | None
    response_status: str | None
    start: float
    end: float | None
    invoke_index: int

    @property
    def latency(self) -> float | None:
        return None if self.end is None else self.end - self.start


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _client_run(inv: Record, done: Record | None) -> ClientRun:
    data = done.data if done is not None else {}
    events = data.get("events") or ()
    event_types = {str(e.get("type")) for e in events if isinstance(e, dict)}
    outcome: Outcome | None = None if done is None else done.type  # type: ignore[assignment]
    stop_reason = _opt_str(data.get("stop_reason"))
    end = data.get("end")  # the driver's own word for how the stream ended, when present
    if end is not None:
        got_done = outcome == "ok" and end == "done"
        got_error = outcome == "ok" and end == "error"
    else:
        got_done = outcome == "ok" and ("done" in event_types or stop_reason is not None)
        got_error = outcome == "ok" and (
            "error" in event_types or (not got_done and data.get("error") is not None)
        )
    return ClientRun(
        agent_id=inv.key or "",
        user_id=_opt_str(inv.data.get("user_id")),
        via=_opt_str(inv.data.get("via")),
        circuit=_opt_str(inv.data.get("circuit")),
        outcome=outcome,
        run_id=_opt_str(data.get("run_id")),
        replica_id=_opt_str(data.get("replica_id")),
        code=_opt_str(data.get("code")) if outcome == "fail" else None,
        got_done=got_done,
        done_stop_reason=stop_reason if got_done else None,
        got_error=got_error,
        error=_opt_str(data.get("error")),
        cut=bool(data.get("cut", False)),
        start=inv.mono,
        end=None if done is None else done.mono,
        invoke_index=inv.index,
        admitted=_first_frame(events),
        http_status=_opt_int(data.get("status")) if outcome == "fail" else None,
    )


def _opt_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _first_frame(events: Any) -> float | None:
    times = [e.get("mono") for e in events if isinstance(e, dict)]
    numbers = [float(t) for t in times if isinstance(t, int | float)]
    return min(numbers) if numbers else None


def _cancel_call(inv: Record, done: Record | None) -> CancelCall:
    data = done.data if done is not None else {}
    cancelled = data.get("cancelled")
    return CancelCall(
        agent_id=inv.key or "",
        via=_opt_str(inv.data.get("via")),
        reason=_opt_str(inv.data.get("reason")),
        outcome=None if done is None else done.type,  # type: ignore[arg-type]
        classification=_opt_str(data.get("classification")),
        cancelled=None if cancelled is None else bool(cancelled),
        response_reason=_opt_str(data.get("reason")),
        response_status=_opt_str(data.get("status")),
        start=inv.mono,
        end=None if done is None else done.mono,
        invoke_index=inv.index,
    )


@dataclass(frozen=True, eq=False)
class CheckContext:
    """The inputs of every checker.  Build with :meth:`from_history` for offline checks."""

    history: History
    snapshots: list[Snapshot]
    audit: list[AuditRow]
    params: CheckParams = field(default_factory=CheckParams)

    @classmethod
    def from_history(cls, history: History, params: CheckParams | None = None) -> CheckContext:
        """Everything from the history itself; ``params`` overrides the recorded ones."""
        chosen = params or params_from_history(history) or CheckParams()
        return cls(history, snapshots_from_history(history), audit_from_history(history), chosen)

    # -- history ----------------------------------------------------------------
    @cached_property
    def records(self) -> tuple[Record, ...]:
        return self.history.records

    @cached_property
    def _completions(self) -> dict[int, Record]:
        return {
            r.ref: r for r in self.records if r.type in ("ok", "fail", "info") and r.ref is not None
        }

    def _invokes(self, op: str) -> Iterator[tuple[Record, Record | None]]:
        done = self._completions
        for rec in self.records:
            if rec.type == "invoke" and rec.op == op:
                yield rec, done.get(rec.index)

    @cached_property
    def client_runs(self) -> list[ClientRun]:
        return [_client_run(i, d) for i, d in self._invokes(OP_START_RUN)]

    @cached_property
    def client_by_agent(self) -> dict[str, list[ClientRun]]:
        out: dict[str, list[ClientRun]] = {}
        for run in self.client_runs:
            out.setdefault(run.agent_id, []).append(run)
        return out

    @cached_property
    def client_by_run_id(self) -> dict[str, ClientRun]:
        return {r.run_id: r for r in self.client_runs if r.run_id is not None}

    @cached_property
    def cancels(self) -> list[CancelCall]:
        return [_cancel_call(i, d) for i, d in self._invokes(OP_CANCEL)]

    @cached_property
    def cancels_by_agent(self) -> dict[str, list[CancelCall]]:
        out: dict[str, list[CancelCall]] = {}
        for call in self.cancels:
            out.setdefault(call.agent_id, []).append(call)
        return out

    def notes(self, op: str) -> list[Record]:
        return [r for r in self.records if r.type == "note" and r.op == op]

    @cached_property
    def records_by_key(self) -> dict[str, list[Record]]:
        out: dict[str, list[Record]] = {}
        for rec in self.records:
            key = note_key(rec) if rec.type == "note" else rec.key
            if key is not None:
                out.setdefault(key, []).append(rec)
        return out

    def excerpt(self, key: str, limit: int = 12) -> list[dict[str, Any]]:
        """The history lines about one agent (or circuit), compact, for a verdict's evidence."""
        lines = []
        for rec in self.records_by_key.get(key, [])[:limit]:
            data = {k: v for k, v in rec.data.items() if k != "events"}
            lines.append(
                {
                    "i": rec.index,
                    "type": rec.type,
                    "op": rec.op,
                    "mono": round(rec.mono, 3),
                    "data": data,
                }
            )
        return lines

    @cached_property
    def live_probes(self) -> dict[str, list[Record]]:
        """Liveness evidence by run id: ``live_probe`` notes, and the completions of the
        driver's ``run_status`` polls (same ``run_id``/``replica_id``/``live`` fields)."""
        out: dict[str, list[Record]] = {}
        for rec in self.records:
            is_note = rec.type == "note" and rec.op == NOTE_LIVE_PROBE
            is_poll = rec.type == "ok" and rec.op == OP_RUN_STATUS
            if (is_note or is_poll) and rec.data.get("run_id") is not None:
                out.setdefault(str(rec.data["run_id"]), []).append(rec)
        return out

    @cached_property
    def done_event_run_ids(self) -> set[str] | None:
        """Runs with a ``done`` row in the database's events table; ``None`` if never read."""
        notes = self.notes(NOTE_DONE_EVENTS)
        if not notes:
            return None
        return {str(x) for n in notes for x in n.data.get("run_ids", ())}

    @cached_property
    def circuit_outputs(self) -> dict[tuple[str, str | None], dict[str, Any]]:
        """Outputs read back, by (circuit id, user id); the last read of a circuit wins.

        A circuit's memory keys live in its user's scope, so (circuit, user) names one
        circuit instance even when circuit ids are reused by later waves.
        """
        out: dict[tuple[str, str | None], dict[str, Any]] = {}
        for rec in self.notes(NOTE_CIRCUIT_OUTPUTS):
            key = note_key(rec)
            if key is not None:
                out[(key, _opt_str(rec.data.get("user_id")))] = dict(rec.data.get("outputs") or {})
        return out

    def outputs_of(self, circuit: str, user_id: str | None) -> dict[str, Any] | None:
        found = self.circuit_outputs.get((circuit, user_id))
        return found if found is not None else self.circuit_outputs.get((circuit, None))

    # -- clocks -----------------------------------------------------------------
    @cached_property
    def wall_minus_mono(self) -> float:
        """Offset between the two clocks, to place database (wall) times on the mono axis."""
        for snap in self.snapshots:
            return snap.wall - snap.mono
        for rec in self.records:
            return rec.wall - rec.mono
        return 0.0

    def to_mono(self, wall: float) -> float:
        return wall - self.wall_minus_mono

    # -- faults -----------------------------------------------------------------
    @cached_property
    def fault_windows(self) -> list[FaultWindow]:
        return self.history.fault_windows()

    @cached_property
    def known_replicas(self) -> frozenset[str]:
        ids = set(self.params.replica_ids)
        for snap in self.snapshots:
            ids.update(r.replica_id for r in snap.replicas)
        for row in self.final_runs.values():
            if row.replica_id:
                ids.add(row.replica_id)
        return frozenset(ids)

    @staticmethod
    def fault_replica(window: FaultWindow) -> str:
        """The replica a fault hits: its target, or ``data["replica"]`` for a link fault."""
        replica = window.data.get("replica")
        return str(replica) if replica else window.target

    @cached_property
    def faults_by_replica(self) -> dict[str, list[FaultWindow]]:
        out: dict[str, list[FaultWindow]] = {}
        for w in self.fault_windows:
            out.setdefault(self.fault_replica(w), []).append(w)
        return out

    @cached_property
    def global_faults(self) -> list[FaultWindow]:
        """Faults on something other than a replica (Postgres, the load balancer)."""
        known = self.known_replicas
        return [w for w in self.fault_windows if self.fault_replica(w) not in known]

    def faults_touching(
        self, replicas: Iterable[str | None], lo: float, hi: float, margin: float = 0.0
    ) -> list[FaultWindow]:
        """Fault windows (mono) on these replicas or cluster-wide that overlap [lo, hi]."""
        found: list[FaultWindow] = []
        candidates = list(self.global_faults)
        for rid in {r for r in replicas if r}:
            candidates.extend(self.faults_by_replica.get(rid, ()))
        for w in candidates:
            end = float("inf") if w.end is None else w.end
            if w.start - margin <= hi and end + margin >= lo:
                found.append(w)
        return found

    # -- database ---------------------------------------------------------------
    def in_scope(self, agent_or_user_id: str | None) -> bool:
        prefix = self.params.test_prefix
        return not prefix or (agent_or_user_id or "").startswith(prefix)

    def run_in_scope(self, agent_id: str | None, user_id: str | None) -> bool:
        """A run is the test's when its agent id or its user id carries the test prefix
        (the adapter reads the same set; circuit agent ids end with the wave prefix)."""
        return self.in_scope(agent_id) or self.in_scope(user_id)

    @cached_property
    def final_snapshot(self) -> Snapshot | None:
        return self.snapshots[-1] if self.snapshots else None

    @cached_property
    def final_runs(self) -> dict[str, RunRow]:
        """Run rows of the final snapshot under the test prefix, by run id."""
        snap = self.final_snapshot
        if snap is None:
            return {}
        return {r.run_id: r for r in snap.runs if self.run_in_scope(r.agent_id, r.user_id)}

    @cached_property
    def final_by_agent(self) -> dict[str, list[RunRow]]:
        out: dict[str, list[RunRow]] = {}
        for row in self.final_runs.values():
            out.setdefault(row.agent_id, []).append(row)
        return out

    def row_for(self, run: ClientRun) -> RunRow | None:
        """The final database row of the run a client started (by run id, else agent id)."""
        if run.run_id is not None:
            return self.final_runs.get(run.run_id)
        rows = self.final_by_agent.get(run.agent_id, [])
        return rows[0] if len(rows) == 1 else None

    @cached_property
    def first_terminal_wall(self) -> dict[str, float]:
        """The wall time of the first snapshot that shows each run terminal."""
        out: dict[str, float] = {}
        for snap in self.snapshots:
            for row in snap.runs:
                if row.status in TERMINAL and row.run_id not in out:
                    out[row.run_id] = snap.wall
        return out

    @cached_property
    def audit_by_table(self) -> dict[str, dict[str, list[AuditRow]]]:
        out: dict[str, dict[str, list[AuditRow]]] = {}
        for row in self.audit:
            out.setdefault(row.table, {}).setdefault(row.key, []).append(row)
        return out

    def audit_rows(self, table: str, key: str) -> list[AuditRow]:
        return self.audit_by_table.get(table, {}).get(key, [])

    def terminal_transition_wall(self, run_id: str) -> tuple[float, str] | None:
        """When the database ended a run, and how we know: audit log, completed_at, snapshot."""
        for row in self.audit_rows("runs", run_id):
            new_status = (row.new or {}).get("status")
            if row.action != "delete" and new_status in TERMINAL:
                return row.at, "audit"
        final = self.final_runs.get(run_id)
        if final is not None and final.terminal and final.completed_at is not None:
            return final.completed_at, "completed_at"
        seen = self.first_terminal_wall.get(run_id)
        return None if seen is None else (seen, "snapshot")
