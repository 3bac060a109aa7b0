"""The nemesis contract, on an in-memory fault: phases, proofs, and heal on every exit path."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from chaos.faults import Fault, FaultHealFailed, FaultNotProven, injected, prove_effect, prove_heal
from chaos.record.history import History


class Switch(Fault):
    """A fault whose 'system' is one boolean; knobs make each step misbehave on demand."""

    effect_timeout = 0.5
    heal_timeout = 0.5
    probe_timeout = 0.2

    def __init__(
        self,
        *,
        inject_works: bool = True,
        heal_works: bool = True,
        inject_raises: bool = False,
        heal_raises: bool = False,
        effect_probe_hangs: bool = False,
        heal_gate: asyncio.Event | None = None,
    ) -> None:
        self.broken = False
        self.inject_works = inject_works
        self.heal_works = heal_works
        self.inject_raises = inject_raises
        self.heal_raises = heal_raises
        self.effect_probe_hangs = effect_probe_hangs
        self.heal_gate = heal_gate
        self.heal_started = asyncio.Event()
        self.heals = 0

    name = "switch"
    target = "sys"

    def describe(self) -> dict[str, Any]:
        return {"knob": 1}

    async def inject(self) -> None:
        if self.inject_works:
            self.broken = True
        if self.inject_raises:
            raise RuntimeError("inject blew up half way")

    async def heal(self) -> None:
        self.heal_started.set()
        if self.heal_gate is not None:
            await self.heal_gate.wait()
        self.heals += 1
        if self.heal_raises:
            raise RuntimeError("heal blew up")
        if self.heal_works:
            self.broken = False

    async def effect_present(self) -> bool:
        if self.effect_probe_hangs and self.broken:
            await asyncio.Event().wait()  # never set: a probe that hangs while broken
        return self.broken

    async def healthy(self) -> bool:
        return not self.broken


def phases(history: History) -> list[str]:
    return [r.data["phase"] for r in history.records if r.type == "fault"]


async def test_phases_in_order_and_window_proven() -> None:
    history = History()
    fault = Switch()
    async with injected(fault, history) as rec:
        assert fault.broken
        assert rec.data == {"phase": "inject", "knob": 1}
    assert not fault.broken
    assert phases(history) == ["inject", "effect", "heal", "healed"]
    [window] = history.fault_windows()
    assert window.effect_proven and window.heal_proven and window.end is not None


async def test_effect_that_never_shows_is_an_error_and_still_heals() -> None:
    history = History()
    fault = Switch(inject_works=False)
    with pytest.raises(FaultNotProven, match="effect of switch on sys"):
        async with injected(fault, history):
            pytest.fail("the body must not run without a proven effect")
    assert phases(history) == ["inject", "effect_failed", "heal", "healed"]
    assert fault.heals == 1
    assert not history.fault_windows()[0].effect_proven


async def test_inject_that_raises_is_not_proven_and_heals_what_it_did() -> None:
    history = History()
    fault = Switch(inject_raises=True)
    with pytest.raises(FaultNotProven, match="inject blew up"):
        async with injected(fault, history):
            pytest.fail("unreachable")
    assert not fault.broken and fault.heals == 1


async def test_hanging_probe_counts_as_not_yet_and_is_bounded() -> None:
    fault = Switch(effect_probe_hangs=True)
    with pytest.raises(FaultNotProven):
        async with asyncio.timeout(5):  # the test's own guard: the proof must end by itself
            async with injected(fault, History()):
                pytest.fail("unreachable")


async def test_exception_in_body_heals_and_propagates() -> None:
    history = History()
    fault = Switch()
    with pytest.raises(ZeroDivisionError):
        async with injected(fault, history):
            _ = 1 / 0
    assert not fault.broken
    assert phases(history)[-1] == "healed"


async def test_cancelled_task_heals_then_stays_cancelled() -> None:
    history = History()
    fault = Switch()
    inside = asyncio.Event()

    async def scenario() -> None:
        async with injected(fault, history):
            inside.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(scenario())
    await asyncio.wait_for(inside.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not fault.broken
    assert phases(history) == ["inject", "effect", "heal", "healed"]


async def test_cancel_during_heal_waits_for_the_heal() -> None:
    """A second cancel that lands while healing must not abandon the heal half done."""
    history = History()
    gate = asyncio.Event()
    fault = Switch(heal_gate=gate)
    inside = asyncio.Event()

    async def scenario() -> None:
        async with injected(fault, history):
            inside.set()

    task = asyncio.create_task(scenario())
    await asyncio.wait_for(fault.heal_started.wait(), 5)
    assert inside.is_set()
    task.cancel()  # lands while heal() waits on the gate
    await asyncio.sleep(0)  # let the cancel be delivered (not a synchronisation on time)
    assert not task.done(), "the heal must be waited for, not abandoned"
    gate.set()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert not fault.broken
    assert phases(history)[-1] == "healed"


async def test_heal_that_does_not_work_fails_loudly() -> None:
    history = History()
    fault = Switch(heal_works=False)
    with pytest.raises(FaultHealFailed, match="heal of switch"):
        async with injected(fault, history):
            pass
    assert phases(history) == ["inject", "effect", "heal", "heal_failed"]
    [window] = history.fault_windows()
    assert window.effect_proven and not window.heal_proven and window.end is None


async def test_heal_that_raises_fails_loudly_even_after_a_body_error() -> None:
    history = History()
    fault = Switch(heal_raises=True)
    with pytest.raises(FaultHealFailed) as info:
        async with injected(fault, history):
            raise KeyError("body")
    assert isinstance(info.value.__context__, KeyError)  # the body's error is kept, chained
    assert phases(history)[-1] == "heal_failed"


async def test_prove_helpers_for_state_machines() -> None:
    fault = Switch()
    with pytest.raises(FaultNotProven):
        await prove_effect(fault, timeout=0.3)  # control: a healthy system shows no effect
    await fault.inject()
    assert await prove_effect(fault) >= 0
    with pytest.raises(FaultHealFailed):
        await prove_heal(fault, timeout=0.3)  # still broken: the heal proof must fail
    await fault.heal()
    assert await prove_heal(fault) >= 0


async def test_self_test_returns_the_proven_window() -> None:
    from chaos.faults import self_test

    history = History()
    window = await self_test(Switch(), history)
    assert window.effect_proven and window.heal_proven and window.name == "switch"


async def test_self_test_fails_when_the_control_already_shows_the_effect() -> None:
    from chaos.faults import self_test

    fault = Switch()
    fault.broken = True  # the "healthy" system already looks broken: every proof would be vacuous
    with pytest.raises(FaultNotProven, match="control"):
        await self_test(fault, History())


async def test_self_test_fails_when_the_effect_never_shows() -> None:
    from chaos.faults import self_test

    with pytest.raises(FaultNotProven):
        await self_test(Switch(inject_works=False), History())
