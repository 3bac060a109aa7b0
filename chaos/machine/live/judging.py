"""The end of every example: reap, heal, bring replicas back, converge, run every checker.

A failing verdict whose signature a write-up in ``docs/findings/`` explains is
counted as known (``LiveSetup.explain``), not failed; anything else, or a
teardown that could not heal, fails the example.
"""

from __future__ import annotations

import contextlib
import sys
import time

from chaos.checks import ALL_CHECKS
from chaos.faults.replica import reap_wait_s, rejoin
from chaos.machine.live.constants import CANCEL_REASON, REPLICAS, SWEEPER_TARGET
from chaos.machine.live.example import LiveMachineBase
from chaos.machine.live.setup import ExampleFacts
from chaos.sut.loomcycle.campaign import read_circuit_outputs
from chaos.sut.loomcycle.settings import settings_of
from chaos.verdict import Verdict


class JudgedExample(LiveMachineBase):
    """:meth:`teardown` for the live machine: nothing left behind, every checker run."""

    def release_sweeper_lock_if_held(self) -> None:
        """The reaps below need the sweeper: a lock still held is released (heal proven)."""
        if self.is_active(SWEEPER_TARGET):
            self.heal(SWEEPER_TARGET)
            self.model.sweeper_released(time.monotonic())

    def teardown(self) -> None:
        """Release the sweeper's lock, reap the killed, heal everything (base), bring
        replicas back, converge, judge."""
        failures: list[str] = []
        teardown_began = time.monotonic()
        # Hypothesis calls teardown from a ``finally``: an exception in flight is this
        # example's failure in a rule or a per-step invariant (not BaseException-only ones:
        # Hypothesis's own StopTest ends an example that ran out of choices).
        failed_in_flight = isinstance(sys.exc_info()[1], Exception)
        if failed_in_flight:
            self.setup.stats.failed_examples += 1
        try:
            self.release_sweeper_lock_if_held()
            for replica in [r for r in REPLICAS if self.model.status(r) == "killed"]:
                self.wait_reaped(replica)
        except Exception as exc:
            failures.append(f"reap before teardown: {type(exc).__name__}: {exc}"[:500])
        out = [r for r in REPLICAS if r in self.active]
        try:
            with self.timed("teardown_heal_and_drain"):
                super().teardown()  # heals (and proves) every fault, drains runs, closes clients
        except Exception as exc:
            failures.append(f"{type(exc).__name__}: {exc}"[:800])
        for replica in out:
            try:
                self.run_timed(
                    rejoin(self.cluster, replica),
                    what=f"{replica} rejoins",
                    phase="rejoin",
                    timeout=150.0,
                )
            except Exception as exc:
                failures.append(f"{replica} rejoin: {type(exc).__name__}: {exc}"[:500])
        self.closed = True
        unexplained = self.judge() if not failures else []
        stats = self.setup.stats
        stats.example_s.append(time.monotonic() - self.began)
        stats.teardown_s.append(time.monotonic() - teardown_began)
        stats.programs.append(list(self.steps))
        if failures or unexplained:
            if not failed_in_flight:
                self.setup.stats.failed_examples += 1
            self.save_history()
            lines = failures + [
                f"[{v.status.value.upper()}] {v.invariant}: {v.summary}" for v in unexplained
            ]
            raise AssertionError(f"example {self.serial} ({self.prefix}): " + " | ".join(lines))

    def read_circuit_outputs(self) -> None:
        """Each circuit's three memory outputs into the history (``no_silent_regressions``
        requires them of every completed circuit; read for all, judged for those)."""
        if not self.circuit_users:
            return
        token = settings_of(self.cluster.spec).auth_token
        self.run_timed(
            read_circuit_outputs(self.cluster.lb_url, token, self.history, self.circuit_users),
            what="read the circuits' outputs",
            phase="circuit_outputs",
            timeout=60.0,
        )

    def judge(self) -> list[Verdict]:
        """Converge, run every checker, count known findings; the unexplained failures."""
        try:
            self.read_circuit_outputs()
            convergence = self.run_timed(
                self.frame.converge(),
                what="convergence",
                phase="converge",
                timeout=reap_wait_s(self.frame.params) + 120.0,
            )
            with self.timed("checkers"):
                verdicts = self.frame.verdicts(
                    # A random program may give an invariant nothing to judge (no cancel, no
                    # kill, no completed run): vacuity is the program's, not the check's.
                    allow_vacuous=list(ALL_CHECKS)
                )
        finally:
            self.run_timed(
                self.frame_cm.__aexit__(None, None, None),
                what="close the frame",
                phase="close_frame",
                timeout=60.0,
            )
        facts = ExampleFacts(
            ctx=self.frame.context(),
            final=convergence.final,
            windows=tuple(self.history.fault_windows()),
            cancel_reason=CANCEL_REASON,
        )
        unexplained = []
        stats = self.setup.stats
        for verdict in verdicts:
            status = verdict.status.value
            stats.verdicts[status] = stats.verdicts.get(status, 0) + 1
            if verdict.ok:
                continue
            finding = self.setup.explain(verdict, facts)
            if finding is None:
                unexplained.append(verdict)
            else:
                stats.known[finding] = stats.known.get(finding, 0) + 1
                stats.known_verdicts.append(verdict)
                self.history.note(
                    "machine_known_finding", finding=finding, invariant=verdict.invariant
                )
        self.history.note(
            "machine_verdicts",
            example=self.serial,
            verdicts={v.invariant: v.status.value for v in verdicts},
            unexplained=[v.invariant for v in unexplained],
        )
        return unexplained

    def save_history(self) -> None:
        if self.setup.artifacts is None:
            return
        path = self.setup.artifacts / f"machine-example-{self.serial}.jsonl"
        with contextlib.suppress(Exception):
            self.history.save(path)
