"""Numbers a campaign computes from its history: per-wave rows, cancels, load split, and the
confidence interval ``compare`` reports.  Pure functions of records and rows (unit-tested).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scipy import stats as scipy_stats

from chaos.record.history import Record
from chaos.record.vocabulary import OP_CANCEL, OP_START_RUN, RunRow
from chaos.workload.phases import WaveSummary, percentile


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0


def final_ends(records: Sequence[Record]) -> dict[str, tuple[Record, Record | None]]:
    """Each run's (agent id's) final start_run attempt and its completion (None if open)."""
    completions = {r.ref: r for r in records if r.type in ("ok", "fail", "info")}
    final: dict[str, tuple[Record, Record | None]] = {}
    for rec in records:
        if rec.type == "invoke" and rec.op == OP_START_RUN and rec.key is not None:
            prev = final.get(rec.key)
            if prev is None or int(rec.data.get("attempt", 1)) >= int(
                prev[0].data.get("attempt", 1)
            ):
                final[rec.key] = (rec, completions.get(rec.index))
    return final


def completed_circuits(records: Sequence[Record]) -> list[tuple[str, str]]:
    """``(circuit id, user id)`` of every circuit whose runs all ended with ``done``."""
    members: dict[tuple[str, str], list[bool]] = {}
    for inv, done in final_ends(records).values():
        circuit, user = inv.data.get("circuit"), inv.data.get("user_id")
        if circuit is None or user is None:
            continue
        ok = done is not None and done.type == "ok" and done.data.get("end") == "done"
        members.setdefault((str(circuit), str(user)), []).append(ok)
    return sorted(key for key, oks in members.items() if oks and all(oks))


def wave_circuits(records: Sequence[Record], wave: str) -> int:
    """Circuits started in ``wave`` (0 for single-agent runs)."""
    return len(
        {
            (r.data.get("circuit"), r.data.get("user_id"))
            for r in records
            if r.type == "invoke"
            and r.op == OP_START_RUN
            and r.data.get("wave") == wave
            and r.data.get("circuit") is not None
        }
    )


def completed_latencies(records: Sequence[Record], wave: str) -> list[float]:
    """Seconds from the invoke to ``done`` of every run of ``wave`` that completed."""
    invokes = {
        r.index: r
        for r in records
        if r.type == "invoke" and r.op == OP_START_RUN and r.data.get("wave") == wave
    }
    return [
        r.mono - invokes[r.ref].mono
        for r in records
        if r.type == "ok" and r.ref in invokes and r.data.get("end") == "done"
    ]


@dataclass(frozen=True)
class CancelSample:
    """One cancel answer: when (monotonic), through which replica, how fast, how classified."""

    mono: float
    replica: str
    ack_s: float | None
    outcome: str


def cancel_samples(records: Sequence[Record]) -> list[CancelSample]:
    """Every answered or abandoned cancel in ``records`` (``no_answer`` when none came)."""
    invokes = {r.index: r for r in records if r.type == "invoke" and r.op == OP_CANCEL}
    out = []
    for rec in records:
        inv = invokes.get(rec.ref) if rec.ref is not None else None
        if inv is None or rec.type == "invoke":
            continue
        latency = rec.data.get("client_latency_s")
        out.append(
            CancelSample(
                mono=inv.mono,
                replica=str(inv.data.get("via", "")),
                ack_s=float(latency) if isinstance(latency, int | float) else None,
                outcome=str(rec.data.get("classification") or "no_answer"),
            )
        )
    return out


def wave_row(
    summary: WaveSummary,
    records: Sequence[Record],
    *,
    campaign: str,
    build: str,
    replicas: int,
    started_at: float,
) -> dict[str, Any]:
    """The ``waves.csv`` row of one wave.

    ``silent_regressions`` counts runs whose stream ended without ``done`` or
    ``error`` and whose end the client never learned (the driver's ``info``:
    broken or timed-out streams): the client cannot say the run finished.
    ``circuits`` counts the wave's circuits (0 for single-agent runs); the run
    columns (completed, failed, latencies) count runs either way.
    """
    latencies = completed_latencies(records, summary.wave)
    acks = [c.ack_s for c in cancel_samples(records) if c.outcome == "acknowledged" and c.ack_s]
    cancels = sum(1 for r in records if r.type == "invoke" and r.op == OP_CANCEL)
    return {
        "campaign": campaign,
        "build": build,
        "replicas": replicas,
        "phase": summary.phase,
        "wave": summary.wave,
        "scale": summary.scale,
        "started_at": started_at,
        "wall_s": summary.wall_s,
        "runs_per_s": summary.completed / summary.wall_s if summary.wall_s > 0 else None,
        "circuits": wave_circuits(records, summary.wave),
        "completed": summary.completed,
        "failed": summary.failed,
        "silent_regressions": summary.unknown,
        "p50_ms": _ms(percentile(latencies, 50)),
        "p95_ms": _ms(percentile(latencies, 95)),
        "p99_ms": _ms(percentile(latencies, 99)),
        "max_ms": _ms(max(latencies, default=None)),
        "cancels": cancels,
        "cancel_p50_ms": _ms(percentile(acks, 50)),
        "cancel_p99_ms": _ms(percentile(acks, 99)),
    }


def load_split(rows: Iterable[RunRow]) -> dict[str, int]:
    """Runs per owning replica (rows without an owner are left out), sorted by replica."""
    counts = Counter(r.replica_id for r in rows if r.replica_id)
    return {rid: counts[rid] for rid in sorted(counts)}


def merge_split(splits: Iterable[Mapping[str, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for split in splits:
        total.update(split)
    return {rid: total[rid] for rid in sorted(total)}


# -- compare: a confidence interval, not an assertion ---------------------------------

#: The per-leg numbers ``compare`` puts an interval on (mean over the leg's waves).
COMPARED = ("p50_ms", "p99_ms", "runs_per_s", "wall_s")


@dataclass(frozen=True)
class Interval:
    """candidate minus baseline: the difference of means and its Welch t interval."""

    metric: str
    baseline_mean: float
    candidate_mean: float
    diff: float
    low: float
    high: float
    n_baseline: int
    n_candidate: int
    confidence: float

    @property
    def contains_zero(self) -> bool:
        return self.low <= 0.0 <= self.high

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "baseline_mean": self.baseline_mean,
            "candidate_mean": self.candidate_mean,
            "diff": self.diff,
            "ci_low": self.low,
            "ci_high": self.high,
            "n_baseline": self.n_baseline,
            "n_candidate": self.n_candidate,
            "confidence": self.confidence,
            "contains_zero": self.contains_zero,
        }


def welch_interval(
    metric: str, baseline: Sequence[float], candidate: Sequence[float], confidence: float = 0.95
) -> Interval | None:
    """Welch's t interval for mean(candidate) - mean(baseline); None below 2 samples a side.

    Welch, not Student: the two builds need not share a variance.  With zero
    variance on both sides the interval is the point difference.
    """
    if len(baseline) < 2 or len(candidate) < 2:
        return None
    mb, mc = statistics.fmean(baseline), statistics.fmean(candidate)
    vb = statistics.variance(baseline) / len(baseline)
    vc = statistics.variance(candidate) / len(candidate)
    diff = mc - mb
    se = math.sqrt(vb + vc)
    if se == 0.0:
        half = 0.0
    else:
        dof = (vb + vc) ** 2 / (vb**2 / (len(baseline) - 1) + vc**2 / (len(candidate) - 1))
        half = float(scipy_stats.t.ppf(0.5 + confidence / 2.0, dof)) * se
    return Interval(
        metric, mb, mc, diff, diff - half, diff + half, len(baseline), len(candidate), confidence
    )


def leg_means(rows: Sequence[Mapping[str, Any]], metric: str) -> float | None:
    values = [float(r[metric]) for r in rows if r.get(metric) is not None]
    return statistics.fmean(values) if values else None


def compare_intervals(
    rows_by_leg: Mapping[str, Sequence[Mapping[str, Any]]], side_of_leg: Mapping[str, str]
) -> list[Interval]:
    """One interval per :data:`COMPARED` metric; ``side_of_leg`` says ``baseline`` or
    ``candidate`` per leg (by side, not by build label: a build compared with itself
    has one label on both sides)."""
    out = []
    for metric in COMPARED:
        per_side: dict[str, list[float]] = {"baseline": [], "candidate": []}
        for leg, rows in rows_by_leg.items():
            value = leg_means(rows, metric)
            side = side_of_leg.get(leg)
            if value is not None and side in per_side:
                per_side[side].append(value)
        interval = welch_interval(metric, per_side["baseline"], per_side["candidate"])
        if interval is not None:
            out.append(interval)
    return out
