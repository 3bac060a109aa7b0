"""The fault phase protocol, written in ONE place: the proofs and the phase records.

A fault's life in the history is ``inject``, then ``effect`` (or
``effect_failed``), then ``heal``, then ``healed`` (or ``heal_failed``); the
checkers read exactly these records (:meth:`History.fault_windows`).  Two
callers drive a fault: :func:`chaos.faults.injected` (one async block) and
:class:`chaos.machine.ChaosMachine` (synchronous rules that run this module's
coroutines on their loop).  Both write the phases only through here, so the
records cannot drift apart between them.

* :func:`begin` writes ``inject`` (synchronous: the caller may register the
  fault before any async work starts, so that a half-done inject is healed);
* :func:`inject_and_prove` runs ``fault.inject()`` and :func:`prove_effect`;
* :func:`heal_and_prove` runs ``fault.heal()`` and :func:`prove_heal`.

Each records its outcome with the fault's evidence (success and failure
alike) and raises :class:`FaultNotProven` / :class:`FaultHealFailed`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from chaos.record.history import History, Record
from chaos.record.vocabulary import FaultPhase
from chaos.wait import WaitTimeout, eventually

T = TypeVar("T")


class FaultProtocol(Protocol):
    """What the phases use of a fault; :class:`chaos.faults.base.Fault` documents each member.

    A protocol rather than an import keeps the dependency one-way
    (``base`` -> ``phases``): ``injected()`` in ``base`` calls this module.
    """

    effect_timeout: float
    heal_timeout: float
    probe_timeout: float

    @property
    def name(self) -> str: ...

    @property
    def target(self) -> str: ...

    def describe(self) -> dict[str, Any]: ...

    async def evidence(self) -> dict[str, Any]: ...

    async def inject(self) -> None: ...

    async def heal(self) -> None: ...

    async def effect_present(self) -> bool: ...

    async def heal_present(self) -> bool: ...


#: What a caller that bounds a whole phase from outside adds to ``deadline`` +
#: one evidence read, so that the phase's own deadline always fires first and
#: the failure is recorded here rather than lost to an outer cancel.
OUTER_SLACK_S = 10.0


class FaultNotProven(AssertionError):
    """The fault's effect never showed within its deadline: a test error, never a pass."""


class FaultHealFailed(AssertionError):
    """The heal raised or its proof never held: the system may be left broken."""


class PhaseTimeout(TimeoutError):
    """A phase's work (inject+proof or heal+proof) overran the deadline its caller gave."""


async def _within(work: Awaitable[T], deadline: float | None, what: str) -> T:
    scope = asyncio.timeout(deadline)
    try:
        async with scope:
            return await work
    except TimeoutError as exc:
        if not scope.expired():  # the work's own timeout: report it as it is
            raise
        raise PhaseTimeout(f"{what} did not finish within {deadline:.1f}s") from exc


# -- the proofs ---------------------------------------------------------------
def _bounded(probe: Callable[[], Awaitable[bool]], timeout: float) -> Callable[[], Awaitable[bool]]:
    async def call() -> bool:
        async with asyncio.timeout(timeout):
            return await probe()

    return call


@dataclass(frozen=True)
class _Step:
    """One half of a fault's life: its action, what proves it, and how each outcome is written."""

    verb: str  # "inject of kill on r1 raised ..."
    proof: str  # "effect of kill on r1"
    act: Callable[[FaultProtocol], Callable[[], Awaitable[None]]]
    probe: Callable[[FaultProtocol], Callable[[], Awaitable[bool]]]
    patience: Callable[[FaultProtocol], float]
    done: FaultPhase
    failed: FaultPhase
    error: type[AssertionError]


_INJECT = _Step(
    "inject",
    "effect",
    act=lambda f: f.inject,
    probe=lambda f: f.effect_present,
    patience=lambda f: f.effect_timeout,
    done="effect",
    failed="effect_failed",
    error=FaultNotProven,
)
_HEAL = _Step(
    "heal",
    "heal",
    act=lambda f: f.heal,
    probe=lambda f: f.heal_present,
    patience=lambda f: f.heal_timeout,
    done="healed",
    failed="heal_failed",
    error=FaultHealFailed,
)


async def _prove(step: _Step, fault: FaultProtocol, timeout: float | None) -> float:
    start = time.monotonic()
    try:
        await eventually(
            _bounded(step.probe(fault), fault.probe_timeout),
            what=f"{step.proof} of {fault.name} on {fault.target}",
            timeout=step.patience(fault) if timeout is None else timeout,
        )
    except WaitTimeout as exc:
        raise step.error(str(exc)) from exc
    return time.monotonic() - start


async def prove_effect(fault: FaultProtocol, timeout: float | None = None) -> float:
    """Wait until the effect shows; return seconds waited.  Raises :class:`FaultNotProven`."""
    return await _prove(_INJECT, fault, timeout)


async def prove_heal(fault: FaultProtocol, timeout: float | None = None) -> float:
    """Wait until the heal shows; return seconds waited.  Raises :class:`FaultHealFailed`."""
    return await _prove(_HEAL, fault, timeout)


# -- the records --------------------------------------------------------------
async def safe_evidence(fault: FaultProtocol) -> dict[str, Any]:
    """``fault.evidence()``, or an ``evidence_error`` key; bounded by ``probe_timeout``.

    Evidence is a courtesy: it must never mask the real outcome, neither by
    raising nor by hanging (a hang would keep the phase record from being
    written at all).
    """
    try:
        return await _within(fault.evidence(), fault.probe_timeout, f"evidence of {fault.name}")
    except Exception as exc:
        return {"evidence_error": f"{type(exc).__name__}: {exc}"[:300]}


def outer_bound(fault: FaultProtocol, deadline: float) -> float:
    """How long a phase given ``deadline`` can take in all (its work, one evidence read, slack)."""
    return deadline + fault.probe_timeout + OUTER_SLACK_S


def begin(history: History, fault: FaultProtocol) -> Record:
    """Write the ``inject`` phase (with ``fault.describe()``); later phases refer to it."""
    return history.fault("inject", fault.name, fault.target, **fault.describe())


async def _act_then_prove(step: _Step, fault: FaultProtocol) -> float:
    await step.act(fault)()
    return await _prove(step, fault, None)


async def _run(
    step: _Step, fault: FaultProtocol, history: History, inject: Record, deadline: float | None
) -> float:
    """Act and prove within ``deadline``; write the step's success or failure phase."""
    what = f"{step.verb} of {fault.name} on {fault.target}"
    try:
        waited = await _within(_act_then_prove(step, fault), deadline, what)
    except Exception as exc:
        history.fault(
            step.failed,
            fault.name,
            fault.target,
            inject,
            error=f"{type(exc).__name__}: {exc}"[:1000],
            **await safe_evidence(fault),
        )
        if isinstance(exc, step.error):
            raise
        raise step.error(f"{what} raised: {exc}") from exc
    history.fault(
        step.done,
        fault.name,
        fault.target,
        inject,
        proof_s=round(waited, 3),
        **await safe_evidence(fault),
    )
    return waited


async def inject_and_prove(
    fault: FaultProtocol, history: History, inject: Record, *, deadline: float | None = None
) -> float:
    """Inject, prove the effect, write ``effect``; return seconds the proof took.

    On any failure (``inject()`` raised, the effect never showed, ``deadline``
    passed) writes ``effect_failed`` with ``error`` and the evidence and
    raises :class:`FaultNotProven`.  The caller heals: ``inject()`` may have
    done half its work.
    """
    return await _run(_INJECT, fault, history, inject, deadline)


async def heal_and_prove(
    fault: FaultProtocol, history: History, inject: Record, *, deadline: float | None = None
) -> float:
    """Write ``heal``, heal, prove the heal, write ``healed``; return seconds the proof took.

    On any failure writes ``heal_failed`` with ``error`` and the evidence and
    raises :class:`FaultHealFailed`.
    """
    history.fault("heal", fault.name, fault.target, inject)
    return await _run(_HEAL, fault, history, inject, deadline)
