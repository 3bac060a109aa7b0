"""What a hanging test leaves behind before pytest-timeout ends the session.

pytest-timeout's ``thread`` method (the suite's: it leaves the event loop's
signals alone) dumps stacks and ends the whole process with ``os._exit``: no
fixture teardown runs, so a hung test would leave nothing.  A watchdog timer
fires a little earlier (the timeout less 10 %, at most 30 s) and writes, into
the test's artifact folder:

* ``hang.txt``: what it waited for (the test, its timeout) and every thread's stack;
* ``history.jsonl``: the history up to the hang (the plugin streams it there as it
  grows; a history that is not streamed is saved now);
* ``timeline.json``: the fault windows so far;
* ``logs/<container>.log``: the tail of every container of this session.

If the test finishes first, the timer is cancelled and nothing is written.
"""

from __future__ import annotations

import faulthandler
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

from chaos.labels import LABEL_SESSION
from chaos.record.history import History

#: Lines of each container's log kept (the end is where the hang is).
LOG_TAIL = 2000


def fire_after(timeout_s: float) -> float:
    """When the watchdog fires: the timeout less 10 %, less at most 30 s."""
    return max(0.0, timeout_s - min(30.0, timeout_s * 0.1))


def _container_logs(session_id: str, folder: Path) -> str:
    """Every container of this session's log tail into ``folder``; a line on what happened."""
    try:
        import docker

        client = docker.from_env(timeout=10)
    except Exception as exc:  # no engine here: the rest of the dump still counts
        return f"container logs: none ({type(exc).__name__}: {exc})"
    try:
        containers = client.containers.list(
            all=True, filters={"label": f"{LABEL_SESSION}={session_id}"}
        )
        folder.mkdir(parents=True, exist_ok=True)
        for c in containers:
            (folder / f"{c.name}.log").write_bytes(c.logs(tail=LOG_TAIL, timestamps=True))
        return f"container logs: {len(containers)} in {folder}"
    except Exception as exc:
        return f"container logs: failed ({type(exc).__name__}: {exc})"
    finally:
        client.close()


class HangWatch:
    """A daemon timer that writes a hung test's artifacts (see the module docstring)."""

    def __init__(
        self,
        nodeid: str,
        timeout_s: float,
        folder: Path,
        session_id: str,
        history: Callable[[], History | None],
    ) -> None:
        self.nodeid = nodeid
        self.timeout_s = timeout_s
        self.folder = folder
        self.session_id = session_id
        self.history = history
        self.fired = threading.Event()
        self._timer = threading.Timer(fire_after(timeout_s), self.dump)
        self._timer.daemon = True
        self._started = time.monotonic()

    def start(self) -> HangWatch:
        self._timer.start()
        return self

    def cancel(self) -> None:
        self._timer.cancel()

    def dump(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        elapsed = time.monotonic() - self._started
        lines = [
            f"{self.nodeid} made no end after {elapsed:.0f}s; pytest-timeout ends the session "
            f"at {self.timeout_s:.0f}s. What each thread was waiting for:",
        ]
        history = self.history()
        if history is not None:
            if not history.streaming:
                # ``records`` is a copy taken under the history's lock: the test may append.
                history.save(self.folder / "history.jsonl")
            windows = [w.describe() for w in history.fault_windows()]
            (self.folder / "timeline.json").write_text(json.dumps(windows, indent=1) + "\n")
            lines.append(f"history: {len(history.records)} records, {len(windows)} fault windows")
        lines.append(_container_logs(self.session_id, self.folder / "logs"))
        with (self.folder / "hang.txt").open("w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n\n")
            fh.flush()
            faulthandler.dump_traceback(file=fh, all_threads=True)
        self.fired.set()
