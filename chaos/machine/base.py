"""``ChaosMachine``: a Hypothesis rule-based state machine whose rules are chaos operations.

Hypothesis explores interleavings of operations (writes, injects, heals) and
shrinks a failure to the shortest program that still breaks an invariant.
For that to be safe on real systems, this base class guarantees three things
to every subclass:

* **one loop**: all async work of a run goes through :meth:`ChaosMachine.run`
  on the run's :class:`~chaos.machine.loop.MachineLoop`;
* **one record**: every fault phase goes into the run's
  :class:`~chaos.record.history.History` through :mod:`chaos.faults.phases`,
  the same writer :func:`chaos.faults.injected` uses (``inject``, ``effect``
  or ``effect_failed``, ``heal``, ``healed`` or ``heal_failed``), and every
  example starts with a ``machine_example`` note;
* **nothing left behind**: :meth:`teardown` heals every fault still active and
  proves each heal, whatever the example did (shrinking runs hundreds of
  truncated programs, each of which may stop with a fault in force), then
  waits until :meth:`leftovers` is empty.

A fault leaves the registry only when its heal is PROVEN; a heal that failed
stays registered, so teardown tries again and reports it.

Rules are written by subclasses; the helpers :meth:`may_inject`,
:meth:`is_active`, :meth:`inject` and :meth:`heal` keep at most one fault per
target in force (``exclusive`` faults, such as a database outage that every
other probe depends on, allow no other fault at all).
"""

from __future__ import annotations

import itertools
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hypothesis.stateful import RuleBasedStateMachine, invariant

from chaos.faults import phases
from chaos.faults.base import Fault, FaultHealFailed, FaultNotProven, prove_effect
from chaos.machine.loop import MachineLoop
from chaos.record.history import History, Record
from chaos.wait import WaitTimeout, eventually

T = TypeVar("T")

#: How long the effect of an already-proven fault gets to show again after a step.
RECHECK_EFFECT_S = 10.0
#: How long the data path gets to answer once the last active fault is healed.
PATH_AFTER_HEAL_S = 15.0
#: How long teardown waits for :meth:`ChaosMachine.leftovers` to become empty.
LEFTOVERS_S = 15.0


class MachineTeardownError(AssertionError):
    """Teardown could not heal (and prove the heal of) every fault, or something remained."""


@dataclass
class MachineRuntime:
    """What outlives one example: the loop, the history, counters, and the steps run.

    Hypothesis builds a fresh machine per example (and per shrink attempt);
    the runtime is shared by all of them, so the history covers the whole
    exploration and values stay unique across examples.
    """

    loop: MachineLoop
    history: History
    #: Bound on a single step's async work (a fault heal may take a minute).
    step_timeout: float = 120.0
    #: The rule names each example ran, in order; the last entry is the
    #: example Hypothesis replayed last (after shrinking: the minimal one).
    examples: list[list[str]] = field(default_factory=list)
    _counters: dict[str, itertools.count[int]] = field(default_factory=dict)

    def next_id(self, name: str) -> int:
        """1, 2, 3 ... per ``name``, unique across every example of the run."""
        return next(self._counters.setdefault(name, itertools.count(1)))


@dataclass
class ActiveFault:
    """A fault in the registry: injected (its effect maybe proven), heal not yet proven."""

    fault: Fault
    inject: Record
    exclusive: bool
    effect_proven: bool = False


class ChaosMachine(RuleBasedStateMachine):
    """Base for chaos state machines; subclasses add rules and :meth:`path_answers`.

    Build one per example with a factory closing over a shared
    :class:`MachineRuntime` (see :func:`chaos.machine.run_machine`).
    """

    def __init__(self, runtime: MachineRuntime) -> None:
        super().__init__()
        self.runtime = runtime
        self.history = runtime.history
        self.active: dict[str, ActiveFault] = {}
        self.steps: list[str] = []
        runtime.examples.append(self.steps)
        self.example = len(runtime.examples)
        self._heal_pending = False
        self.history.note("machine_example", machine=type(self).__name__, example=self.example)

    # -- running async work -------------------------------------------------
    def run(self, work: Coroutine[Any, Any, T], *, what: str, timeout: float | None = None) -> T:
        """Run ``work`` on the run's loop, bounded by ``timeout`` (default: the step timeout)."""
        limit = self.runtime.step_timeout if timeout is None else timeout
        return self.runtime.loop.run(work, timeout=limit, what=what)

    def begin_step(self, name: str, **data: Any) -> None:
        """Record that a rule started (the step list and a history note)."""
        self.steps.append(name)
        self.history.note("machine_step", rule=name, example=self.example, **data)

    # -- the fault registry ---------------------------------------------------
    def is_active(self, target: str) -> bool:
        return target in self.active

    def may_inject(self, target: str, *, exclusive: bool = False) -> bool:
        """Precondition: one fault per target; an exclusive fault only on a whole system."""
        if exclusive:
            return not self.active
        return target not in self.active and not any(a.exclusive for a in self.active.values())

    def inject(self, fault: Fault, *, exclusive: bool = False) -> Record:
        """Inject ``fault`` and prove its effect; on failure heal it (proven) and raise.

        Raises :class:`FaultNotProven` when the effect never showed (a test
        bug: the step tested nothing) and :class:`FaultHealFailed` when the
        clean-up heal after that failed too (the fault stays registered so
        teardown tries again).
        """
        if not self.may_inject(fault.target, exclusive=exclusive):
            raise RuntimeError(
                f"{fault.name} on {fault.target}: target busy with "
                f"{sorted((t, a.fault.name) for t, a in self.active.items())}; "
                "guard the rule with a may_inject() precondition"
            )
        self.begin_step(f"inject:{fault.name}", target=fault.target)
        record = phases.begin(self.history, fault)
        entry = ActiveFault(fault, record, exclusive)
        self.active[fault.target] = entry  # registered first: teardown heals even half-injections
        deadline = self.runtime.step_timeout
        try:
            self.run(
                phases.inject_and_prove(fault, self.history, record, deadline=deadline),
                what=f"inject {fault.name}",
                timeout=phases.outer_bound(fault, deadline),
            )
        except Exception as exc:
            self._heal_registered(fault.target)
            if isinstance(exc, FaultNotProven):
                raise
            # Only when the outer bound beat the phase's own deadline (work
            # that ignores cancellation): no effect_failed record then, but
            # the caller still sees "not proven".
            raise FaultNotProven(f"inject of {fault.name} on {fault.target}: {exc}") from exc
        entry.effect_proven = True
        return record

    def heal(self, target: str) -> None:
        """Heal the fault on ``target`` and prove it; raises :class:`FaultHealFailed`."""
        entry = self.active.get(target)
        if entry is None:
            raise RuntimeError(f"no active fault on {target}; guard with is_active()")
        self.begin_step(f"heal:{entry.fault.name}", target=target)
        self._heal_registered(target)
        self._heal_pending = True

    def _heal_registered(self, target: str) -> None:
        """Heal, prove and record (:func:`chaos.faults.phases.heal_and_prove`); drop once proven."""
        entry = self.active[target]
        fault = entry.fault
        deadline = fault.heal_timeout + fault.probe_timeout + 30.0
        try:
            self.run(
                phases.heal_and_prove(fault, self.history, entry.inject, deadline=deadline),
                what=f"heal {fault.name}",
                timeout=phases.outer_bound(fault, deadline),
            )
        except FaultHealFailed:
            raise
        except Exception as exc:  # the outer bound beat the phase's own deadline (see inject)
            raise FaultHealFailed(f"heal of {fault.name} on {fault.target}: {exc}") from exc
        del self.active[target]

    # -- invariants shared by every machine -----------------------------------
    @invariant()
    def active_faults_bite(self) -> None:
        """Every fault in force still shows its effect (one that stopped biting tests nothing)."""
        for entry in list(self.active.values()):
            if not entry.effect_proven:
                continue
            fault = entry.fault
            self.run(
                prove_effect(fault, timeout=min(fault.effect_timeout, RECHECK_EFFECT_S)),
                what=f"re-proof of {fault.name} on {fault.target}",
            )

    @invariant()
    def path_answers_after_heal(self) -> None:
        """Once the last fault is healed, the workload's data path answers again."""
        if not self._heal_pending or self.active:
            return
        self._heal_pending = False
        self.run(
            eventually(
                self.path_answers,
                what="the data path to answer after the last heal",
                timeout=PATH_AFTER_HEAL_S,
            ),
            what="round trip after heal",
            timeout=PATH_AFTER_HEAL_S + 10.0,
        )

    # -- hooks for subclasses --------------------------------------------------
    async def path_answers(self) -> bool:
        """True when one round trip over the workload's path succeeds (subclasses define it)."""
        raise NotImplementedError(f"{type(self).__name__} must define path_answers()")

    async def close_clients(self) -> None:
        """Close the subclass's own connections before the leftovers check."""

    async def leftovers(self) -> list[str]:
        """What a clean system must not show (toxics, stopped containers ...), one line each."""
        return []

    # -- teardown --------------------------------------------------------------
    def teardown(self) -> None:
        """Heal and prove the heal of every active fault, close clients, verify nothing remains.

        Runs after every example, also after a failing rule (Hypothesis calls
        it in a ``finally``).  Each step is attempted even if an earlier one
        failed; all failures are reported together.
        """
        problems: list[str] = []
        for target in reversed(list(self.active)):
            try:
                self._heal_registered(target)
            except Exception as exc:  # keep healing the others; report below
                problems.append(f"heal of {target}: {type(exc).__name__}: {exc}"[:500])
        try:
            self.run(self.close_clients(), what="closing the machine's clients", timeout=30.0)
        except Exception as exc:
            problems.append(f"close_clients: {type(exc).__name__}: {exc}"[:500])
        if not problems:
            problems.extend(self._wait_clean())
        self.history.note(
            "machine_teardown", example=self.example, steps=len(self.steps), problems=problems
        )
        if problems:
            raise MachineTeardownError(
                f"teardown of example {self.example} left the system unclean: "
                + "; ".join(problems)
            )

    def _wait_clean(self) -> list[str]:
        async def clean() -> bool:
            return not await self.leftovers()

        try:
            self.run(
                eventually(clean, what="no leftovers after teardown", timeout=LEFTOVERS_S),
                what="leftovers check",
                timeout=LEFTOVERS_S + 30.0,
            )
        except WaitTimeout:
            try:
                return self.run(self.leftovers(), what="leftovers report", timeout=30.0)
            except Exception as exc:
                return [f"leftovers: {type(exc).__name__}: {exc}"[:500]]
        except Exception as exc:
            return [f"leftovers: {type(exc).__name__}: {exc}"[:500]]
        return []
