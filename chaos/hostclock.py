"""Host clock steps: the wall clock jumping against the monotonic clock.

Why the suite watches for them: the target judges a replica's staleness on
wall time (its sweeper compares ``now() - stale`` with ``last_heartbeat_at``,
loomcycle ``internal/coord/replicas_sweeper.go:141-144``) while its heartbeat
ticks on the monotonic clock (``replica_store.go:175``).  When the whole
machine stalls (a VM paused or descheduled) and its wall clock is then stepped
forward, a beat that came on time looks late by the step: with the suite's
60 s threshold and the target's 30 s beat, a step over 30 s reaps live
replicas, whatever the target does.  That happened once in a CI run
(``docs/investigations/pause-reaps-live-replicas.md``: +30.8 s in 33 s).

:class:`ClockWatch` samples both clocks on a thread; :func:`steps_in` is the
pure part: consecutive samples whose wall and monotonic deltas differ by more
than :data:`STEP_THRESHOLD_S`.  A chaos test that fails with a step inside its
call is re-raised as :class:`HostClockStepped` (the original failure chained)
and run once more (pytest-rerunfailures, ``only_rerun``): the failure is the
host's, not yet the target's; the rerun judges every invariant again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: A step of the wall clock against the monotonic one larger than this is a host event:
#: NTP slews by at most 0.5 ms/s, so no correction reaches a second between samples.
STEP_THRESHOLD_S = 1.0
#: How often the watch samples both clocks.
SAMPLE_S = 0.25


@dataclass(frozen=True)
class ClockStep:
    """The wall clock moved ``seconds`` more than the monotonic clock (negative: less)
    between two samples; ``wall`` and ``mono`` are those of the later sample."""

    wall: float
    mono: float
    seconds: float

    def describe(self) -> str:
        at = time.strftime("%H:%M:%S", time.gmtime(self.wall))
        return f"{self.seconds:+.1f} s at {at} UTC"

    def to_dict(self) -> dict[str, float]:
        return {"wall": round(self.wall, 3), "mono": round(self.mono, 3), "seconds": self.seconds}


def steps_in(
    samples: Iterable[tuple[float, float]], threshold: float = STEP_THRESHOLD_S
) -> list[ClockStep]:
    """The steps between consecutive ``(mono, wall)`` samples."""
    found: list[ClockStep] = []
    last: tuple[float, float] | None = None
    for mono, wall in samples:
        if last is not None:
            gained = (wall - last[1]) - (mono - last[0])
            if abs(gained) > threshold:
                found.append(ClockStep(wall, mono, round(gained, 3)))
        last = (mono, wall)
    return found


class HostClockStepped(Exception):
    """A test failed while the host's wall clock stepped: its failure is chained."""

    def __init__(self, steps: Sequence[ClockStep]) -> None:
        self.steps = tuple(steps)
        described = ", ".join(s.describe() for s in self.steps)
        super().__init__(
            f"the host's wall clock stepped against its monotonic clock during this test "
            f"({described}); the target judges staleness on wall time, so this failure may "
            "be the host's: the test runs once more (the failure it raised is below)"
        )


class ClockWatch:
    """Samples ``(time.monotonic(), time.time())`` every :data:`SAMPLE_S` on a daemon
    thread and keeps every step it sees (a session sees a handful at most)."""

    def __init__(self, threshold: float = STEP_THRESHOLD_S) -> None:
        self.threshold = threshold
        self._lock = threading.Lock()
        self._last = (time.monotonic(), time.time())
        self._steps: list[ClockStep] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="loomchaos-clock", daemon=True)

    def start(self) -> ClockWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            self.sample()

    def sample(self) -> None:
        """Take one sample now (also called before a test's steps are read, so a step
        in its last quarter second is not missed)."""
        now = (time.monotonic(), time.time())
        with self._lock:
            self._steps += steps_in((self._last, now), self.threshold)
            self._last = now

    def record(self, step: ClockStep) -> None:
        with self._lock:
            self._steps.append(step)

    def steps_since(self, mono_from: float) -> list[ClockStep]:
        """Every step seen after monotonic ``mono_from``, up to a sample taken now."""
        self.sample()
        with self._lock:
            return [s for s in self._steps if s.mono > mono_from]
