"""What the live cluster should look like, as the machine's rules left it: a pure model.

The model knows which replicas are up, killed (and whether the survivors
reaped them yet), gracefully stopped or frozen; whether the replicas
sweeper's advisory lock is held; which runs the example started, for whom,
and through where; and, for each run, the latest moment by which it must
have stopped ``running`` when a rule made its end certain:

* its owner was SIGKILLed: the survivors mark it failed within the reap
  bound (stale threshold + one sweep + the checkers' margin) of the kill;
* while the sweeper's lock is held, no survivor wins a sweep round
  (replicas_sweeper.go:123-130, advisory_lock.go:69-76): a killed owner's
  runs have no deadline, and a run or row that was there when the lock was
  taken must still be there; once released, the reap follows within
  ``max(kill + reap bound, release + one sweep + margin)``;
* a cancel of it was acknowledged by its owner: the owner has cancelled the
  run, so its terminal write follows within :data:`ACK_END_S`.

A replica's Postgres link cut briefly (between two of its heartbeat ticks,
while it owns no running run: ``rules_links.py``) changes nothing the model
judges: its row is never stale, so it is never reaped, and no run of it ends
inside the cut.  The model records the cut and, like after every rule,
requires every replica it believes up to have its row.

:meth:`LiveModel.problems` compares one database snapshot with all of that:
a run still running past its deadline, a user holding more slots than the
cap, a terminal row that changed, a reap while the lock was held, an up
replica without its row.  Only deadlines already past are judged, so the
check honours every convergence bound; the full checkers judge the whole
history at the end of the example.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from chaos.record.vocabulary import RunRow, Snapshot

ReplicaStatus = Literal["up", "killed", "reaped", "stopped", "frozen"]

#: After the owner acknowledged a cancel, the run's row leaves ``running`` within this.
#: The ack means the owner cancelled the run's context; what remains is the loop
#: unwinding and one write, which take well under a second on a healthy cluster.
ACK_END_S = 15.0
#: Deadline causes (a run keeps the earliest deadline of all its causes).
CAUSE_ACK = "its cancel was acknowledged"
#: A killed owner's deadline is kept apart: the sweeper's lock suspends and moves it.
CAUSE_REAP = "reap"


@dataclass
class ReplicaState:
    status: ReplicaStatus = "up"
    since: float = 0.0


@dataclass
class ModelRun:
    """A run the example asked for, and by when (monotonic) it must have ended, per cause."""

    agent_id: str
    user_id: str
    via: str
    deadlines: dict[str, tuple[float, str]] = field(default_factory=dict)

    @property
    def must_end_by(self) -> float | None:
        """The earliest deadline of any cause; None while the run may go on running."""
        return min((by for by, _ in self.deadlines.values()), default=None)

    @property
    def why(self) -> str | None:
        if not self.deadlines:
            return None
        return min(self.deadlines.values())[1]


@dataclass(frozen=True)
class Kill:
    """A SIGKILL the model remembers until the survivors reaped the replica."""

    at: float
    owned: tuple[str, ...]


@dataclass
class LockHold:
    """The sweeper's lock taken at ``since``, and what no sweep may touch while it is held."""

    since: float
    #: Agent ids of runs owned by a killed replica, running when the lock was taken (or
    #: when their owner was killed under it): none may be reaped.
    running: set[str]
    #: Killed replicas whose row was there then: it must stay.
    rows: set[str]


@dataclass(frozen=True)
class LinkCut:
    replica_id: str
    began: float
    ended: float


@dataclass
class LiveModel:
    replica_ids: tuple[str, ...]
    per_user_cap: int
    #: Kill -> the dead owner's runs reaped: stale threshold + sweep + margin.
    reap_bound_s: float
    #: Lock released -> a stale row reaped: one sweep + margin.
    release_bound_s: float = 15.0
    #: The stop reason the replicas sweeper writes (the target's ``replica_died`` word).
    replica_died: str = "replica_died"
    #: Judge that every up replica has its row (off for snapshots without replica rows).
    judge_replica_rows: bool = False
    replicas: dict[str, ReplicaState] = field(default_factory=dict)
    runs: dict[str, ModelRun] = field(default_factory=dict)
    #: run id -> (status, stop_reason) the first time a snapshot showed it terminal.
    terminal_seen: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    kills: dict[str, Kill] = field(default_factory=dict)
    lock: LockHold | None = None
    cuts: list[LinkCut] = field(default_factory=list)

    def __post_init__(self) -> None:
        for rid in self.replica_ids:
            self.replicas.setdefault(rid, ReplicaState())

    # -- replicas -----------------------------------------------------------------
    def status(self, replica_id: str) -> ReplicaStatus:
        return self.replicas[replica_id].status

    def up(self) -> list[str]:
        return [r for r in self.replica_ids if self.status(r) == "up"]

    def down(self) -> list[str]:
        """Replicas a rule took out (killed, reaped, stopped or frozen)."""
        return [r for r in self.replica_ids if self.status(r) != "up"]

    def may_take_down(self, replica_id: str) -> bool:
        """One replica out at a time: the others keep the cluster and its probes answering."""
        return self.status(replica_id) == "up" and not self.down()

    def _set(self, replica_id: str, status: ReplicaStatus, now: float) -> None:
        self.replicas[replica_id] = ReplicaState(status, now)

    def killed(self, replica_id: str, now: float, owned: Iterable[str]) -> None:
        """SIGKILL: every run it owned must be reaped within the reap bound (suspended while
        the sweeper's lock is held)."""
        self._set(replica_id, "killed", now)
        self.kills[replica_id] = Kill(now, tuple(owned))
        if self.lock is None:
            self._reap_deadlines(replica_id, now + self.reap_bound_s)
        else:  # a live replica has its row, and its runs were running: none may be reaped
            self.lock.rows.add(replica_id)
            self.lock.running.update(owned)

    def _reap_deadlines(self, replica_id: str, by: float) -> None:
        for agent_id in self.kills[replica_id].owned:
            run = self.runs.get(agent_id)
            if run is not None:
                run.deadlines[CAUSE_REAP] = (by, f"owner {replica_id} killed")

    def reaped(self, replica_id: str, now: float) -> None:
        if self.status(replica_id) != "killed":
            raise ValueError(f"{replica_id} is {self.status(replica_id)}, not killed")
        if self.lock is not None:
            raise ValueError(f"{replica_id} cannot be reaped: the sweeper's lock is held")
        self._set(replica_id, "reaped", now)
        self.kills.pop(replica_id, None)

    def stopped(self, replica_id: str, now: float) -> None:
        self._set(replica_id, "stopped", now)

    def frozen(self, replica_id: str, now: float) -> None:
        self._set(replica_id, "frozen", now)

    def may_restart(self, replica_id: str) -> bool:
        """A killed replica comes back only once reaped: restarted earlier under the same id
        it heartbeats its old row again, and its dead runs wait for the per-run sweeper."""
        return self.status(replica_id) in ("reaped", "stopped", "frozen")

    def restarted(self, replica_id: str, now: float) -> None:
        if not self.may_restart(replica_id):
            raise ValueError(f"{replica_id} is {self.status(replica_id)}: not restartable")
        self._set(replica_id, "up", now)

    def link_cut(self, replica_id: str, began: float, ended: float) -> None:
        """Its Postgres link was cut from ``began`` to ``ended`` (see the module docstring)."""
        if self.status(replica_id) != "up":
            raise ValueError(f"{replica_id} is {self.status(replica_id)}: only an up one is cut")
        self.cuts.append(LinkCut(replica_id, began, ended))

    # -- the sweeper's lock ---------------------------------------------------------------
    @property
    def lock_held(self) -> bool:
        return self.lock is not None

    def sweeper_held(self, now: float, snap: Snapshot) -> None:
        """The lock is ours from ``now``; ``snap`` was taken after it was granted."""
        if self.lock is not None:
            raise ValueError("the sweeper's lock is already held")
        dead = set(self.kills)
        running = {r.agent_id for r in snap.runs if r.status == "running" and r.replica_id in dead}
        rows = {r.replica_id for r in snap.replicas if r.replica_id in dead}
        self.lock = LockHold(now, running, rows)
        for run in self.runs.values():
            run.deadlines.pop(CAUSE_REAP, None)

    def sweeper_released(self, now: float) -> None:
        """No reap happened while held; from ``now`` the reaps are due again."""
        if self.lock is None:
            raise ValueError("the sweeper's lock is not held")
        self.lock = None
        for replica_id, kill in self.kills.items():
            by = max(kill.at + self.reap_bound_s, now + self.release_bound_s)
            self._reap_deadlines(replica_id, by)

    # -- runs ---------------------------------------------------------------------
    def started(self, agent_id: str, user_id: str, via: str) -> None:
        if agent_id in self.runs:
            raise ValueError(f"agent id {agent_id} started twice")
        self.runs[agent_id] = ModelRun(agent_id, user_id, via)

    def must_end(self, agent_id: str, by: float, why: str) -> None:
        """Tighten ``agent_id``'s deadline for ``why`` (an earlier one stays)."""
        run = self.runs.get(agent_id)
        if run is None:
            return  # not this example's run
        old = run.deadlines.get(why)
        if old is None or by < old[0]:
            run.deadlines[why] = (by, why)

    def cancel_acknowledged(self, agent_id: str, now: float) -> None:
        self.must_end(agent_id, now + ACK_END_S, CAUSE_ACK)

    def pick(self, index: int) -> ModelRun | None:
        """The run a rule's drawn index names (modulo the runs started so far)."""
        if not self.runs:
            return None
        return list(self.runs.values())[index % len(self.runs)]

    def unsettled(self, snap: Snapshot, agents: Iterable[str], ended: Iterable[str]) -> list[str]:
        """Of ``agents`` just started, those whose row may still come soon: no row yet, the
        start call not ended, and their user holding fewer live rows than the cap.  A
        user at the cap has the rest waiting for a slot (the client-side gate, or the
        target's refusal retried): their rows come when runs end, not by waiting here."""
        with_rows = {r.agent_id for r in snap.runs}
        done = set(ended)
        live: dict[str, int] = {}
        for row in snap.runs:
            if not row.terminal and row.user_id is not None:
                live[row.user_id] = live.get(row.user_id, 0) + 1
        return [
            a
            for a in agents
            if a not in with_rows
            and a not in done
            and live.get(self.runs[a].user_id, 0) < self.per_user_cap
        ]

    # -- the per-step invariant ---------------------------------------------------------
    def problems(self, snap: Snapshot, now: float) -> list[str]:
        """What ``snap`` (taken at monotonic ``now``) shows that the model rules out."""
        found: list[str] = []
        rows = [r for r in snap.runs if r.agent_id in self.runs]
        for row in rows:
            run = self.runs[row.agent_id]
            deadline = run.must_end_by
            if row.status == "running" and deadline is not None and now > deadline:
                found.append(
                    f"{row.agent_id} ({row.run_id}) still running on {row.replica_id!r} "
                    f"{now - deadline:.1f}s past its deadline ({run.why})"
                )
            found.extend(self._terminal_flip(row))
        found.extend(self._lock_problems(snap))
        found.extend(self._row_problems(snap))
        users = {r.user_id for r in self.runs.values()}
        for quota in snap.quotas:
            if quota.user_id in users and quota.active_count > self.per_user_cap:
                found.append(
                    f"user {quota.user_id} holds {quota.active_count} slots, "
                    f"above the cap of {self.per_user_cap}"
                )
        return found

    def _lock_problems(self, snap: Snapshot) -> list[str]:
        if self.lock is None:
            return []
        found = [
            f"{r.agent_id} ({r.run_id}) reaped on {r.replica_id!r} while the sweeper's lock "
            f"was held: {r.status}/{r.stop_reason}"
            for r in snap.runs
            if r.agent_id in self.lock.running
            and r.status != "running"
            and r.stop_reason == self.replica_died
        ]
        present = {r.replica_id for r in snap.replicas}
        found += [
            f"killed {rid}'s row was deleted while the sweeper's lock was held"
            for rid in sorted(self.lock.rows - present)
            if rid in self.kills
        ]
        return found

    def _row_problems(self, snap: Snapshot) -> list[str]:
        if not self.judge_replica_rows:
            return []
        present = {r.replica_id for r in snap.replicas}
        return [
            f"{rid} is up but has no row in replicas (reaped while alive?)"
            for rid in self.up()
            if rid not in present
        ]

    def _terminal_flip(self, row: RunRow) -> list[str]:
        seen = self.terminal_seen.get(row.run_id)
        if seen is None:
            if row.terminal:
                self.terminal_seen[row.run_id] = (row.status, row.stop_reason)
            return []
        if (row.status, row.stop_reason) != seen:
            return [
                f"{row.agent_id} ({row.run_id}) was {seen[0]}/{seen[1]}, "
                f"now {row.status}/{row.stop_reason}: a terminal row changed"
            ]
        return []


def replica_for(choice: str, owner: str | None, up: Sequence[str], order: Sequence[str]) -> str:
    """The replica a rule's ``choice`` names, among those ``up``.

    ``owner`` / ``non_owner`` (the first up replica that is not the owner) /
    a replica id; a choice that names no up replica falls to the next up one
    in ``order`` from it, so a printed program replays the same calls.
    """
    if not up:
        raise ValueError("no replica is up")
    if choice == "owner" and owner is not None and owner in up:
        return owner
    if choice == "non_owner":
        others = [r for r in up if r != owner]
        if others:
            return others[0]
    if choice in up:
        return choice
    start = list(order).index(choice) if choice in order else 0
    ordered = [*order[start:], *order[:start]]
    return next(r for r in ordered if r in up)
