"""Charts of the waves (``waves.csv``): wall time, completion, latency, the ramp, a compare.

Every function returns a Figure, or None when the campaign has nothing for it
to draw; x is minutes since the campaign started unless said otherwise.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from chaos.campaign.report.analysis import Analysis, in_wave_order
from chaos.campaign.report.compare import repetition_means
from chaos.campaign.report.data import CampaignData
from chaos.campaign.report.figures import arm_grid, colour, minutes
from chaos.campaign.report.knee import per_scale_medians

TIME_LABEL = "minutes since campaign start"
LATENCIES = (("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99"), ("max_ms", "max"))


def wall_time(data: CampaignData, analysis: Analysis) -> Figure | None:
    """Wave wall time, coloured by phase, with each detected step marked."""
    if len(data.waves) == 0:
        return None
    fig, grid = arm_grid(data.arms, "Wave wall time (dashed: detected steps)")
    for column, arm in enumerate(data.arms):
        ax = grid[0][column]
        waves = in_wave_order(data.waves.matching(arm=arm))
        for k, phase in enumerate(waves.distinct("phase")):
            rows = waves.matching(phase=phase)
            ax.plot(
                minutes(rows.num("started_at")),
                rows.num("wall_s"),
                ".-",
                color=colour(k),
                label=phase,
                markersize=3,
                linewidth=0.8,
            )
        for step in (s for s in analysis.steps if s.group.startswith(f"{arm} / ")):
            x = step.started_at / 60.0
            ax.axvline(x, color="black", linestyle="--", linewidth=0.8)
            ax.annotate(
                f"{step.size:+.1f} s",
                (x, step.after),
                fontsize=8,
                xytext=(3, 3),
                textcoords="offset points",
            )
        ax.set_xlabel(TIME_LABEL)
        ax.set_ylabel("wave wall time (s)")
        ax.legend(title="phase", fontsize=8, loc="best")
    return fig


def completion(data: CampaignData) -> Figure | None:
    """Completion per wave (line, left axis) with silent regressions (bars, right axis)."""
    if len(data.waves) == 0:
        return None
    fig, grid = arm_grid(data.arms, "Completion per wave, with silent regressions", sharey=False)
    for column, arm in enumerate(data.arms):
        ax = grid[0][column]
        waves = in_wave_order(data.waves.matching(arm=arm))
        x = minutes(waves.num("started_at"))
        with np.errstate(invalid="ignore", divide="ignore"):
            done = 100.0 * waves.num("completed") / waves.num("circuits")
        ax.plot(x, done, "-", color="tab:green", label="completed %")
        ax.set_ylim(0, 105)
        ax.set_xlabel(TIME_LABEL)
        ax.set_ylabel("completed (% of circuits)")
        right = ax.twinx()
        # Vertical lines, not bars: 10^4 bar patches take seconds to build and draw.
        silent = waves.num("silent_regressions")
        hit = np.nan_to_num(silent) > 0
        right.vlines(
            x[hit], 0, silent[hit], colors="tab:red", linewidth=3, label="silent regressions"
        )
        right.set_ylabel("silent regressions per wave")
        right.set_ylim(bottom=0)
        lines, labels = ax.get_legend_handles_labels()
        bars, bar_labels = right.get_legend_handles_labels()
        ax.legend(lines + bars, labels + bar_labels, fontsize=8, loc="lower left")
    return fig


def latency(data: CampaignData) -> Figure | None:
    """Run latency percentiles per wave (seconds)."""
    if len(data.waves) == 0:
        return None
    fig, grid = arm_grid(data.arms, "Run latency per wave: p50 / p95 / p99 / max")
    for column, arm in enumerate(data.arms):
        ax = grid[0][column]
        waves = in_wave_order(data.waves.matching(arm=arm))
        x = minutes(waves.num("started_at"))
        for k, (name, label) in enumerate(LATENCIES):
            ax.plot(
                x,
                waves.num(name) / 1000.0,
                ".-",
                color=colour(k),
                label=label,
                markersize=3,
                linewidth=0.8,
            )
        ax.set_xlabel(TIME_LABEL)
        ax.set_ylabel("latency (s)")
        ax.legend(fontsize=8, loc="upper left")
    return fig


def ramp(data: CampaignData, analysis: Analysis) -> Figure | None:
    """Throughput and p99 against scale (per-scale medians), knees marked; None below 2 scales."""
    if all(len(np.unique(data.waves.matching(arm=a).num("scale"))) < 2 for a in data.arms):
        # Also true with no wave at all.
        return None
    fig, grid = arm_grid(data.arms, "Ramp: throughput and p99 against scale (dotted: knees)")
    for column, arm in enumerate(data.arms):
        ax = grid[0][column]
        waves = data.waves.matching(arm=arm)
        xs, runs = per_scale_medians(waves.num("scale"), waves.num("runs_per_s"))
        ax.plot(xs, runs, "o-", color="tab:blue", label="runs/s (median)")
        ax.set_xlabel("scale (circuits per wave)")
        ax.set_ylabel("runs per second")
        right = ax.twinx()
        xs99, p99 = per_scale_medians(waves.num("scale"), waves.num("p99_ms"))
        right.plot(xs99, p99 / 1000.0, "s--", color="tab:red", label="p99 (median)")
        right.set_ylabel("p99 latency (s)")
        for knee in analysis.knees.get(arm, []):
            if knee.scale is not None:
                tint = "tab:blue" if knee.metric == "runs_per_s" else "tab:red"
                ax.axvline(knee.scale, color=tint, linestyle=":", label=f"knee {knee.metric}")
        lines, labels = ax.get_legend_handles_labels()
        more, more_labels = right.get_legend_handles_labels()
        ax.legend(lines + more, labels + more_labels, fontsize=8, loc="upper left")
    return fig


def compare(data: CampaignData, analysis: Analysis) -> Figure | None:
    """Per-repetition mean wall time of each arm, and each difference with its 95 % interval."""
    if not data.is_compare:
        return None
    fig = Figure(figsize=(12.0, 3.6), dpi=100, layout="constrained")
    left, right = fig.subplots(1, 2)
    fig.suptitle("Compare: interleaved repetitions and the difference of the builds")
    for k, arm in enumerate(data.arms):
        reps = repetition_means(data.waves.matching(arm=arm), "wall_s")
        order = sorted(reps)
        left.plot(order, [reps[r] for r in order], "o-", color=colour(k), label=arm)
    left.set_xlabel("repetition")
    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    left.set_ylabel("mean wave wall time (s)")
    left.legend(fontsize=8)
    # In percent of the baseline mean, so seconds per wave and ms per circuit share an axis.
    labels = [f"{d.metric}\n{d.candidate} - {d.baseline}" for d in analysis.compare]
    scale = [100.0 / d.baseline_mean if d.baseline_mean else np.nan for d in analysis.compare]
    diffs = [d.diff * s for d, s in zip(analysis.compare, scale, strict=True)]
    errors = [
        [(d.diff - d.low) * s for d, s in zip(analysis.compare, scale, strict=True)],
        [(d.high - d.diff) * s for d, s in zip(analysis.compare, scale, strict=True)],
    ]
    right.errorbar(diffs, range(len(diffs)), xerr=errors, fmt="o", capsize=4, color="black")
    right.axvline(0.0, color="grey", linewidth=0.8)
    right.set_yticks(range(len(labels)), labels, fontsize=8)
    right.set_xlabel("candidate - baseline, % of the baseline mean (95 % interval)")
    right.set_title("difference", fontsize=10)
    return fig
