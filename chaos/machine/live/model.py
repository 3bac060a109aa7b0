"""What the live cluster should look like, as the machine's rules left it: a pure model.

The model knows which replicas are up, killed (and whether the survivors
reaped them yet), gracefully stopped or frozen; which runs the example
started, for whom, and through where; and, for each run, the latest moment
by which it must have stopped ``running`` when a rule made its end certain:

* its owner was SIGKILLed: the survivors mark it failed within the reap
  bound (stale threshold + one sweep + the checkers' margin) of the kill;
* a cancel of it was acknowledged by its owner: the owner has cancelled the
  run, so its terminal write follows within :data:`ACK_END_S`.

:meth:`LiveModel.problems` compares one database snapshot with all of that:
a run still running past its deadline, a user holding more slots than the
cap, a terminal row that changed.  Only deadlines already past are judged,
so the check honours every convergence bound; the full checkers judge the
whole history at the end of the example.
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


@dataclass
class ReplicaState:
    status: ReplicaStatus = "up"
    since: float = 0.0


@dataclass
class ModelRun:
    """A run the example asked for; ``must_end_by`` is monotonic, None while it may run."""

    agent_id: str
    user_id: str
    via: str
    must_end_by: float | None = None
    why: str | None = None


@dataclass
class LiveModel:
    replica_ids: tuple[str, ...]
    per_user_cap: int
    #: Kill -> the dead owner's runs reaped: stale threshold + sweep + margin.
    reap_bound_s: float
    replicas: dict[str, ReplicaState] = field(default_factory=dict)
    runs: dict[str, ModelRun] = field(default_factory=dict)
    #: run id -> (status, stop_reason) the first time a snapshot showed it terminal.
    terminal_seen: dict[str, tuple[str, str | None]] = field(default_factory=dict)

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
        """SIGKILL: every run it owned must be reaped within the reap bound."""
        self._set(replica_id, "killed", now)
        for agent_id in owned:
            self.must_end(agent_id, now + self.reap_bound_s, f"owner {replica_id} killed")

    def reaped(self, replica_id: str, now: float) -> None:
        if self.status(replica_id) != "killed":
            raise ValueError(f"{replica_id} is {self.status(replica_id)}, not killed")
        self._set(replica_id, "reaped", now)

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

    # -- runs ---------------------------------------------------------------------
    def started(self, agent_id: str, user_id: str, via: str) -> None:
        if agent_id in self.runs:
            raise ValueError(f"agent id {agent_id} started twice")
        self.runs[agent_id] = ModelRun(agent_id, user_id, via)

    def must_end(self, agent_id: str, by: float, why: str) -> None:
        """Tighten ``agent_id``'s deadline (an earlier one stays)."""
        run = self.runs.get(agent_id)
        if run is None:
            return  # not this example's run
        if run.must_end_by is None or by < run.must_end_by:
            run.must_end_by, run.why = by, why

    def cancel_acknowledged(self, agent_id: str, now: float) -> None:
        self.must_end(agent_id, now + ACK_END_S, "its cancel was acknowledged")

    def pick(self, index: int) -> ModelRun | None:
        """The run a rule's drawn index names (modulo the runs started so far)."""
        if not self.runs:
            return None
        return list(self.runs.values())[index % len(self.runs)]

    # -- the per-step invariant ---------------------------------------------------------
    def problems(self, snap: Snapshot, now: float) -> list[str]:
        """What ``snap`` (taken at monotonic ``now``) shows that the model rules out."""
        found: list[str] = []
        rows = [r for r in snap.runs if r.agent_id in self.runs]
        for row in rows:
            run = self.runs[row.agent_id]
            if row.status == "running" and run.must_end_by is not None and now > run.must_end_by:
                late = now - run.must_end_by
                found.append(
                    f"{row.agent_id} ({row.run_id}) still running on {row.replica_id!r} "
                    f"{late:.1f}s past its deadline ({run.why})"
                )
            found.extend(self._terminal_flip(row))
        users = {r.user_id for r in self.runs.values()}
        for quota in snap.quotas:
            if quota.user_id in users and quota.active_count > self.per_user_cap:
                found.append(
                    f"user {quota.user_id} holds {quota.active_count} slots, "
                    f"above the cap of {self.per_user_cap}"
                )
        return found

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
