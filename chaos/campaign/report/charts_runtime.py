"""Charts of the replicas and events: RSS, goroutines, active runs, load split, cancels, reap.

Each function returns a Figure, or None when its file was absent or empty.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from chaos.campaign.report.analysis import Analysis
from chaos.campaign.report.data import CampaignData, Table
from chaos.campaign.report.events import KILL, REAPED
from chaos.campaign.report.figures import arm_grid, colour, minutes, rolling_mean, single

TIME_LABEL = "minutes since campaign start"
#: The rolling mean spans 1/50 of a replica's series (10 min of an 8-hour run at 1 s), at
#: least 5 samples: long enough to flatten the GC sawtooth, short enough to show a step.
ROLLING_SHARE = 50
ROLLING_MIN = 5


def rolling_window(points: int) -> int:
    return max(ROLLING_MIN, points // ROLLING_SHARE)


def _replica_lines(ax: Axes, samples: Table, series: str, replicas: list[str]) -> None:
    for k, replica in enumerate(replicas):
        rows = samples.matching(replica=replica)
        order = np.argsort(rows.num("t"), kind="stable")
        x, y = minutes(rows.num("t")[order]), rows.num(series)[order]
        ax.plot(x, y, color=colour(k), alpha=0.25, linewidth=0.6)
        ax.plot(
            x,
            rolling_mean(y, rolling_window(len(y))),
            color=colour(k),
            linewidth=1.6,
            label=f"{replica} (rolling mean of {rolling_window(len(y))})",
        )


def memory(data: CampaignData) -> Figure | None:
    """RSS (top) and goroutines (bottom) per replica: raw samples faint, rolling mean bold."""
    if len(data.samples) == 0:
        return None
    replicas = data.samples.distinct("replica")
    fig, grid = arm_grid(data.arms, "RSS and goroutines per replica", rows=2)
    for column, arm in enumerate(data.arms):
        samples = data.samples.matching(arm=arm)
        for row, (series, label) in enumerate(
            (("rss_mb", "RSS (MB)"), ("goroutines", "goroutines"))
        ):
            ax = grid[row][column]
            _replica_lines(ax, samples, series, replicas)
            ax.set_ylabel(label)
            ax.set_xlabel(TIME_LABEL)
        grid[0][column].legend(fontsize=7, loc="upper left")
    return fig


def active_runs(data: CampaignData) -> Figure | None:
    """Active runs per replica (solid) and queued runs (dashed, where sampled)."""
    if len(data.samples) == 0:
        return None
    replicas = data.samples.distinct("replica")
    fig, grid = arm_grid(data.arms, "Active runs per replica (dashed: queued)")
    for column, arm in enumerate(data.arms):
        ax = grid[0][column]
        samples = data.samples.matching(arm=arm)
        for k, replica in enumerate(replicas):
            rows = samples.matching(replica=replica)
            order = np.argsort(rows.num("t"), kind="stable")
            x = minutes(rows.num("t")[order])
            ax.plot(
                x, rows.num("active_runs")[order], color=colour(k), linewidth=0.9, label=replica
            )
            queued = rows.num("queued_runs")[order]
            if np.isfinite(queued).any():
                ax.plot(x, queued, color=colour(k), linestyle="--", linewidth=0.8)
        ax.set_xlabel(TIME_LABEL)
        ax.set_ylabel("runs")
        ax.legend(fontsize=8, loc="upper left")
    return fig


def load_split(analysis: Analysis) -> Figure | None:
    """Runs per replica, with the even share as a line."""
    load = analysis.load
    if load is None:
        return None
    title = (
        f"Load split: max share {load.max_share:.1%}, CV {load.cv:.2%}, spread {load.spread:.2%}"
    )
    fig, ax = single(title, width=7.0)
    names = list(load.runs)
    counts = [load.runs[n] for n in names]
    bars = ax.bar(names, counts, color=[colour(k) for k in range(len(names))])
    ax.bar_label(bars, labels=[f"{c / load.total:.1%}" for c in counts], fontsize=8)
    ax.axhline(
        load.total / len(names), color="black", linestyle="--", linewidth=0.8, label="even share"
    )
    ax.set_xlabel("replica")
    ax.set_ylabel("runs")
    ax.legend(fontsize=8, loc="lower right")
    return fig


def cancel_acks(data: CampaignData) -> Figure | None:
    """Distribution of cancel-ack latency, stacked by outcome, p50 and p99 marked."""
    cancels = data.cancels
    ack = cancels.num("ack_ms")
    finite = ack[np.isfinite(ack)]
    if len(finite) == 0:
        return None
    fig, ax = single("Cancel-ack latency", width=8.0)
    outcomes = cancels.distinct("outcome")
    bins = np.histogram_bin_edges(finite, bins=min(40, max(10, len(finite) // 5)))
    groups = [ack[(cancels.txt("outcome") == o) & np.isfinite(ack)] for o in outcomes]
    ax.hist(
        groups,
        bins=bins.tolist(),
        stacked=True,
        label=outcomes,
        color=[colour(k) for k in range(len(outcomes))],
    )
    for q, style in ((50, "--"), (99, ":")):
        value = float(np.percentile(finite, q))
        ax.axvline(
            value, color="black", linestyle=style, linewidth=0.9, label=f"p{q} {value:.0f} ms"
        )
    ax.set_xlabel("ack latency (ms)")
    ax.set_ylabel("cancels")
    ax.legend(fontsize=8)
    return fig


def reap_timeline(data: CampaignData) -> Figure | None:
    """Every reap event on its own row over time; kills as red lines; reaped runs counted."""
    reap = data.reap
    if len(reap) == 0:
        return None
    fig, ax = single("Reap timeline after a crash", width=10.0)
    events = reap.distinct("event")
    t = reap.num("t")
    for k, event in enumerate(events):
        at = t[reap.txt("event") == event]
        ax.plot(at, np.full(len(at), k), "|", markersize=16, markeredgewidth=2, color=colour(k))
    for kill in t[reap.txt("event") == KILL]:
        ax.axvline(kill, color="tab:red", linewidth=0.9)
    ax.set_yticks(range(len(events)), events)
    ax.set_ylim(-0.7, len(events) - 0.3)
    ax.set_xlabel("seconds since campaign start")
    ax.set_ylabel("event")
    reaped = np.sort(t[reap.txt("event") == REAPED])
    if len(reaped):
        right = ax.twinx()
        right.step(
            reaped,
            np.arange(1, len(reaped) + 1),
            where="post",
            color="black",
            linewidth=1.0,
            label="runs reaped (cumulative)",
        )
        right.set_ylabel("runs reaped (cumulative)")
        right.set_ylim(bottom=0)
        right.legend(fontsize=8, loc="lower right")
    return fig
