"""chaos.schedule: seeded concrete schedules (determinism, ranges, JSON) and their runner."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from chaos.record.history import History
from chaos.record.vocabulary import NOTE_SCHEDULE
from chaos.schedule import (
    After,
    AnyOf,
    At,
    Between,
    Choose,
    Chosen,
    Fault,
    Heal,
    Item,
    Load,
    Opened,
    Quiesce,
    Schedule,
    ScheduleError,
    Step,
    StepTimeout,
    Until,
    run_schedule,
)
from chaos.seeds import FAULTS, stream

REPLICAS = ("r1", "r2", "r3")


def jepsen_spec() -> list[Item]:
    """The module doc's example: load 20 s; kill a random replica in [5, 10] s; heal
    after [3, 8] s; quiesce."""
    return [
        Load(duration_s=20),
        At(between=(5, 10), do=Fault("kill", target=AnyOf(REPLICAS))),
        After(between=(3, 8), do=Heal()),
        Quiesce(),
    ]


# -- building ---------------------------------------------------------------------------
def test_same_seed_same_bytes_other_seed_other_schedule() -> None:
    assert (
        Schedule.build(42, jepsen_spec()).to_json() == Schedule.build(42, jepsen_spec()).to_json()
    )
    distinct = {Schedule.build(seed, jepsen_spec()).to_json() for seed in range(20)}
    assert len(distinct) == 20


def test_draws_come_from_the_faults_stream_only() -> None:
    """Drawing from other streams (or the global random) changes nothing."""
    first = Schedule.build(42, jepsen_spec())
    random.random()
    stream(42, "workload").random()
    assert Schedule.build(42, jepsen_spec()) == first
    kill_at = first.first("kill").at_s
    assert kill_at == round(stream(42, FAULTS).uniform(5, 10), 3)


@pytest.mark.parametrize("seed", range(50))
def test_every_draw_respects_its_range(seed: int) -> None:
    schedule = Schedule.build(seed, jepsen_spec())
    load, kill, heal, end, quiesce = schedule.steps
    assert (load.kind, load.at_s, load.params["duration_s"]) == ("load", 0.0, 20.0)
    assert kill.kind == "fault" and 5 <= kill.at_s <= 10 and kill.target in REPLICAS
    assert heal.kind == "heal" and 3 <= round(heal.at_s - kill.at_s, 3) <= 8
    assert heal.target == kill.target and heal.params == {"fault": "kill", "of": kill.index}
    assert (end.kind, end.at_s, end.params["of"]) == ("end", 20.0, load.index)
    assert quiesce.kind == "quiesce" and quiesce.at_s == 20.0
    assert [s.index for s in schedule.steps] == list(range(5))


def test_json_round_trip_and_frozen() -> None:
    schedule = Schedule.build(3, jepsen_spec())
    again = Schedule.from_json(schedule.to_json())
    assert again == schedule and again.to_json() == schedule.to_json()
    with pytest.raises(TypeError):
        schedule.steps[1].params["x"] = 1  # type: ignore[index]
    with pytest.raises(AttributeError):
        schedule.steps[1].at_s = 0.0  # type: ignore[misc]


def test_recorded_in_the_history_and_read_back() -> None:
    history = History(seed=3)
    schedule = Schedule.build(3, jepsen_spec())
    schedule.record(history)
    [note] = history.records
    assert note.op == NOTE_SCHEDULE and note.data["steps"][1]["op"] == "kill"
    assert Schedule.recorded(history) == [schedule]


def test_a_gate_starts_a_phase_and_a_choice_is_shared() -> None:
    schedule = Schedule.build(
        9,
        [
            Choose("victim", REPLICAS),
            Load(),
            Until("owns_runs", target=Chosen("victim"), params={"min_runs": 2}),
            At((2, 6), Fault("kill", Chosen("victim"), params={"signal": AnyOf(["KILL"])})),
            Heal(),
            Quiesce(timeout_s=300),
        ],
    )
    load, gate, kill, heal, end, quiesce = schedule.steps
    victim = schedule.bindings["victim"]
    assert victim in REPLICAS and gate.target == kill.target == heal.target == victim
    assert (gate.phase, gate.at_s, gate.params) == (0, 0.0, {"min_runs": 2})
    assert kill.phase == 1 and 2 <= kill.at_s <= 6 and kill.params == {"signal": "KILL"}
    assert heal.at_s == kill.at_s and end.params == {"load": "load", "of": load.index}
    assert end.timeout_s == quiesce.timeout_s == 300.0


def test_quiesce_closes_what_is_open_latest_first_after_everything() -> None:
    schedule = Schedule.build(
        1,
        [
            Load(name="reads"),
            At(1, Fault("pause", "r1")),
            At(2, Fault("cut", "r2", params={"ms": Between(10, 20)})),
            At(30, Fault("kill", "r3")),
            After(1, Heal("kill")),
            Quiesce(),
        ],
    )
    tail = [(s.kind, s.target, s.at_s) for s in schedule.steps[-5:]]
    assert tail == [
        ("heal", "r3", 31.0),
        ("heal", "r2", 31.0),
        ("heal", "r1", 31.0),
        ("end", None, 31.0),
        ("quiesce", None, 31.0),
    ]
    assert 10 <= schedule.first("cut").params["ms"] <= 20


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([Heal()], "no such fault"),
        ([At(10, Fault("kill", "r1")), At(5, Heal())], "before its fault"),
        ([Fault("kill", Chosen("v"))], "before any Choose"),
        ([Quiesce(), Load()], "nothing may follow"),
        ([At(1, Until("x"))], "cannot be timed"),
        ([Choose("v", REPLICAS), Choose("v", REPLICAS)], "chosen twice"),
        ([Fault("kill", "r1", timeout_s=0)], "timeout_s"),
    ],
)
def test_specs_that_cannot_be_made_concrete(items: list[Item], message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        Schedule.build(1, items)


def test_bad_ranges_and_choices_fail_at_once() -> None:
    with pytest.raises(ValueError):
        At((5, 2), Heal())
    with pytest.raises(ValueError):
        After((-1, 2), Heal())
    with pytest.raises(ValueError):
        AnyOf([])
    with pytest.raises(ValueError):
        AnyOf("r1")


# -- running ----------------------------------------------------------------------------
class FakeClock:
    """Monotonic seconds that move only when the runner sleeps or an action says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


class Recorder:
    """Actions that log (time, what) on the fake clock."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.log: list[tuple[float, str]] = []

    def mark(self, what: str) -> None:
        self.log.append((round(self.clock.now, 3), what))

    @asynccontextmanager
    async def context(self, name: str) -> AsyncIterator[None]:
        self.mark(f"enter {name}")
        try:
            yield
        finally:
            self.mark(f"exit {name}")

    async def load(self, step: Step) -> Opened:
        return self.context(step.op)

    async def kill(self, step: Step) -> Opened:
        self.mark(f"kill {step.target}")
        self.clock.now += 4.0  # the effect proof takes a while: the heal starts late

        async def heal() -> None:
            self.mark(f"heal {step.target}")

        return heal

    async def gate(self, step: Step) -> Opened:
        self.clock.now += 7.0  # the condition took 7 s to hold
        self.mark(f"gate {step.target}")
        return None


async def test_runner_keeps_order_times_and_records_when_each_step_ran() -> None:
    clock = FakeClock()
    rec = Recorder(clock)
    history = History(seed=5)
    schedule = Schedule.build(
        5,
        [
            Choose("victim", REPLICAS),
            Load(),
            Until("owns", target=Chosen("victim")),
            At((2, 6), Fault("kill", Chosen("victim"))),
            After(1, Heal()),
            Quiesce(),
        ],
    )
    victim, kill_at = schedule.bindings["victim"], schedule.first("kill").at_s
    result = await run_schedule(
        schedule,
        {"load": rec.load, "owns": rec.gate, "kill": rec.kill},
        history=history,
        clock=clock,
        sleep=clock.sleep,
    )
    # The kill is due kill_at after the gate held (at 7 s); its proof takes 4 s, so the
    # heal due 1 s after the kill starts 3 s late.
    assert rec.log == [
        (0.0, "enter load"),
        (7.0, f"gate {victim}"),
        (round(7.0 + kill_at, 3), f"kill {victim}"),
        (round(7.0 + kill_at + 4.0, 3), f"heal {victim}"),
        (round(7.0 + kill_at + 4.0, 3), "exit load"),
    ]
    heal = result.of(schedule.first("heal").index)
    assert heal.due_s == round(7.0 + kill_at + 1.0, 3)
    assert heal.late_s == pytest.approx(3.0) and heal.outcome == "ok"
    assert result.of(schedule.first("kill").index).late_s == 0.0
    notes = [r.data for r in history.records if r.op == NOTE_SCHEDULE]
    assert "steps" in notes[0] and [n["ran"] for n in notes[1:]] == list(range(6))
    assert Schedule.recorded(history) == [schedule]


async def test_a_step_past_its_deadline_fails_and_everything_open_is_closed() -> None:
    rec = Recorder(FakeClock())
    history = History(seed=1)
    never = asyncio.Event()

    async def hang(step: Step) -> Opened:
        await never.wait()
        return None

    schedule = Schedule.build(1, [Load(), Fault("stall", "r1", timeout_s=0.05), Quiesce()])
    with pytest.raises(StepTimeout, match="stall r1"):
        await run_schedule(schedule, {"load": rec.load, "stall": hang}, history=history)
    assert [what for _, what in rec.log] == ["enter load", "exit load"]
    outcomes = [r.data.get("outcome") for r in history.records if "ran" in r.data]
    assert outcomes == ["ok", "error"]
    assert any("closed_at_exit" in r.data for r in history.records)


async def test_an_actions_own_timeout_is_not_the_steps() -> None:
    async def gives_up(step: Step) -> Opened:
        raise TimeoutError("the action's own wait")

    schedule = Schedule.build(1, [Fault("kill", "r1"), Quiesce()])
    with pytest.raises(TimeoutError, match="own wait") as info:
        await run_schedule(schedule, {"kill": gives_up})
    assert not isinstance(info.value, StepTimeout)


class NotProven(AssertionError):
    pass


async def test_a_tolerated_error_is_recorded_and_its_heal_skipped() -> None:
    clock = FakeClock()
    rec = Recorder(clock)

    async def fails(step: Step) -> Opened:
        raise NotProven("effect never showed")

    schedule = Schedule.build(
        2, [Load(duration_s=10), At(1, Fault("kill", "r1")), After(1, Heal()), Quiesce()]
    )
    result = await run_schedule(
        schedule,
        {"load": rec.load, "kill": fails},
        tolerate=(NotProven,),
        clock=clock,
        sleep=clock.sleep,
    )
    assert [type(e) for e in result.tolerated] == [NotProven]
    assert [r.outcome for r in result.ran] == ["ok", "tolerated", "skipped", "ok", "ok"]
    assert rec.log == [(0.0, "enter load"), (10.0, "exit load")]


async def test_missing_actions_fail_before_anything_runs() -> None:
    schedule = Schedule.build(1, jepsen_spec())
    history = History()
    with pytest.raises(ScheduleError, match="kill"):
        await run_schedule(schedule, {"load": Recorder(FakeClock()).load}, history=history)
    assert not history.records


async def test_on_the_real_loop_no_step_runs_early() -> None:
    """Short real times: each step starts at or after its moment, in order."""
    started: list[tuple[str, float]] = []
    loop = asyncio.get_running_loop()
    t0 = loop.time()

    async def act(step: Step) -> Opened:
        started.append((step.op, loop.time() - t0))
        return None

    async def quiesce(step: Step) -> Any:
        started.append(("quiesce", loop.time() - t0))

    schedule = Schedule.build(
        4,
        [At((0.02, 0.05), Fault("a", "x")), After((0.01, 0.03), Fault("b", "y")), Quiesce()],
    )
    result = await run_schedule(schedule, {"a": act, "b": act, "quiesce": quiesce})
    assert [op for op, _ in started] == ["a", "b", "quiesce"]
    for step_run in result.ran:
        assert step_run.started_s >= step_run.due_s - 0.002  # never early (ms rounding)
    assert started[1][1] >= schedule.first("b").at_s - 0.002
