"""Hold and release the replicas sweeper's advisory lock (``AdvisoryLockHold``).

Every replica runs the dead-replica sweeper; each tick only the one that wins
``pg_try_advisory_lock(replicas_sweeper)`` works, and the whole round runs
under the lock (advisory_lock.go:58-102, replicas_sweeper.go:116-131).  Held
from outside, every tick is a silent skip: a killed replica is not reaped, its
runs stay ``running`` and its row stays.  The hold's inject waits
(``pg_advisory_lock``) for a round in progress, so once it returns no round
runs.  The model then suspends the reap deadlines, requires that nothing the
snapshot taken right after the grant showed is reaped, and on release restarts
them (:meth:`LiveModel.sweeper_released`).  A lock still held at the end is
released before teardown waits for any reap (:mod:`.judging`); the base
machine's teardown would heal it anyway.
"""

from __future__ import annotations

import time

from hypothesis.stateful import precondition, rule

from chaos.faults import REPLICAS_SWEEPER_LOCK_KEY, AdvisoryLockHold, PgCredentials
from chaos.machine.live.constants import SWEEPER_TARGET
from chaos.machine.live.example import LiveMachineBase


class SweeperLockRules(LiveMachineBase):
    def sweeper_lock(self) -> AdvisoryLockHold:
        creds = self.cluster.pg_credentials
        return AdvisoryLockHold(
            ("127.0.0.1", self.cluster.pg_port),
            PgCredentials(creds.user, creds.password, creds.database),
            REPLICAS_SWEEPER_LOCK_KEY,
            target=SWEEPER_TARGET,
        )

    @precondition(
        lambda self: self.enabled("hold_sweeper_lock") and self.may_inject(SWEEPER_TARGET)
    )
    @rule()
    def hold_sweeper_lock(self) -> None:
        self.step("hold_sweeper_lock")
        fault = self.sweeper_lock()
        with self.timed("rule:sweeper_lock"):
            self.setup.stats.fault(fault.name)
            self.inject(fault)
            granted = time.monotonic()
            self.model.sweeper_held(granted, self.snapshot())

    @precondition(lambda self: self.is_active(SWEEPER_TARGET))
    @rule()
    def release_sweeper_lock(self) -> None:
        self.step("release_sweeper_lock")
        with self.timed("rule:sweeper_lock"):
            self.heal(SWEEPER_TARGET)
        self.model.sweeper_released(time.monotonic())
