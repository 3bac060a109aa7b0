"""The report's sections: each chart with the analysis that reads it, as tables of text.

A section is format-neutral (the HTML and the Markdown report both render it):
a chart (or None when its data is absent), one or more small tables, and the
method line that says how the numbers were made.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from matplotlib.figure import Figure

from chaos.campaign.report import charts_runtime as runtime
from chaos.campaign.report import charts_waves as waves
from chaos.campaign.report.analysis import METHODS, Analysis
from chaos.campaign.report.data import CampaignData
from chaos.campaign.report.drift import Drift


@dataclass(frozen=True)
class TextTable:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Section:
    name: str
    title: str
    figure: Figure | None
    tables: tuple[TextTable, ...] = ()
    methods: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)


def num(value: float | None, digits: int = 1, unit: str = "") -> str:
    """A number for a table; '-' for None or NaN."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    text = f"{value:,.{digits}f}"
    return f"{text} {unit}".rstrip()


def pct(value: float | None, digits: int = 2) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value * 100:.{digits}f} %"


#: Rows a report table shows; the rest are in analysis.json (a compare's drift table has
#: one row per repetition, replica and series).
MAX_ROWS = 12


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> TextTable:
    shown = [tuple(r) for r in rows[:MAX_ROWS]]
    if len(rows) > MAX_ROWS:
        more = f"... {len(rows) - MAX_ROWS} more rows in analysis.json"
        shown.append((more, *([""] * (len(headers) - 1))))
    return TextTable(tuple(headers), tuple(shown))


def drift_table(drifts: Sequence[Drift], unit: str) -> TextTable:
    """Drifting series first (those are the news), then the rest in their order."""
    drifts = [d for d in drifts if d.significant] + [d for d in drifts if not d.significant]
    return table(
        ("group", "series", "points", "mean", f"slope ({unit}/h)", "95 % interval", "drifts?"),
        [
            (
                d.group,
                d.series,
                str(d.points),
                num(d.mean, 1),
                num(d.slope_per_h, 2),
                f"[{num(d.low, 2)}, {num(d.high, 2)}]",
                "yes" if d.significant else "no",
            )
            for d in drifts
        ],
    )


def wall_section(data: CampaignData, analysis: Analysis) -> Section:
    steps = table(
        ("group", "wave", "at (min)", "before (s)", "after (s)", "step (s)"),
        [
            (
                s.group,
                num(s.wave, 0),
                num(s.started_at / 60.0, 1),
                num(s.before),
                num(s.after),
                num(s.size, 1),
            )
            for s in analysis.steps
        ],
    )
    walls = [d for d in analysis.drifts if d.series == "wall_s"]
    notes = () if analysis.steps else ("no step found in any phase",)
    return Section(
        "wall_time",
        "Wave wall time",
        waves.wall_time(data, analysis),
        (steps, drift_table(walls, "s")),
        (METHODS["steps"], METHODS["drift"]),
        notes,
    )


def completion_section(data: CampaignData, analysis: Analysis) -> Section:
    rows = [
        (
            arm,
            num(t["waves"], 0),
            num(t["circuits"], 0),
            num(t["completed"], 0),
            num(t["failed"], 0),
            num(t["silent_regressions"], 0),
            pct(t["completion"]),
        )
        for arm, t in analysis.totals.items()
    ]
    headers = ("arm", "waves", "circuits", "completed", "failed", "silent regr.", "completion")
    return Section(
        "completion",
        "Completion and silent regressions",
        waves.completion(data),
        (table(headers, rows),),
    )


def latency_section(data: CampaignData, analysis: Analysis) -> Section:
    rows = [
        (
            arm,
            num(t["median_p50_ms"], 0, "ms"),
            num(t["max_p99_ms"], 0, "ms"),
            num(t["max_ms"], 0, "ms"),
        )
        for arm, t in analysis.totals.items()
    ]
    headers = ("arm", "median of wave p50", "worst wave p99", "worst max")
    return Section("latency", "Latency percentiles", waves.latency(data), (table(headers, rows),))


def ramp_section(data: CampaignData, analysis: Analysis) -> Section:
    rows = [
        (arm, k.metric, num(k.scale, 0), k.note)
        for arm, knees in analysis.knees.items()
        for k in knees
    ]
    return Section(
        "ramp",
        "Ramp and knee",
        waves.ramp(data, analysis),
        (table(("arm", "curve", "knee at scale", "note"), rows),),
        (METHODS["knee"],),
    )


def compare_section(data: CampaignData, analysis: Analysis) -> Section:
    rows = [
        (
            d.metric,
            num(d.baseline_mean, 2),
            num(d.candidate_mean, 2),
            num(d.diff, 2),
            f"[{num(d.low, 2)}, {num(d.high, 2)}]",
            pct(d.relative, 1),
            str(d.n),
        )
        for d in analysis.compare
    ]
    headers = ("metric", "baseline", "candidate", "difference", "95 % interval", "relative", "n")
    notes = tuple(
        dict.fromkeys(f"{d.candidate} minus {d.baseline}: {d.method}" for d in analysis.compare)
    )
    return Section(
        "compare",
        "Compare",
        waves.compare(data, analysis),
        (table(headers, rows),),
        (METHODS["compare"],),
        notes or ("fewer than 2 values on a side: no interval",),
    )


def memory_section(data: CampaignData, analysis: Analysis) -> Section:
    rss = [d for d in analysis.drifts if d.series == "rss_mb"]
    goroutines = [d for d in analysis.drifts if d.series == "goroutines"]
    return Section(
        "memory",
        "RSS and goroutines per replica",
        runtime.memory(data),
        (drift_table(rss, "MB"), drift_table(goroutines, "goroutines")),
        (METHODS["drift"],),
    )


def active_section(data: CampaignData, analysis: Analysis) -> Section:
    rows = [
        (
            arm,
            replica,
            num(p["peak_active_runs"], 0),
            num(p["mean_active_runs"], 1),
            num(p["peak_queued_runs"], 0),
            num(p["peak_rss_mb"], 0, "MB"),
            num(p["peak_goroutines"], 0),
            num(p["peak_cpu_pct"], 0, "%"),
        )
        for arm, replicas in analysis.replicas.items()
        for replica, p in replicas.items()
    ]
    headers = (
        "arm",
        "replica",
        "peak active",
        "mean active",
        "peak queued",
        "peak RSS",
        "peak goroutines",
        "peak CPU",
    )
    return Section(
        "active_runs",
        "Active runs per replica",
        runtime.active_runs(data),
        (table(headers, rows),),
    )


def load_section(data: CampaignData, analysis: Analysis) -> Section:
    load = analysis.load
    rows = []
    if load is not None:
        rows = [
            ("runs", num(load.total, 0)),
            ("max share", pct(load.max_share)),
            ("coefficient of variation", pct(load.cv)),
            ("spread (max - min) / mean", pct(load.spread)),
        ]
    rows.append(("cross-replica circuit share", pct(analysis.cross_replica_circuit_share, 1)))
    return Section(
        "load_split",
        "Load split",
        runtime.load_split(analysis),
        (table(("measure", "value"), rows),),
        (METHODS["load"],),
    )


def cancel_section(data: CampaignData, analysis: Analysis) -> Section:
    stats = analysis.cancels
    groups = [("all", stats["all"]), *stats["by_outcome"].items()] if stats else []
    rows = [
        (
            name,
            str(s["count"]),
            num(s.get("p50"), 0, "ms"),
            num(s.get("p99"), 0, "ms"),
            num(s.get("max"), 0, "ms"),
        )
        for name, s in groups
    ]
    return Section(
        "cancel_acks",
        "Cancel-ack latency",
        runtime.cancel_acks(data),
        (table(("outcome", "cancels", "p50", "p99", "max"), rows),),
    )


def reap_section(data: CampaignData, analysis: Analysis) -> Section:
    rows = [
        (
            r.replica,
            num(r.kill_t, 1, "s"),
            str(r.reaped),
            str(r.ended),
            num(r.first_reaped_after_s, 1, "s"),
            num(r.last_reaped_after_s, 1, "s"),
        )
        for r in analysis.reaps
    ]
    headers = ("killed", "at", "reaped", "ended", "first reap after", "last reap after")
    return Section(
        "reap_timeline",
        "Reap timeline after a crash",
        runtime.reap_timeline(data),
        (table(headers, rows),),
    )


SECTIONS: tuple[Callable[[CampaignData, Analysis], Section], ...] = (
    wall_section,
    completion_section,
    latency_section,
    ramp_section,
    compare_section,
    memory_section,
    active_section,
    load_section,
    cancel_section,
    reap_section,
)


def build_sections(data: CampaignData, analysis: Analysis) -> list[Section]:
    """Every section that has a chart or a number to show (the ramp only with its chart)."""
    out = []
    for make in SECTIONS:
        section = make(data, analysis)
        if section.name == "ramp" and section.figure is None:
            continue  # fewer than two scales: nothing to say about a knee
        if section.figure is not None or any(t.rows for t in section.tables):
            out.append(section)
    return out
