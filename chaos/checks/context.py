"""What every checker reads: the history, database snapshots, the audit log, the bounds.

The history's facts (:mod:`chaos.checks.facts`) are gathered in one pass, from
records in memory or from a history file.  :class:`CheckContext` also builds,
once and lazily, the indexes the checkers share (runs by agent id and run id,
cancels, fault windows by replica), so a checker never scans the whole history
inside a loop: every checker stays O(n log n) in the number of runs.

Nothing here imports the target adapter, the cluster or Docker: a saved
history is all a re-check needs (see :mod:`chaos.record.readers`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from operator import attrgetter
from typing import Any

from chaos.checks.facts import CancelCall, ClientRun, HistoryFacts, gather
from chaos.checks.grouped import Grouped
from chaos.checks.params import CheckParams, params_from_history, record_params
from chaos.record.history import FaultWindow, History, Record
from chaos.record.readers import (
    audit_from_history,
    record_audit,
    record_snapshot,
    snapshots_from_history,
)
from chaos.record.vocabulary import TERMINAL, AuditRow, RunRow, Snapshot

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


@dataclass(frozen=True, eq=False)
class CheckContext:
    """The inputs of every checker: the facts of one history and the bounds to judge by.

    Build with :meth:`from_history` (records in memory) or
    :func:`chaos.checks.streamed.context_from_path` (a history file, read once).
    """

    facts: HistoryFacts
    params: CheckParams = field(default_factory=CheckParams)
    #: The in-memory history, when the context was built from one.
    history: History | None = None

    @classmethod
    def from_history(cls, history: History, params: CheckParams | None = None) -> CheckContext:
        """Everything from the history itself; ``params`` overrides the recorded ones."""
        facts = gather(history.records)
        return cls(facts, params or facts.recorded_params() or CheckParams(), history)

    # -- history ----------------------------------------------------------------
    @property
    def snapshots(self) -> list[Snapshot]:
        """Every database snapshot, oldest first."""
        return self.facts.snapshots

    @property
    def audit(self) -> list[AuditRow]:
        """Every audit row, de-duplicated by ``seq``, in commit order."""
        return self.facts.audit

    @property
    def client_runs(self) -> list[ClientRun]:
        return self.facts.client_runs

    @cached_property
    def client_by_agent(self) -> Grouped[ClientRun]:
        return Grouped(self.client_runs, attrgetter("agent_id"))

    @cached_property
    def client_by_run_id(self) -> dict[str, ClientRun]:
        return {r.run_id: r for r in self.client_runs if r.run_id is not None}

    @property
    def cancels(self) -> list[CancelCall]:
        return self.facts.cancels

    @cached_property
    def cancels_by_agent(self) -> Grouped[CancelCall]:
        return Grouped(self.cancels, attrgetter("agent_id"))

    def excerpt(self, key: str, limit: int = 12) -> list[dict[str, Any]]:
        """The history lines about one agent (or circuit), compact, for a verdict's evidence."""
        lines = []
        for rec in self.facts.excerpt_records(key, limit):
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

    @property
    def live_probes(self) -> dict[str, list[Record]]:
        """Liveness evidence by run id: ``live_probe`` notes, and the completions of the
        driver's ``run_status`` polls (same ``run_id``/``replica_id``/``live`` fields)."""
        return self.facts.live_probes

    @property
    def done_event_run_ids(self) -> set[str] | None:
        """Runs with a ``done`` row in the database's events table; ``None`` if never read."""
        return self.facts.done_event_run_ids

    @property
    def circuit_outputs(self) -> dict[tuple[str, str | None], dict[str, Any]]:
        """Outputs read back, by (circuit id, user id); the last read of a circuit wins.

        A circuit's memory keys live in its user's scope, so (circuit, user) names one
        circuit instance even when circuit ids are reused by later waves.
        """
        return self.facts.circuit_outputs

    def outputs_of(self, circuit: str, user_id: str | None) -> dict[str, Any] | None:
        found = self.circuit_outputs.get((circuit, user_id))
        return found if found is not None else self.circuit_outputs.get((circuit, None))

    # -- clocks -----------------------------------------------------------------
    @cached_property
    def wall_minus_mono(self) -> float:
        """Offset between the two clocks, to place database (wall) times on the mono axis."""
        for snap in self.snapshots:
            return snap.wall - snap.mono
        first = self.facts.first_clocks
        return 0.0 if first is None else first[0] - first[1]

    def to_mono(self, wall: float) -> float:
        return wall - self.wall_minus_mono

    # -- faults -----------------------------------------------------------------
    @property
    def fault_windows(self) -> list[FaultWindow]:
        return self.facts.fault_windows

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
        prefix = self.params.test_prefix
        if not prefix:
            return {r.run_id: r for r in snap.runs}
        # run_in_scope, spelled out: a soak's final snapshot is a million rows
        return {
            r.run_id: r
            for r in snap.runs
            if (r.agent_id or "").startswith(prefix) or (r.user_id or "").startswith(prefix)
        }

    @cached_property
    def final_by_agent(self) -> Grouped[RunRow]:
        return Grouped(self.final_runs.values(), attrgetter("agent_id"))

    def row_for(self, run: ClientRun) -> RunRow | None:
        """The final database row of the run a client started (by run id, else agent id)."""
        if run.run_id is not None:
            return self.final_runs.get(run.run_id)
        by_agent = self.final_by_agent
        return by_agent[run.agent_id][0] if by_agent.count(run.agent_id) == 1 else None

    @cached_property
    def client_rows(self) -> list[RunRow | None]:
        """:meth:`row_for` of every client run, in :attr:`client_runs` order.  Four checkers
        walk every run with its row: on a soak each lookup in a million-key dict misses
        the cache, so it is made once here."""
        final = self.final_runs
        return [
            final.get(run.run_id) if run.run_id is not None else self.row_for(run)
            for run in self.client_runs
        ]

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

    @cached_property
    def _audit_tables(self) -> dict[str, dict[str, list[AuditRow]]]:
        """:attr:`audit_by_table`, one table at a time as :meth:`audit_rows` asks: a
        replica's few rows need not group a soak's million run rows."""
        return {}

    def audit_rows(self, table: str, key: str) -> list[AuditRow]:
        index = self._audit_tables.get(table)
        if index is None:
            index = {}
            for row in self.audit:
                if row.table == table:
                    index.setdefault(row.key, []).append(row)
            self._audit_tables[table] = index
        return index.get(key, [])

    @cached_property
    def audit_terminal_wall(self) -> dict[str, float]:
        """By run id, when the first audit row (not a delete) shows the run terminal."""
        out: dict[str, float] = {}
        for row in self.audit:
            if row.table != "runs" or row.key in out:
                continue
            new_status = (row.new or {}).get("status")
            if row.action != "delete" and new_status in TERMINAL:
                out[row.key] = row.at
        return out

    def terminal_transition_wall(self, run_id: str) -> tuple[float, str] | None:
        """When the database ended a run, and how we know: audit log, completed_at, snapshot."""
        audited = self.audit_terminal_wall.get(run_id)
        if audited is not None:
            return audited, "audit"
        final = self.final_runs.get(run_id)
        if final is not None and final.terminal and final.completed_at is not None:
            return final.completed_at, "completed_at"
        seen = self.first_terminal_wall.get(run_id)
        return None if seen is None else (seen, "snapshot")
