"""Phases and waves: the one engine behind chaos scenarios and campaigns.

A phase is (scale, duration).  Within a phase, waves of ``scale`` units run
back to back, each with fresh agent and user ids, until the phase's time is
up (checked before each wave: a started wave is let finish, since cutting it
would cancel runs), its wave count is reached, or someone sets ``stop``.
Every wave is bounded in time too; a wave that overruns is cancelled (its
runs record ``info`` with ``cut=True, cancelled=True``) and ends the engine,
since a target that stalls one wave will stall the next.

Each wave's summary (wall time, completed, failed, p50/p99 run latency, the
loop's worst lag) is computed from the history alone by
:func:`summarize_wave`, so a saved history yields the same numbers offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from chaos.record.history import History, Record
from chaos.record.vocabulary import NOTE_PHASE, OP_START_RUN, OP_WAVE
from chaos.workload.driver import Driver
from chaos.workload.lag import LagSampler
from chaos.workload.shapes import WaveContext, Workload


@dataclass(frozen=True)
class Phase:
    """Run waves of ``scale`` units for ``duration_s`` seconds (and at most ``max_waves``)."""

    scale: int
    duration_s: float
    name: str = ""
    max_waves: int = 10_000

    def __post_init__(self) -> None:
        if self.scale < 1:
            raise ValueError(f"phase scale must be >= 1, got {self.scale}")
        if self.duration_s < 0 or self.max_waves < 0:
            raise ValueError("phase duration and max_waves must be >= 0")


def parse_phases(text: str) -> list[Phase]:
    """``"10x60,50x120"`` -> two phases: scale 10 for 60 s, then scale 50 for 120 s."""
    phases = []
    for i, part in enumerate(p.strip() for p in text.split(",") if p.strip()):
        scale, sep, duration = part.partition("x")
        if not sep:
            raise ValueError(f"phase {part!r}: expected SCALExSECONDS, e.g. 10x60")
        phases.append(Phase(int(scale), float(duration.rstrip("s")), name=f"{i}:{part}"))
    if not phases:
        raise ValueError("no phases given")
    return phases


@dataclass(frozen=True)
class WaveSummary:
    phase: str
    wave: str
    scale: int
    wall_s: float
    launched: int  # distinct runs (agent ids) started
    completed: int  # ended with ``done``
    failed: int  # refused, or ended with ``error``
    unknown: int  # ``info``: the stream broke or was cut
    rejected: int  # of the failed, refused before a stream (after retries)
    retries: int  # extra attempts after refusals
    p50_s: float | None  # run latency of completed runs, queue wait included
    p99_s: float | None
    max_lag_s: float
    timed_out: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile (no interpolation: every answer is an observed latency)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[rank - 1]


def summarize_wave(
    records: Sequence[Record],
    wave: str,
    *,
    phase: str = "",
    scale: int = 0,
    wall_s: float = 0.0,
    timed_out: bool = False,
) -> WaveSummary:
    """Summarise one wave from history records (a slice that covers the wave is enough).

    A run is its agent id; its final attempt decides how it is counted.
    Lag samples in ``records`` count toward the wave's worst lag.
    """
    completions = {r.ref: r for r in records if r.type in ("ok", "fail", "info")}
    final: dict[str, tuple[Record, Record | None]] = {}
    attempts = 0
    for rec in records:
        if rec.type != "invoke" or rec.op != OP_START_RUN or rec.data.get("wave") != wave:
            continue
        attempts += 1
        key = rec.key or f"#{rec.index}"
        prev = final.get(key)
        if prev is None or int(rec.data.get("attempt", 1)) >= int(prev[0].data.get("attempt", 1)):
            final[key] = (rec, completions.get(rec.index))
    completed: list[float] = []
    failed = unknown = rejected = 0
    for inv, done in final.values():
        if done is None or done.type == "info":
            unknown += 1
        elif done.type == "fail":
            failed += 1
            rejected += 1
        elif done.data.get("end") == "done":
            completed.append(done.mono - inv.mono)
        else:
            failed += 1
    lags = [float(r.data.get("lag_s", 0.0)) for r in records if r.type == "lag"]
    return WaveSummary(
        phase=phase,
        wave=wave,
        scale=scale,
        wall_s=wall_s,
        launched=len(final),
        completed=len(completed),
        failed=failed,
        unknown=unknown,
        rejected=rejected,
        retries=attempts - len(final),
        p50_s=percentile(completed, 50),
        p99_s=percentile(completed, 99),
        max_lag_s=max(lags, default=0.0),
        timed_out=timed_out,
    )


class PhaseEngine:
    """Runs a workload through phases and returns one :class:`WaveSummary` per wave.

    ``prefix`` is the test prefix (:func:`chaos.labels.test_prefix`); wave ids
    are ``<prefix>p<i>w<n>-...``.  ``wave_timeout_s`` bounds each wave; by
    default it is the driver's per-run bound times the number of rounds the
    launch gate needs for the wave.  Pass it explicitly when a per-user gate
    serialises more (several circuits per user under a small cap).
    ``lag_interval_s`` runs a :class:`LagSampler` for the engine's life (None: off).
    """

    def __init__(
        self,
        driver: Driver,
        workload: Workload,
        *,
        prefix: str,
        stop: asyncio.Event | None = None,
        wave_timeout_s: float | None = None,
        lag_interval_s: float | None = 0.1,
        on_wave: Callable[[WaveSummary], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.driver = driver
        self.workload = workload
        self.prefix = prefix
        self.stop = stop if stop is not None else asyncio.Event()
        self.wave_timeout_s = wave_timeout_s
        self.lag_interval_s = lag_interval_s
        self.on_wave = on_wave
        self._clock = clock

    @property
    def history(self) -> History:
        return self.driver.history

    def wave_bound_s(self, scale: int) -> float:
        if self.wave_timeout_s is not None:
            return self.wave_timeout_s
        rounds = math.ceil(scale * self.workload.runs_per_unit / self.driver.launch.slots)
        return max(1, rounds) * self.driver.run_bound_s

    async def run(self, phases: Sequence[Phase]) -> list[WaveSummary]:
        summaries: list[WaveSummary] = []
        sampler: contextlib.AbstractAsyncContextManager[Any] = (
            LagSampler(self.history, interval_s=self.lag_interval_s)
            if self.lag_interval_s
            else contextlib.nullcontext()
        )
        async with sampler:
            for index, phase in enumerate(phases):
                if self.stop.is_set():
                    break
                phase_waves = await self._phase(index, phase)
                summaries.extend(phase_waves)
                if any(s.timed_out for s in phase_waves):
                    break
        return summaries

    async def _phase(self, index: int, phase: Phase) -> list[WaveSummary]:
        name = phase.name or f"phase{index}"
        started = self._clock()
        self.history.note(NOTE_PHASE, phase=name, scale=phase.scale, duration_s=phase.duration_s)
        out: list[WaveSummary] = []
        for n in range(phase.max_waves):
            if self.stop.is_set() or self._clock() - started >= phase.duration_s:
                break
            ctx = WaveContext(
                prefix=f"{self.prefix}p{index}w{n}",
                phase=name,
                phase_index=index,
                wave=n,
                scale=phase.scale,
            )
            summary = await self._wave(ctx)
            out.append(summary)
            if summary.timed_out:
                break
        return out

    async def _wave(self, ctx: WaveContext) -> WaveSummary:
        first = len(self.history)
        started = self._clock()
        timed_out = False
        bound = asyncio.timeout(self.wave_bound_s(ctx.scale))
        try:
            async with bound:
                await self.workload.wave(self.driver, ctx)
        except TimeoutError:
            if not bound.expired():
                raise
            timed_out = True
        wall = self._clock() - started
        self.driver.users.forget_idle()
        summary = summarize_wave(
            self.history.records[first:],
            ctx.label,
            phase=ctx.phase,
            scale=ctx.scale,
            wall_s=wall,
            timed_out=timed_out,
        )
        self.history.note(OP_WAVE, **summary.as_dict())
        if self.on_wave is not None:
            self.on_wave(summary)
        return summary
