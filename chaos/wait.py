"""Waiting on conditions with deadlines, never on bare sleeps.

Every wait in the suite goes through :func:`eventually` (async) or
:func:`eventually_sync` (threads, setup code).  Both poll a probe until it
returns a truthy value or the deadline passes, and on timeout raise
:class:`WaitTimeout` naming what was awaited and what the probe last saw, so
a failure explains itself without a debugger.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """A condition did not hold before its deadline."""

    def __init__(self, what: str, timeout: float, last_seen: str, extra: str = "") -> None:
        self.what = what
        self.timeout = timeout
        self.last_seen = last_seen
        msg = f"timed out after {timeout:.1f}s waiting for {what}; last seen: {last_seen}"
        if extra:
            msg += f"\n{extra}"
        super().__init__(msg)


def _describe(value: object, exc: BaseException | None) -> str:
    if exc is not None:
        return f"{type(exc).__name__}: {exc}"[:500]
    return repr(value)[:500]


async def eventually(
    probe: Callable[[], Awaitable[T]],
    *,
    what: str,
    timeout: float,
    interval: float = 0.2,
    context: Callable[[], Awaitable[str]] | None = None,
) -> T:
    """Await ``probe()`` until it returns something truthy; return that value.

    Exceptions raised by the probe count as "not yet" (a container that is
    still starting refuses connections); the last one is reported on timeout.
    ``context`` is called once on timeout to add, say, a container's log tail.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    last_exc: BaseException | None = None
    while True:
        try:
            last = await probe()
            last_exc = None
            if last:
                return last
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            last_exc = exc
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            extra = await context() if context is not None else ""
            raise WaitTimeout(what, timeout, _describe(last, last_exc), extra)
        await asyncio.sleep(min(interval, remaining))


def eventually_sync(
    probe: Callable[[], T],
    *,
    what: str,
    timeout: float,
    interval: float = 0.2,
    context: Callable[[], str] | None = None,
) -> T:
    """The blocking twin of :func:`eventually`, for set-up code running in threads."""
    deadline = time.monotonic() + timeout
    last: object = None
    last_exc: BaseException | None = None
    while True:
        try:
            last = probe()
            last_exc = None
            if last:
                return last
        except Exception as exc:
            last_exc = exc
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            extra = context() if context is not None else ""
            raise WaitTimeout(what, timeout, _describe(last, last_exc), extra)
        time.sleep(min(interval, remaining))
