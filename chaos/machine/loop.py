"""One event loop that a synchronous Hypothesis state machine drives step by step.

Hypothesis calls rules as plain functions, but the suite's clients (asyncpg
connections, the Toxiproxy httpx client) are bound to the loop that opened
them.  So a machine run owns ONE loop for its whole life (every example,
every rule, the rig's set-up and removal) and each rule runs its async work
on it with :meth:`MachineLoop.run`, bounded by a deadline so a hung probe
fails the step instead of stalling the run.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


class StepTimeout(TimeoutError):
    """A machine step's async work did not finish within its deadline."""


async def bounded_step(work: Coroutine[Any, Any, T], timeout: float, what: str) -> T:
    """Await ``work``; :class:`StepTimeout` (naming ``what``) if it takes over ``timeout``."""
    scope = asyncio.timeout(timeout)
    try:
        async with scope:
            return await work
    except TimeoutError as exc:
        if scope.expired():  # ours, not a timeout raised inside ``work``
            raise StepTimeout(f"{what} did not finish within {timeout:.1f}s") from exc
        raise


class MachineLoop:
    """An event loop owned by one machine run; call :meth:`close` (or use :func:`machine_loop`)."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def run(self, work: Coroutine[Any, Any, T], *, timeout: float, what: str) -> T:
        """Run ``work`` to completion on this loop, or raise :class:`StepTimeout` after ``timeout``.

        Must be called from synchronous code: the loop cannot run inside
        another running loop on the same thread (drive machines from sync
        tests, not ``async def`` ones).
        """
        if self._loop.is_closed():
            work.close()
            raise RuntimeError(f"machine loop is closed; cannot run {what}")

        async def bounded() -> T:
            return await bounded_step(work, timeout, what)

        return self._loop.run_until_complete(bounded())

    def close(self) -> None:
        """Cancel whatever is still pending (bounded), then close the loop."""
        if self._loop.is_closed():
            return
        pending = [t for t in asyncio.all_tasks(self._loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            self._loop.run_until_complete(asyncio.wait(pending, timeout=10))
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()


@contextlib.contextmanager
def machine_loop() -> Iterator[MachineLoop]:
    """``with machine_loop() as loop:`` a loop for one machine run, closed on the way out."""
    loop = MachineLoop()
    try:
        yield loop
    finally:
        loop.close()
