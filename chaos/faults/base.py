"""The nemesis contract: inject, prove the effect, heal, prove the heal.

A fault that did not bite is a test bug (the scenario tested nothing), and
so is one that stays after the test (every later test runs on a broken
system).  So every fault states its effect as a probe through the data path
and :func:`injected` refuses to run the body until that probe holds, and
refuses to return until the heal probe holds, on every exit path.

``inject()``/``heal()`` are plain async methods so that a Hypothesis state
machine can call them as rules; :func:`prove_effect` and :func:`prove_heal`
give such callers the same proofs.
"""

from __future__ import annotations

import abc
import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from chaos.record.history import FaultWindow, History, Record
from chaos.wait import WaitTimeout, eventually


class FaultNotProven(AssertionError):
    """The fault's effect never showed within its deadline: a test error, never a pass."""


class FaultHealFailed(AssertionError):
    """The heal raised or its proof never held: the system may be left broken."""


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


def _bounded(probe: Callable[[], Awaitable[bool]], timeout: float) -> Callable[[], Awaitable[bool]]:
    async def call() -> bool:
        async with asyncio.timeout(timeout):
            return await probe()

    return call


async def prove_effect(fault: Fault, timeout: float | None = None) -> float:
    """Wait until the effect shows; return seconds waited.  Raises :class:`FaultNotProven`."""
    start = time.monotonic()
    try:
        await eventually(
            _bounded(fault.effect_present, fault.probe_timeout),
            what=f"effect of {fault.name} on {fault.target}",
            timeout=fault.effect_timeout if timeout is None else timeout,
        )
    except WaitTimeout as exc:
        raise FaultNotProven(str(exc)) from exc
    return time.monotonic() - start


async def prove_heal(fault: Fault, timeout: float | None = None) -> float:
    """Wait until the heal shows; return seconds waited.  Raises :class:`FaultHealFailed`."""
    start = time.monotonic()
    try:
        await eventually(
            _bounded(fault.heal_present, fault.probe_timeout),
            what=f"heal of {fault.name} on {fault.target}",
            timeout=fault.heal_timeout if timeout is None else timeout,
        )
    except WaitTimeout as exc:
        raise FaultHealFailed(str(exc)) from exc
    return time.monotonic() - start


async def _heal_and_prove(fault: Fault, history: History, inject: Record) -> None:
    history.fault("heal", fault.name, fault.target, inject)
    try:
        await fault.heal()
        waited = await prove_heal(fault)
    except Exception as exc:
        history.fault(
            "heal_failed",
            fault.name,
            fault.target,
            inject,
            error=f"{type(exc).__name__}: {exc}"[:1000],
            **await _safe_evidence(fault),
        )
        if isinstance(exc, FaultHealFailed):
            raise
        raise FaultHealFailed(f"heal of {fault.name} on {fault.target} raised: {exc}") from exc
    history.fault(
        "healed",
        fault.name,
        fault.target,
        inject,
        proof_s=round(waited, 3),
        **await _safe_evidence(fault),
    )


async def _safe_evidence(fault: Fault) -> dict[str, Any]:
    try:
        return await fault.evidence()
    except Exception as exc:  # evidence is a courtesy; it must never mask the real outcome
        return {"evidence_error": f"{type(exc).__name__}: {exc}"[:300]}


async def _shielded(work: Awaitable[None]) -> None:
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
    record = history.fault("inject", fault.name, fault.target, **fault.describe())
    try:
        try:
            await fault.inject()
            waited = await prove_effect(fault)
        except Exception as exc:
            history.fault(
                "effect_failed",
                fault.name,
                fault.target,
                record,
                error=f"{type(exc).__name__}: {exc}"[:1000],
                **await _safe_evidence(fault),
            )
            if isinstance(exc, FaultNotProven):
                raise
            raise FaultNotProven(f"inject of {fault.name} on {fault.target} raised: {exc}") from exc
        history.fault(
            "effect",
            fault.name,
            fault.target,
            record,
            proof_s=round(waited, 3),
            **await _safe_evidence(fault),
        )
        yield record
    finally:
        await _shielded(_heal_and_prove(fault, history, record))


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
