"""The one phase writer: both callers (``injected()`` and ``ChaosMachine``) record the same phases.

Each scenario runs the same misbehaving in-memory fault once through
:func:`chaos.faults.injected` and once through a :class:`ChaosMachine`'s
``inject``/``heal`` rules, and compares the fault records they leave
(phase, name, target, reference, data; only the measured ``proof_s``
differs run to run).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis.stateful import rule
from test_faults_base import Switch

import chaos.faults
import chaos.faults.base
from chaos.faults import FaultHealFailed, FaultNotProven, injected, phases
from chaos.machine import ChaosMachine, MachineLoop, MachineRuntime, machine_loop
from chaos.record.history import History


class Witness(Switch):
    """``Switch`` that also reports evidence, so the records show where evidence goes."""

    async def evidence(self) -> dict[str, Any]:
        return {"broken": self.broken}


class Bench(ChaosMachine):
    """The bare machine: its only rule does nothing; the tests call inject/heal directly."""

    @rule()
    def noop(self) -> None:
        self.begin_step("noop")

    async def path_answers(self) -> bool:
        return True


@pytest.fixture
def loop() -> Iterator[MachineLoop]:
    with machine_loop() as the_loop:
        yield the_loop


Shape = tuple[str, str | None, str, bool, dict[str, Any]]


def fault_records(history: History) -> list[Shape]:
    """(name, target, phase, refers-to-the-inject, data without the measured proof time)."""
    records = [r for r in history.records if r.type == "fault"]
    inject = records[0].index
    return [
        (
            r.op,
            r.key,
            r.data["phase"],
            r.ref == inject,
            {k: v for k, v in r.data.items() if k not in ("phase", "proof_s")},
        )
        for r in records
    ]


def through_injected(loop: MachineLoop, fault: Switch) -> tuple[list[Shape], BaseException | None]:
    history = History()

    async def block() -> None:
        async with injected(fault, history):
            pass

    try:
        loop.run(block(), timeout=10, what="injected block")
    except (FaultNotProven, FaultHealFailed) as exc:
        return fault_records(history), exc
    return fault_records(history), None


def through_machine(loop: MachineLoop, fault: Switch) -> tuple[list[Shape], BaseException | None]:
    history = History()
    machine = Bench(MachineRuntime(loop, history))
    caught: BaseException | None = None
    try:
        machine.inject(fault)
        machine.heal(fault.target)
    except (FaultNotProven, FaultHealFailed) as exc:
        caught = exc
    records = fault_records(history)  # before teardown, which retries a failed heal
    fault.heal_works, fault.heal_raises = True, False  # let teardown leave the system whole
    machine.teardown()
    assert not machine.active and not fault.broken
    return records, caught


SCENARIOS: dict[str, tuple[dict[str, bool], list[str], type[BaseException] | None]] = {
    "success": ({}, ["inject", "effect", "heal", "healed"], None),
    "effect_not_proven": (
        {"inject_works": False},
        ["inject", "effect_failed", "heal", "healed"],
        FaultNotProven,
    ),
    "inject_raises": (
        {"inject_raises": True},
        ["inject", "effect_failed", "heal", "healed"],
        FaultNotProven,
    ),
    "heal_not_proven": (
        {"heal_works": False},
        ["inject", "effect", "heal", "heal_failed"],
        FaultHealFailed,
    ),
    "heal_raises": (
        {"heal_raises": True},
        ["inject", "effect", "heal", "heal_failed"],
        FaultHealFailed,
    ),
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_both_callers_write_identical_phase_records(loop: MachineLoop, scenario: str) -> None:
    knobs, expected, raised = SCENARIOS[scenario]
    block, block_exc = through_injected(loop, Witness(**knobs))
    machine, machine_exc = through_machine(loop, Witness(**knobs))

    assert [phase for _, _, phase, _, _ in block] == expected
    assert machine == block
    assert all(refers for _, _, phase, refers, _ in block if phase != "inject")
    assert type(block_exc) is type(machine_exc) and (raised is None or type(block_exc) is raised)
    assert str(block_exc) == str(machine_exc)
    for _, _, phase, _, data in block:
        if phase in ("effect_failed", "heal_failed"):
            assert set(data) == {"error", "broken"}, "failures carry the error and the evidence"
        if phase in ("effect", "healed"):
            assert set(data) == {"broken"}


async def test_a_proof_records_its_duration() -> None:
    history = History()
    async with injected(Witness(), history):
        pass
    effect, healed = (r for r in history.records if r.data.get("phase") in ("effect", "healed"))
    assert effect.data["proof_s"] >= 0 and healed.data["proof_s"] >= 0


class Stuck(Witness):
    """An inject that never returns (a hung docker call, say)."""

    async def inject(self) -> None:
        await asyncio.Event().wait()


async def test_a_phase_past_its_deadline_is_recorded_as_failed() -> None:
    history = History()
    fault = Stuck()
    record = phases.begin(history, fault)
    with pytest.raises(FaultNotProven, match=r"did not finish within 0\.2s"):
        await phases.inject_and_prove(fault, history, record, deadline=0.2)
    failed = history.records[-1]
    assert failed.data["phase"] == "effect_failed"
    assert failed.data["error"].startswith("PhaseTimeout: inject of switch on sys")


class OwnTimeout(Witness):
    async def inject(self) -> None:
        raise TimeoutError("the fault's own client gave up")


async def test_the_work_s_own_timeout_is_reported_as_it_is() -> None:
    history = History()
    fault = OwnTimeout()
    record = phases.begin(history, fault)
    with pytest.raises(FaultNotProven, match="own client gave up"):
        await phases.inject_and_prove(fault, history, record, deadline=5.0)
    assert history.records[-1].data["error"] == "TimeoutError: the fault's own client gave up"


class BadEvidence(Switch):
    def __init__(self, *, hang: bool) -> None:
        super().__init__()
        self.hang = hang

    async def evidence(self) -> dict[str, Any]:
        if self.hang:
            await asyncio.Event().wait()
        raise ValueError("docker said no")


async def test_evidence_never_masks_the_outcome() -> None:
    assert await phases.safe_evidence(Witness()) == {"broken": False}
    raising = await phases.safe_evidence(BadEvidence(hang=False))
    assert raising == {"evidence_error": "ValueError: docker said no"}
    async with asyncio.timeout(5):  # the test's guard: the evidence read bounds itself
        hanging = await phases.safe_evidence(BadEvidence(hang=True))
    assert "did not finish within 0.2s" in hanging["evidence_error"]


async def test_a_hanging_evidence_still_lets_the_phase_be_recorded() -> None:
    history = History()
    async with asyncio.timeout(5):
        async with injected(BadEvidence(hang=True), history):
            pass
    assert [r.data["phase"] for r in history.records] == ["inject", "effect", "heal", "healed"]
    assert "evidence_error" in history.records[1].data


def test_outer_bound_leaves_room_for_the_phase_deadline_and_one_evidence_read() -> None:
    fault = Witness()
    assert phases.outer_bound(fault, 3.0) > 3.0 + fault.probe_timeout


def test_the_proofs_stay_importable_where_they_were() -> None:
    for name in ("prove_effect", "prove_heal", "FaultNotProven", "FaultHealFailed"):
        assert getattr(chaos.faults, name) is getattr(phases, name)
        assert getattr(chaos.faults.base, name) is getattr(phases, name)
