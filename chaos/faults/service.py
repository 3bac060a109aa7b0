"""Faults at the service level: provider error storms and cancel storms.

Both need the target itself (loomcycle), which cannot be installed on this
machine, so they take the target-specific parts as callables that the
target adapter or the cluster supplies; their chaos tests skip here.  The
classes and the history records they write are fixed now so that scenarios
and checkers can be written against them.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from chaos.faults.base import Fault


class ProviderErrorStorm(Fault):
    """The model provider starts failing: a share of calls get 429 and/or 500.

    loomcycle's mock provider reads its error rates once at boot, so
    ``set_rates(rate_429, rate_500)`` is expected to reconfigure and restart
    the replicas (the caller's business); ``observed_error_rate()`` runs a
    small bounded sample of runs and returns the share that hit an injected
    provider error, or None when it could not tell (no runs finished).

    Effect: the observed error rate is at least ``min_observed`` (default
    half the configured total).  Heal: ``set_rates(0, 0)``; proven when the
    observed rate is 0.
    """

    name = "provider_storm"

    def __init__(
        self,
        target: str,
        set_rates: Callable[[float, float], Awaitable[None]],
        observed_error_rate: Callable[[], Awaitable[float | None]],
        rate_429: float = 0.5,
        rate_500: float = 0.0,
        min_observed: float | None = None,
    ) -> None:
        if not (0 <= rate_429 <= 1 and 0 <= rate_500 <= 1 and 0 < rate_429 + rate_500 <= 1):
            raise ValueError("rates must be in 0..1 and their sum in (0, 1]")
        self._target = target
        self.set_rates = set_rates
        self.observed_error_rate = observed_error_rate
        self.rate_429 = rate_429
        self.rate_500 = rate_500
        self.min_observed = (rate_429 + rate_500) / 2 if min_observed is None else min_observed
        self._seen: dict[str, Any] = {}
        self.effect_timeout = 60.0
        self.heal_timeout = 60.0

    @property
    def target(self) -> str:
        return self._target

    def describe(self) -> dict[str, Any]:
        return {
            "rate_429": self.rate_429,
            "rate_500": self.rate_500,
            "min_observed": self.min_observed,
        }

    async def evidence(self) -> dict[str, Any]:
        return dict(self._seen)

    async def inject(self) -> None:
        await self.set_rates(self.rate_429, self.rate_500)

    async def heal(self) -> None:
        await self.set_rates(0.0, 0.0)

    async def _rate(self, key: str) -> float | None:
        rate = await self.observed_error_rate()
        self._seen[key] = rate
        return rate

    async def effect_present(self) -> bool:
        rate = await self._rate("observed_rate")
        return rate is not None and rate >= self.min_observed

    async def healthy(self) -> bool:
        return await self._rate("observed_rate_after") == 0

    async def heal_present(self) -> bool:
        return await self.healthy()


class CancelStorm(Fault):
    """A background canceller, like loomcycle's own rig: every ``interval_s`` cancel the
    newest running run through a replica that does not own it.

    ``cancel_one()`` does one such cancel and returns its classification
    (a :data:`chaos.record.vocabulary.CancelClass` member), or None when no run was
    running.  The loop is bounded by ``max_cancels``.  Effect: at least
    ``min_cancels`` cancels reached a running run (classification not None).
    Heal: stop the loop and wait for it; proven when it has stopped.
    """

    name = "cancel_storm"

    def __init__(
        self,
        target: str,
        cancel_one: Callable[[], Awaitable[str | None]],
        interval_s: float = 0.2,
        max_cancels: int = 1000,
        min_cancels: int = 1,
    ) -> None:
        self._target = target
        self.cancel_one = cancel_one
        self.interval_s = interval_s
        self.max_cancels = max_cancels
        self.min_cancels = min_cancels
        self.counts: Counter[str] = Counter()
        self.errors: list[str] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.effect_timeout = 30.0

    @property
    def target(self) -> str:
        return self._target

    def describe(self) -> dict[str, Any]:
        return {"interval_s": self.interval_s, "max_cancels": self.max_cancels}

    async def evidence(self) -> dict[str, Any]:
        return {"cancels": dict(self.counts), "errors": self.errors[-5:]}

    async def _loop(self) -> None:
        for _ in range(self.max_cancels):
            if self._stop.is_set():
                return
            try:
                outcome = await self.cancel_one()
            except Exception as exc:  # one failed call must not end the storm silently
                self.errors.append(f"{type(exc).__name__}: {exc}"[:300])
                outcome = "error"
            self.counts[outcome or "no_running_run"] += 1
            # Wait for the stop signal, at most one interval: the pacing of the storm.
            try:
                async with asyncio.timeout(self.interval_s):
                    await self._stop.wait()
            except TimeoutError:
                continue

    async def inject(self) -> None:
        self._stop.clear()
        self._task = asyncio.create_task(self._loop(), name=f"cancel_storm:{self._target}")

    async def effect_present(self) -> bool:
        reached = sum(n for k, n in self.counts.items() if k not in ("no_running_run", "error"))
        return reached >= self.min_cancels

    async def heal(self) -> None:
        self._stop.set()
        if self._task is not None:
            async with asyncio.timeout(self.interval_s + 30):
                await asyncio.gather(self._task, return_exceptions=True)

    async def healthy(self) -> bool:
        return self._task is None or self._task.done()

    async def heal_present(self) -> bool:
        return await self.healthy()
