"""Run the load sink in its own process, and read a process's CPU and memory.

The sink lives in a separate process so that the CPU the benchmark charges to
the driver is the driver's alone.  It is always stopped: :class:`SinkProcess`
is an async context manager that terminates it on any exit (Ctrl-C included),
and the sink also exits by itself when its stdin closes, so it cannot outlive
a parent that was killed outright.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import sys
from pathlib import Path
from types import TracebackType

from chaos.errors import SetupError

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0


def process_cpu_s(pid: int) -> float:
    """User+system CPU seconds of another process, from ``/proc/<pid>/stat``."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces; the fields after its ')' are fixed.
    fields = raw[raw.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def own_rss_mib() -> float:
    """This process's resident memory now (``/proc/self/statm``), else its peak."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class SinkProcess:
    """``python -m chaos.sut.loomcycle.bench_sink`` as a child process on 127.0.0.1.

    ``release()`` ends every held stream (SIGUSR1: a signal needs no file
    descriptor, so it works even when the driver has run out of them).
    """

    def __init__(
        self,
        *,
        hold_ms: float = 50.0,
        keepalive_ms: float = 5000.0,
        max_lifetime_s: float = 1800.0,
    ) -> None:
        self._args = [
            "--hold-ms",
            str(hold_ms),
            "--keepalive-ms",
            str(keepalive_ms),
            "--max-lifetime-s",
            str(max_lifetime_s),
        ]
        self._proc: asyncio.subprocess.Process | None = None
        self.port = 0

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("sink not started")
        return self._proc.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_s(self) -> float:
        return process_cpu_s(self.pid)

    def release(self) -> None:
        os.kill(self.pid, signal.SIGUSR1)

    async def __aenter__(self) -> SinkProcess:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "chaos.sut.loomcycle.bench_sink",
            *self._args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
            # Its own session: Ctrl-C reaches only the parent, which stops it in order.
            start_new_session=True,
        )
        try:
            self.port = await self._read_port()
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop()

    async def _read_port(self) -> int:
        assert self._proc is not None and self._proc.stdout is not None
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                line = (await self._proc.stdout.readline()).decode().strip()
        except TimeoutError:
            raise SetupError(
                f"the benchmark sink printed no LISTENING line within {START_TIMEOUT_S:.0f}s"
            ) from None
        word, _, port = line.partition(" ")
        if word != "LISTENING" or not port.isdigit():
            raise SetupError(f"the benchmark sink did not start: first line {line!r}")
        return int(port)

    async def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await proc.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
