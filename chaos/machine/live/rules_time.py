"""Time-passing rules: the target's clock cannot be faked, so these cost real seconds.

One sweep interval (5 s under the machine's crash timers) while a killed
replica waits for its reap, or until the
survivors reaped a killed replica (up to the reap bound, ~75 s): the
expensive one, possible only while the sweeper's lock is free.
"""

from __future__ import annotations

from hypothesis.stateful import precondition, rule

from chaos.machine.live.constants import REPLICAS, let_time_pass
from chaos.machine.live.example import LiveMachineBase


class TimeRules(LiveMachineBase):
    @precondition(
        lambda self: (
            self.enabled("pass_one_sweep")
            and any(self.model.status(r) == "killed" for r in REPLICAS)
        )
    )
    @rule()
    def pass_one_sweep(self) -> None:
        """One sweep interval of the target's clock, while a sweep round has something to
        do: a killed replica not yet reaped (reaped by it, or not while the lock is held).
        No other row goes stale (freezes and link cuts stay well inside the threshold), so
        without one a round changes nothing: the wait would cost 5 s and test nothing."""
        sweep = self.frame.params.replica_sweep_s
        self.step("pass_one_sweep", seconds=sweep)
        self.run_timed(
            let_time_pass(sweep),
            what="one sweep interval",
            phase="rule:pass_one_sweep",
            timeout=sweep + 5.0,
        )

    @precondition(
        lambda self: (
            not self.model.lock_held and any(self.model.status(r) == "killed" for r in REPLICAS)
        )
    )
    @rule()
    def pass_the_stale_threshold(self) -> None:
        """Until the survivors reaped the killed replica (bounded by the reap bound)."""
        replica = next(r for r in REPLICAS if self.model.status(r) == "killed")
        self.step("pass_the_stale_threshold", replica=replica)
        self.wait_reaped(replica)
