"""ChaosMachine on in-memory faults: registry, preconditions, history, teardown, shrinking."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis.stateful import invariant, precondition, rule

from chaos.faults import Fault, FaultHealFailed, FaultNotProven
from chaos.machine import (
    ChaosMachine,
    MachineLoop,
    MachineRuntime,
    MachineTeardownError,
    StepTimeout,
    failing_program,
    machine_loop,
    machine_settings,
    program_rules,
    replay,
    run_machine,
)
from chaos.machine import base as machine_base
from chaos.record.history import History


class World:
    """The 'system': which targets are broken, and whether its data path answers."""

    def __init__(self) -> None:
        self.broken: dict[str, bool] = {}
        self.path_ok = True
        self.leftover: list[str] = []


class Toggle(Fault):
    """A fault that flips ``world.broken[target]``; knobs make inject or heal misbehave."""

    effect_timeout = 0.3
    heal_timeout = 0.3
    probe_timeout = 0.2

    def __init__(
        self, world: World, target: str, *, inject_works: bool = True, heal_works: bool = True
    ) -> None:
        self.world = world
        self._target = target
        self.inject_works = inject_works
        self.heal_works = heal_works

    name = "toggle"

    @property
    def target(self) -> str:
        return self._target

    def describe(self) -> dict[str, Any]:
        return {"knob": 1}

    async def inject(self) -> None:
        if self.inject_works:
            self.world.broken[self._target] = True

    async def heal(self) -> None:
        if self.heal_works:
            self.world.broken[self._target] = False

    async def effect_present(self) -> bool:
        return self.world.broken.get(self._target, False)

    async def healthy(self) -> bool:
        return True


class FakeMachine(ChaosMachine):
    """Two targets; 'b' is exclusive.  Broken on purpose when ``explode_after_inject``."""

    world = World()
    explode_after_inject = False

    @precondition(lambda self: self.may_inject("a"))
    @rule()
    def break_a(self) -> None:
        self.inject(Toggle(self.world, "a"))
        if self.explode_after_inject:
            raise RuntimeError("rule failed with a fault in force")

    @precondition(lambda self: self.may_inject("b", exclusive=True))
    @rule()
    def break_b(self) -> None:
        self.inject(Toggle(self.world, "b"), exclusive=True)

    @precondition(lambda self: self.is_active("a"))
    @rule()
    def heal_a(self) -> None:
        self.heal("a")

    @precondition(lambda self: self.is_active("b"))
    @rule()
    def heal_b(self) -> None:
        self.heal("b")

    @rule()
    def noop(self) -> None:
        self.begin_step("noop")

    @invariant()
    def at_most_one_per_target(self) -> None:
        assert len(self.active) <= 2
        if self.is_active("b"):
            assert list(self.active) == ["b"], "an exclusive fault stands alone"

    async def path_answers(self) -> bool:
        return self.world.path_ok

    async def leftovers(self) -> list[str]:
        broken = [t for t, b in self.world.broken.items() if b]
        return [f"{t} still broken" for t in broken] + self.world.leftover


@pytest.fixture
def loop() -> Iterator[MachineLoop]:
    with machine_loop() as the_loop:
        yield the_loop


@pytest.fixture(autouse=True)
def fresh_world(monkeypatch: pytest.MonkeyPatch) -> World:
    world = World()
    monkeypatch.setattr(FakeMachine, "world", world)
    monkeypatch.setattr(machine_base, "LEFTOVERS_S", 0.3)
    monkeypatch.setattr(machine_base, "PATH_AFTER_HEAL_S", 0.3)
    monkeypatch.setattr(machine_base, "RECHECK_EFFECT_S", 0.3)
    return world


def phases(history: History) -> list[tuple[str, str]]:
    return [(r.key or "", r.data["phase"]) for r in history.records if r.type == "fault"]


def test_inject_and_heal_record_the_injected_phases(loop: MachineLoop) -> None:
    history = History()
    m = FakeMachine(MachineRuntime(loop, history))
    m.break_a()
    assert m.is_active("a") and FakeMachine.world.broken["a"]
    m.heal_a()
    m.teardown()
    assert phases(history) == [("a", "inject"), ("a", "effect"), ("a", "heal"), ("a", "healed")]
    (window,) = history.fault_windows()
    assert window.effect_proven and window.heal_proven and window.data["knob"] == 1
    notes = [r.op for r in history.records if r.type == "note"]
    assert notes[0] == "machine_example" and notes[-1] == "machine_teardown"
    assert m.steps == ["inject:toggle", "heal:toggle"]


def test_one_fault_per_target_and_exclusive_faults_stand_alone(loop: MachineLoop) -> None:
    m = FakeMachine(MachineRuntime(loop, History()))
    assert m.may_inject("a") and m.may_inject("b", exclusive=True)
    m.break_a()
    assert not m.may_inject("a"), "a second fault on the same target"
    assert m.may_inject("c"), "another target is free"
    assert not m.may_inject("b", exclusive=True), "exclusive needs a whole system"
    with pytest.raises(RuntimeError, match="target busy"):
        m.inject(Toggle(FakeMachine.world, "a"))
    m.heal_a()
    m.break_b()
    assert not m.may_inject("a") and not m.may_inject("c"), "nothing beside an exclusive fault"
    m.teardown()


def test_teardown_heals_and_proves_every_active_fault(loop: MachineLoop) -> None:
    history = History()
    m = FakeMachine(MachineRuntime(loop, history))
    m.break_a()
    m.inject(Toggle(FakeMachine.world, "c"))
    m.teardown()
    assert not m.active and not any(FakeMachine.world.broken.values())
    healed = [(k, p) for k, p in phases(history) if p == "healed"]
    assert sorted(healed) == [("a", "healed"), ("c", "healed")]


def test_teardown_heals_after_a_rule_raised_inside_hypothesis(loop: MachineLoop) -> None:
    history = History()
    runtime = MachineRuntime(loop, history)

    class Exploding(FakeMachine):
        explode_after_inject = True

    with pytest.raises(RuntimeError, match="rule failed with a fault in force"):
        run_machine(
            lambda: Exploding(runtime),
            machine_settings(max_examples=30, steps=5, report_multiple_bugs=False),
            seed=7,
        )
    assert not any(FakeMachine.world.broken.values()), "a fault stayed after the failure"
    windows = history.fault_windows()
    assert windows and all(w.heal_proven for w in windows)


def test_a_heal_that_fails_is_reported_and_stays_registered(loop: MachineLoop) -> None:
    history = History()
    m = FakeMachine(MachineRuntime(loop, history))
    m.inject(Toggle(FakeMachine.world, "stuck", heal_works=False))
    m.break_a()
    with pytest.raises(MachineTeardownError, match="heal of stuck"):
        m.teardown()
    assert list(m.active) == ["stuck"], "an unproven heal keeps the fault registered"
    assert not FakeMachine.world.broken["a"], "the other faults were still healed"
    assert ("stuck", "heal_failed") in phases(history)


def test_teardown_fails_when_something_remains(loop: MachineLoop) -> None:
    FakeMachine.world.leftover.append("a stray toxic")
    m = FakeMachine(MachineRuntime(loop, History()))
    with pytest.raises(MachineTeardownError, match="a stray toxic"):
        m.teardown()


def test_an_effect_that_never_shows_is_healed_and_raised(loop: MachineLoop) -> None:
    history = History()
    m = FakeMachine(MachineRuntime(loop, history))
    with pytest.raises(FaultNotProven):
        m.inject(Toggle(FakeMachine.world, "a", inject_works=False))
    assert not m.active
    assert [p for _, p in phases(history)] == ["inject", "effect_failed", "heal", "healed"]
    m.teardown()


def test_a_failed_inject_whose_heal_fails_stays_for_teardown(loop: MachineLoop) -> None:
    m = FakeMachine(MachineRuntime(loop, History()))
    fault = Toggle(FakeMachine.world, "a", inject_works=False, heal_works=False)
    fault.effect_present = lambda: _const(False)  # type: ignore[method-assign]
    fault.heal_present = lambda: _const(False)  # type: ignore[method-assign]
    with pytest.raises(FaultHealFailed):
        m.inject(fault)
    assert m.is_active("a")
    with pytest.raises(MachineTeardownError):
        m.teardown()


async def _const(value: bool) -> bool:
    return value


def test_invariant_fails_when_an_active_fault_stops_biting(loop: MachineLoop) -> None:
    m = FakeMachine(MachineRuntime(loop, History()))
    m.break_a()
    m.active_faults_bite()  # passes while the effect shows
    FakeMachine.world.broken["a"] = False  # the fault quietly went away
    with pytest.raises(FaultNotProven):
        m.active_faults_bite()
    m.teardown()


def test_invariant_fails_when_the_path_stays_down_after_the_last_heal(loop: MachineLoop) -> None:
    m = FakeMachine(MachineRuntime(loop, History()))
    m.break_a()
    m.heal_a()
    m.path_answers_after_heal()  # healthy world: passes
    m.break_a()
    m.heal_a()
    FakeMachine.world.path_ok = False
    with pytest.raises(StepTimeout.__mro__[1]):  # WaitTimeout is a TimeoutError too
        m.path_answers_after_heal()
    m.teardown()


class OrderBug(FakeMachine):
    """Broken on purpose: claims the system breaks when 'b' follows a heal of 'a'."""

    healed_a = False

    def heal(self, target: str) -> None:
        super().heal(target)
        self.healed_a = self.healed_a or target == "a"

    @invariant()
    def no_b_after_healing_a(self) -> None:
        assert not (self.healed_a and self.is_active("b")), "b after a healed a"


def test_failures_shrink_to_a_short_replayable_program(loop: MachineLoop) -> None:
    runtime = MachineRuntime(loop, History())
    with pytest.raises(AssertionError) as caught:
        run_machine(
            lambda: OrderBug(runtime),
            machine_settings(max_examples=200, steps=10, report_multiple_bugs=False),
            seed=3,
        )
    program = failing_program(caught.value)
    assert program[0] == "state = OrderBug()" and program[-1] == "state.teardown()"
    rules = program_rules(program, OrderBug)
    assert rules == ["state.break_a()", "state.heal_a()", "state.break_b()"], program
    assert not any(FakeMachine.world.broken.values())
    with pytest.raises(AssertionError, match="b after a healed a"):
        replay(program, OrderBug(runtime))
    assert not any(FakeMachine.world.broken.values()), "replay tore down too"


def test_the_machine_passes_when_nothing_is_wrong(loop: MachineLoop) -> None:
    history = History()
    runtime = MachineRuntime(loop, history)
    run_machine(lambda: FakeMachine(runtime), machine_settings(max_examples=20, steps=8), seed=1)
    assert len(runtime.examples) >= 20
    assert history.fault_windows() and all(w.heal_proven for w in history.fault_windows())
    assert not any(FakeMachine.world.broken.values())


def test_loop_runs_bounded_work_and_names_what_timed_out(loop: MachineLoop) -> None:
    async def answer() -> int:
        return 42

    async def hang() -> None:
        await asyncio.sleep(5)

    async def own_timeout() -> None:
        raise TimeoutError("the probe's own deadline")

    assert loop.run(answer(), timeout=1, what="answer") == 42
    with pytest.raises(StepTimeout, match=r"hang did not finish within 0\.1s"):
        loop.run(hang(), timeout=0.1, what="hang")
    with pytest.raises(TimeoutError, match="own deadline") as caught:
        loop.run(own_timeout(), timeout=1, what="own")
    assert not isinstance(caught.value, StepTimeout)


def test_runtime_ids_are_unique_across_examples(loop: MachineLoop) -> None:
    runtime = MachineRuntime(loop, History())
    assert [runtime.next_id("w") for _ in range(3)] == [1, 2, 3]
    assert runtime.next_id("other") == 1


class Witnessed(Toggle):
    """``Toggle`` that reports evidence, to see it recorded with failures too."""

    async def evidence(self) -> dict[str, Any]:
        return {"broken": self.world.broken.get(self.target, False)}


class Hung(Witnessed):
    """An inject that breaks the target, then never returns (a hung client call)."""

    async def inject(self) -> None:
        await super().inject()
        await asyncio.Event().wait()


def test_an_inject_past_the_step_deadline_is_recorded_healed_and_raised(
    loop: MachineLoop,
) -> None:
    history = History()
    m = FakeMachine(MachineRuntime(loop, history, step_timeout=0.3))
    with pytest.raises(FaultNotProven, match=r"did not finish within 0\.3s"):
        m.inject(Hung(FakeMachine.world, "a"))
    assert not m.active and not FakeMachine.world.broken["a"], "the half-injection was healed"
    assert [p for _, p in phases(history)] == ["inject", "effect_failed", "heal", "healed"]
    failed = next(r for r in history.records if r.data.get("phase") == "effect_failed")
    assert failed.data["error"].startswith("PhaseTimeout: inject of toggle on a")
    assert failed.data["broken"] is True, "the evidence is recorded with the failure"
    m.teardown()


def test_a_failed_heal_records_the_evidence(loop: MachineLoop) -> None:
    history = History()
    m = FakeMachine(MachineRuntime(loop, history))
    fault = Witnessed(FakeMachine.world, "a", heal_works=False)
    m.inject(fault)
    with pytest.raises(FaultHealFailed):
        m.heal("a")
    failed = history.records[-1]
    assert failed.data["phase"] == "heal_failed" and failed.data["broken"] is True
    assert m.is_active("a"), "an unproven heal keeps the fault registered"
    fault.heal_works = True
    m.teardown()
