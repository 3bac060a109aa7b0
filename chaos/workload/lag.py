"""The event loop's own lag, recorded next to the runs it could distort.

One loop drives every stream; if a blocking call sneaks onto it (a docker-py
call not sent to a thread, a huge JSON parse), every latency measured in that
stretch is the suite's, not the target's.  The sampler asks the loop to wake
it after ``interval_s`` and records how late it woke: the drift is the lag.
The sleep here is the measuring instrument, not a wait for some condition.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from types import TracebackType

from chaos.record.history import History


class LagSampler:
    """Async context manager: samples loop lag into ``history.lag`` while the block runs.

    Bounded in time and count: it stops by itself after ``max_duration_s``.
    """

    def __init__(
        self,
        history: History,
        *,
        interval_s: float = 0.1,
        max_duration_s: float = 4 * 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        self.history = history
        self.interval_s = interval_s
        self.max_duration_s = max_duration_s
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self.samples: list[float] = []

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def max_lag_s(self) -> float:
        return max(self.samples, default=0.0)

    async def __aenter__(self) -> LagSampler:
        self._task = asyncio.create_task(self._sample(), name="loop-lag-sampler")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _sample(self) -> None:
        deadline = self._clock() + self.max_duration_s
        max_samples = int(self.max_duration_s / self.interval_s) + 1
        for _ in range(max_samples):
            before = self._clock()
            await asyncio.sleep(self.interval_s)
            lag = max(0.0, self._clock() - before - self.interval_s)
            self.samples.append(lag)
            self.history.lag(lag)
            if self._clock() >= deadline:
                return
