"""A builder for hand-written scenario histories with exact times.

Checker tests write the few records a case needs (a run, a cancel, a kill, a
snapshot) on one clock: ``mono`` seconds as given, ``wall = mono + WALL0``
for database times.  Database rows are written with mono times and converted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from chaos.checks.context import CheckContext
from chaos.checks.params import CheckParams, record_params
from chaos.record.history import History, Outcome, Record
from chaos.record.readers import (
    record_audit,
    record_circuit_outputs,
    record_done_events,
    record_live_probe,
    record_snapshot,
)
from chaos.record.vocabulary import AuditRow, QuotaRow, ReplicaRow, RunRow, Snapshot

WALL0 = 1_700_000_000.0
DEFAULT_REPLICAS = ("r1", "r2", "r3")


class HistoryBench:
    """Append records at chosen times; :meth:`context` hands the result to the checkers."""

    def __init__(self, params: CheckParams | None = None, *, prefix: str = "t1") -> None:
        self.params = params or CheckParams(test_prefix=prefix, replica_ids=DEFAULT_REPLICAS)
        self._now = 0.0
        self.history = History(
            seed=7, clock=lambda: self._now, wall_clock=lambda: self._now + WALL0
        )
        self._run_counter = 0

    @staticmethod
    def wall(mono: float) -> float:
        return mono + WALL0

    def at(self, mono: float) -> HistoryBench:
        self._now = mono
        return self

    # -- client operations -------------------------------------------------------------
    def run(
        self,
        agent_id: str,
        *,
        start: float,
        end: float | None,
        outcome: Outcome = "ok",
        user_id: str | None = None,
        via: str = "lb",
        run_id: str | None = "auto",
        replica_id: str | None = "r1",
        stop_reason: str | None = "end_turn",
        events: Iterable[str] | None = None,
        circuit: str | None = None,
        admitted: float | None = None,
        **extra: Any,
    ) -> str | None:
        """A ``start_run`` invoke and (unless ``end`` is None) its completion; the run id."""
        if run_id == "auto":
            self._run_counter += 1
            run_id = f"r_{self._run_counter:04x}"
        invoke_data: dict[str, Any] = {"user_id": user_id, "agent": "chaos", "via": via}
        if circuit is not None:
            invoke_data["circuit"] = circuit
        inv = self.at(start).history.invoke("start_run", "w0", agent_id, **invoke_data)
        if end is None:
            return run_id
        data: dict[str, Any] = dict(extra)
        if outcome != "fail":
            data["run_id"] = run_id
            data["replica_id"] = replica_id
            if events is None:
                events = ["session", "agent", "done"] if outcome == "ok" else ["session", "agent"]
            # Frames arrive once the target admitted the run (at start unless told).
            first = start if admitted is None else admitted
            data["events"] = [{"type": e, "mono": first} for e in events]
            if outcome == "ok" and stop_reason is not None and "error" not in events:
                data["stop_reason"] = stop_reason
        self.at(end).history.complete(inv, outcome, **data)
        return run_id if outcome != "fail" else None

    def cancel(
        self,
        agent_id: str,
        *,
        start: float,
        end: float | None,
        via: str = "r2",
        reason: str | None = "chaos",
        classification: str | None = "acknowledged",
        cancelled: bool | None = True,
        outcome: Outcome = "ok",
        response_reason: str | None = "same",
        status: str | None = None,
    ) -> None:
        inv = self.at(start).history.invoke("cancel", "canceller", agent_id, via=via, reason=reason)
        if end is None:
            return
        data: dict[str, Any] = {"cancelled": cancelled, "status": status}
        data["reason"] = reason if response_reason == "same" else response_reason
        if classification is not None:
            data["classification"] = classification
        self.at(end).history.complete(inv, outcome, **data)

    def fault(
        self, name: str, target: str, *, start: float, end: float | None = None, **data: Any
    ) -> None:
        """A fault window: inject at ``start``, proven effect, healed at ``end`` (None: never)."""
        inject = self.at(start).history.fault("inject", name, target, **data)
        self.at(start + 0.01).history.fault("effect", name, target, inject)
        if end is not None:
            self.at(end).history.fault("healed", name, target, inject)

    # -- database -------------------------------------------------------------------------
    def row(
        self,
        agent_id: str,
        run_id: str | None,
        *,
        status: str = "completed",
        replica_id: str | None = "r1",
        user_id: str | None = None,
        stop_reason: str | None = "auto",
        error: str | None = None,
        started: float = 0.0,
        completed: float | None = None,
        heartbeat: float | None = None,
    ) -> RunRow:
        """A run row; times in mono seconds.  ``stop_reason="auto"`` is end_turn if completed."""
        if stop_reason == "auto":
            stop_reason = "end_turn" if status == "completed" else None
        return RunRow(
            run_id=run_id or f"r_db_{agent_id}",
            agent_id=agent_id,
            user_id=user_id,
            replica_id=replica_id,
            status=status,
            stop_reason=stop_reason,
            error=error,
            started_at=self.wall(started),
            completed_at=None if completed is None else self.wall(completed),
            last_heartbeat_at=self.wall(started if heartbeat is None else heartbeat),
        )

    def snapshot(
        self,
        mono: float,
        runs: Iterable[RunRow] = (),
        *,
        replicas: Iterable[str | ReplicaRow] = DEFAULT_REPLICAS,
        quotas: Mapping[str, int] | None = None,
    ) -> Snapshot:
        reps = tuple(
            r if isinstance(r, ReplicaRow) else ReplicaRow(r, WALL0, self.wall(mono))
            for r in replicas
        )
        snap = Snapshot(
            mono=mono,
            wall=self.wall(mono),
            runs=tuple(runs),
            replicas=reps,
            quotas=tuple(QuotaRow(u, n) for u, n in (quotas or {}).items()),
        )
        record_snapshot(self.at(mono).history, snap)
        return snap

    def audit(self, rows: Iterable[AuditRow]) -> Record:
        return record_audit(self.history, rows)

    def live_probe(
        self,
        mono: float,
        row: RunRow,
        *,
        live: bool = True,
        replica_id: str | None = None,
        error: str | None = None,
    ) -> Record:
        return record_live_probe(
            self.at(mono).history,
            agent_id=row.agent_id,
            run_id=row.run_id,
            replica_id=replica_id or row.replica_id or "",
            live=live,
            status=row.status,
            error=error,
        )

    def done_events(self, run_ids: Iterable[str]) -> Record:
        return record_done_events(self.history, run_ids)

    def circuit_outputs(
        self, circuit_id: str, outputs: Mapping[str, Any], user_id: str | None = None
    ) -> Record:
        return record_circuit_outputs(self.history, circuit_id, user_id, outputs)

    def context(self, params: CheckParams | None = None) -> CheckContext:
        """Record the params (as a real scenario does) and build the checkers' context."""
        record_params(self.history, params or self.params)
        return CheckContext.from_history(self.history)
