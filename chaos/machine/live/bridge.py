"""A :class:`~chaos.machine.loop.MachineLoop` that runs each step on an event loop owned elsewhere.

The live machine drives a cluster that the session's fixtures opened on
pytest-asyncio's session loop: its Toxiproxy and HTTP clients belong to that
loop and cannot be used from a second one.  So the test (an ``async def`` on
the session loop) runs Hypothesis in a worker thread, and every step hands its
coroutine back to the session loop through this bridge, bounded by the step's
deadline.  While Hypothesis thinks, the session loop keeps running the
example's background work (streams of started runs, the snapshot sampler).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import Any, TypeVar

from chaos.machine.loop import MachineLoop, StepTimeout, bounded_step

T = TypeVar("T")

#: Extra time the calling thread gives the loop past the step's own deadline (the
#: deadline fires on the loop; this only guards against a loop that stopped turning).
THREAD_SLACK_S = 30.0


class SessionLoopBridge(MachineLoop):
    """Runs work on ``loop`` (running in another thread) and waits for it from this one."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # Deliberately not MachineLoop.__init__: the loop is borrowed, never created here.
        self._loop = loop
        self._owner_thread: int | None = None

    def run(self, work: Coroutine[Any, Any, T], *, timeout: float, what: str) -> T:
        """Run ``work`` on the borrowed loop; :class:`StepTimeout` after ``timeout``.

        Must not be called from the loop's own thread (it would wait on itself).
        """
        if self._loop.is_closed():
            work.close()
            raise RuntimeError(f"session loop is closed; cannot run {what}")
        if _running_loop() is self._loop:
            work.close()
            raise RuntimeError(f"{what}: the bridge was called on its own loop's thread")

        future = asyncio.run_coroutine_threadsafe(bounded_step(work, timeout, what), self._loop)
        try:
            return future.result(timeout=timeout + THREAD_SLACK_S)
        except TimeoutError:
            if future.done():  # the step's own StepTimeout (a TimeoutError too), raised above
                raise
            future.cancel()
            raise StepTimeout(
                f"{what}: the session loop did not answer within {timeout + THREAD_SLACK_S:.1f}s"
            ) from None

    def submit(self, work: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Start ``work`` on the loop now and return at once (a race's first half)."""
        return asyncio.run_coroutine_threadsafe(work, self._loop)

    def close(self) -> None:
        """Nothing to close: the loop belongs to the session."""


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
