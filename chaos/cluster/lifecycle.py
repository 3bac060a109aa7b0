"""Tear clusters down even when the test process is interrupted.

Three ways a session ends early, and what covers each:

* Ctrl-C (SIGINT): Python raises ``KeyboardInterrupt`` (or asyncio's runner
  cancels the running task); :meth:`Cluster.start` and the fixtures tear down
  on ``BaseException``, and the ``atexit`` hook below catches anything left.
* SIGTERM (CI cancelling a job): by default it kills Python without running
  ``atexit``; :func:`install` turns it into ``KeyboardInterrupt`` so the path
  above runs.  Only when nobody else handles SIGTERM, and only from the main
  thread (the only place Python allows it).
* SIGKILL: nothing can run; the next session's :func:`chaos.cluster.sweep.sweep_orphans`
  finds objects whose ``io.loomchaos.pid`` process is gone and removes them.

The registry holds plain synchronous teardown callables: at interpreter exit
there is no event loop left to run coroutines on.
"""

from __future__ import annotations

import atexit
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

_live: dict[str, Callable[[], object]] = {}
_lock = threading.Lock()
_installed = False


def register(cluster_id: str, teardown_sync: Callable[[], object]) -> None:
    """Remember a cluster that must be removed at exit unless it is unregistered first."""
    install()
    with _lock:
        _live[cluster_id] = teardown_sync


def unregister(cluster_id: str) -> None:
    with _lock:
        _live.pop(cluster_id, None)


def live_clusters() -> list[str]:
    with _lock:
        return list(_live)


def teardown_all() -> None:
    """Run every registered teardown; one failure does not stop the others."""
    with _lock:
        pending = list(_live.items())
        _live.clear()
    for cluster_id, teardown in pending:
        try:
            teardown()
        except Exception as exc:  # at exit there is nobody left to raise to
            print(f"loomchaos: teardown of cluster {cluster_id} failed: {exc}", file=sys.stderr)


def _sigterm_as_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def install() -> None:
    """Register the ``atexit`` hook and the SIGTERM conversion, once per process."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    atexit.register(teardown_all)
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread and signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
