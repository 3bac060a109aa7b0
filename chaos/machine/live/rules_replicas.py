"""Replica faults: SIGKILL (alone, or while a cancel of one of its runs is in flight),
a brief freeze, a graceful stop, and the restart that brings the replica back.

One replica is out at a time, and an example kills at most the budget its
``initial_load`` drew (each kill costs a reap of the target's clock).  A killed
replica stays dead until the survivors reaped it: restarted earlier under the
same id it would heartbeat its old row back and leave its runs to the per-run
sweeper.
"""

from __future__ import annotations

import time

from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from chaos.faults.replica import freeze_replica, rejoin, stop_replica
from chaos.machine.live.constants import (
    CANCEL_WAIT_S,
    FREEZE_DURING,
    FREEZE_HOLDS_S,
    KILL_DELAYS_S,
    MAX_RUNS,
    REPLICAS,
    let_time_pass,
)
from chaos.machine.live.example import LiveMachineBase
from chaos.record.vocabulary import FAULT_PAUSE, FAULT_STOP


class ReplicaFaultRules(LiveMachineBase):
    @precondition(lambda self: self.enabled("kill_replica") and self.may_kill())
    @rule(replica=st.sampled_from(REPLICAS))
    def kill_replica(self, replica: str) -> None:
        """SIGKILL; it stays dead until the survivors reap it."""
        self.step("kill_replica", replica=replica)
        with self.timed("rule:kill"):
            self.kill(replica)

    @precondition(
        lambda self: (
            self.enabled("kill_owner_during_cancel") and self.may_kill() and bool(self.model.runs)
        )
    )
    @rule(pick=st.integers(0, MAX_RUNS - 1), delay=st.sampled_from(KILL_DELAYS_S))
    def kill_owner_during_cancel(self, pick: int, delay: float) -> None:
        """A non-owner's cancel of a running run is sent; ``delay`` later its owner dies."""
        run = self.model.pick(pick)
        assert run is not None
        owner = self.owner_of(run.agent_id)
        self.step("kill_owner_during_cancel", agent_id=run.agent_id, owner=owner, delay=delay)
        if owner is None or owner not in self.model.up():
            self.history.note(
                "machine_race_skipped", why="the run is not running", agent_id=run.agent_id
            )
            return
        via = self.via_for("non_owner", owner)
        with self.timed("rule:kill"):
            in_flight = self.setup.bridge.submit(self.cancel_through(via, run.agent_id))
            self.run(let_time_pass(delay), what="the race's delay", timeout=delay + 5.0)
            self.kill(owner)
            result = in_flight.result(timeout=CANCEL_WAIT_S)
        self.cancelled(run.agent_id, result)

    @precondition(lambda self: self.enabled("freeze_briefly") and not self.model.down())
    @rule(
        replica=st.sampled_from(REPLICAS),
        hold=st.sampled_from(FREEZE_HOLDS_S),
        during=st.sampled_from(FREEZE_DURING),
    )
    def freeze_briefly(self, replica: str, hold: float, during: str) -> None:
        """Frozen and thawed inside one rule, so no freeze reaches the stale threshold."""
        self.step("freeze_briefly", replica=replica, hold=hold, during=during)
        with self.timed("rule:freeze_briefly"):
            owned = self.owned_running(replica)
            fault = self.run(freeze_replica(self.cluster, replica), what="build the freeze")
            self.setup.stats.fault(FAULT_PAUSE)
            self.inject(fault)
            self.model.frozen(replica, time.monotonic())
            if during == "cancel_its_run" and owned:
                via = self.via_for("non_owner", replica)
                result = self.run(
                    self.cancel_through(via, owned[0]),
                    what="cancel to a frozen owner",
                    timeout=CANCEL_WAIT_S,
                )
                self.cancelled(owned[0], result)
            elif during == "start_via_lb" and len(self.model.runs) < MAX_RUNS:
                self.start("lb", 0, 1)
            self.run(let_time_pass(hold), what="the freeze's hold", timeout=hold + 5.0)
            self.heal(replica)
            self.model.restarted(replica, time.monotonic())

    @precondition(
        lambda self: self.enabled("graceful_stop") and not self.model.down() and not self.circuits
    )
    @rule(replica=st.sampled_from(REPLICAS))
    def graceful_stop(self, replica: str) -> None:
        """SIGTERM: the replica drains for 5 s, deletes its own row and exits.  Not in an
        example that started a circuit: its runs outlast the drain, and a stop that meets
        one is LC-002 (its own reduced test), whose abandoned runs stay ``running`` until
        the per-run heartbeat sweeper (180 s): convergence and the next reset would wait
        for them every time (~200 s an example in the first ci run)."""
        self.step("graceful_stop", replica=replica)
        with self.timed("rule:graceful_stop"):
            fault = self.run(stop_replica(self.cluster, replica), what="build the stop")
            self.setup.stats.fault(FAULT_STOP)
            self.inject(fault)
        self.model.stopped(replica, time.monotonic())

    @precondition(lambda self: any(self.model.may_restart(r) for r in self.model.down()))
    @rule()
    def restart(self) -> None:
        """The replica that is out comes back under its own id and rejoins."""
        replica = next(r for r in self.model.down() if self.model.may_restart(r))
        self.step("restart", replica=replica)
        with self.timed("rule:restart"):
            self.restart_replica(replica)

    def restart_replica(self, replica: str) -> None:
        self.heal(replica)
        self.run(rejoin(self.cluster, replica), what=f"{replica} rejoins", timeout=150.0)
        self.forget_client(replica)
        self.model.restarted(replica, time.monotonic())
