"""The nemesis contract: inject, prove the effect, heal, prove the heal.

A fault that did not bite is a test bug (the scenario tested nothing), and
so is one that stays after the test (every later test runs on a broken
system).  So every fault states its effect as a probe through the data path
and :func:`injected` refuses to run the body until that probe holds, and
refuses to return until the heal probe holds, on every exit path.

``inject()``/``heal()`` are plain async methods so that a Hypothesis state
machine can call them as rules; the phases and their records are written by
:mod:`chaos.faults.phases`, which such callers use too (so both write the
same records), and :func:`prove_effect`/:func:`prove_heal` give them the bare
proofs.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any

from chaos.faults.phases import (
    FaultHealFailed,
    FaultNotProven,
    begin,
    heal_and_prove,
    inject_and_prove,
    prove_effect,
    prove_heal,
)
from chaos.record.history import FaultWindow, History, Record

__all__ = [
    "Fault",
    "FaultHealFailed",
    "FaultNotProven",
    "injected",
    "prove_effect",
    "prove_heal",
    "self_test",
]


class Fault(abc.ABC):
    """One nemesis.  Subclasses state their effect and heal in their docstring.

    ``heal()`` must be idempotent and safe after a failed or partial
    ``inject()``: :func:`injected` calls it on every exit path.
    Probes must bound their own time; :func:`injected` also wraps each call
    in ``probe_timeout`` so a hanging probe counts as "not yet".
    """

    effect_timeout: float = 15.0
    heal_timeout: float = 30.0
    probe_timeout: float = 10.0

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """The history name (:mod:`chaos.record.vocabulary`): ``kill``, ``link:black_hole``..."""

    @property
    @abc.abstractmethod
    def target(self) -> str:
        """What is hit: a replica id, a container name or a link name."""

    def describe(self) -> dict[str, Any]:
        """Parameters recorded with the ``inject`` phase."""
        return {}

    async def evidence(self) -> dict[str, Any]:
        """What the last effect/heal probe saw, recorded with the proof."""
        return {}

    @abc.abstractmethod
    async def inject(self) -> None: ...

    @abc.abstractmethod
    async def heal(self) -> None: ...

    @abc.abstractmethod
    async def effect_present(self) -> bool:
        """True when the stated effect shows through the data path."""

    @abc.abstractmethod
    async def healthy(self) -> bool:
        """True when the target's data path answers as on a healthy system."""

    async def heal_present(self) -> bool:
        """The heal proof: healthy, and the effect is gone."""
        return await self.healthy() and not await self.effect_present()


async def _shielded(work: Awaitable[object]) -> None:
    """Run ``work`` to completion even if this task is cancelled meanwhile.

    ``asyncio.shield`` alone returns at the first cancel and leaves the heal
    running unobserved; here we keep waiting, then re-raise the cancel so
    the caller still sees it once the system is whole again.
    """
    task = asyncio.ensure_future(work)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done() and task.cancelled():
                raise
            cancelled = True
    task.result()
    if cancelled:
        raise asyncio.CancelledError


@asynccontextmanager
async def injected(fault: Fault, history: History) -> AsyncIterator[Record]:
    """Inject ``fault``, prove its effect, yield; on exit heal it and prove the heal.

    The value yielded is the ``inject`` record (later phases refer to it).

    History phases: ``inject``, then ``effect`` (or ``effect_failed``), then
    ``heal`` and ``healed`` (or ``heal_failed``).  The heal runs on every
    exit path: normal exit, an exception in the body, a failed effect proof,
    a failed ``inject()``, and task cancellation (shielded: a cancel during
    the heal waits for it, then propagates).
    """
    record = begin(history, fault)
    try:
        await inject_and_prove(fault, history, record)
        yield record
    finally:
        await _shielded(heal_and_prove(fault, history, record))


async def self_test(fault: Fault, history: History) -> FaultWindow:
    """A fault's full proof cycle, as every fault test and a gate's preflight run it.

    Control first (the effect probe must say "no effect" on a healthy system,
    or every later proof is vacuous), then :func:`injected` (effect proven,
    effect still present inside the block, heal proven), and the one fault
    window it left in ``history``.  Raises :class:`FaultNotProven` when the
    control or the effect fails.
    """
    if await fault.effect_present():
        raise FaultNotProven(f"control: {fault.name} on {fault.target} shows its effect already")
    async with injected(fault, history) as record:
        if not await fault.effect_present():
            raise FaultNotProven(f"{fault.name} on {fault.target} stopped biting inside its block")
    [window] = [
        w for w in history.fault_windows() if w.start == record.mono and w.name == fault.name
    ]
    return window
