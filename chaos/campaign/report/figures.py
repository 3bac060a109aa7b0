"""Figure plumbing shared by the chart modules: one column of axes per arm, colours, smoothing.

Charts are ``matplotlib.figure.Figure`` objects made without pyplot: no global
figure registry to leak into, no interactive backend, and a test can inspect
the returned figure's axes, lines and labels before anything is saved.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from chaos.campaign.report.data import Floats

COLUMN_WIDTH_IN = 6.5
SINGLE_WIDTH_IN = 10.0
ROW_HEIGHT_IN = 3.4
DPI = 100
#: Colour cycle (matplotlib's tab10) indexed by position, so a replica keeps its colour.
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


def colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def arm_grid(
    arms: Sequence[str], title: str, rows: int = 1, sharey: bool = True
) -> tuple[Figure, list[list[Axes]]]:
    """A figure with one column per arm (side by side for a compare), ``rows`` rows each.

    ``axes[row][column]``; each column's top axes is titled with its arm when
    there is more than one, and rows share their y axis so the arms compare.
    """
    width = SINGLE_WIDTH_IN if len(arms) == 1 else COLUMN_WIDTH_IN * len(arms)
    fig = Figure(figsize=(width, ROW_HEIGHT_IN * rows), dpi=DPI, layout="constrained")
    grid = fig.subplots(rows, len(arms), sharey="row" if sharey else False, squeeze=False)
    fig.suptitle(title)
    if len(arms) > 1:
        for column, arm in enumerate(arms):
            grid[0][column].set_title(arm)
    return fig, [list(row) for row in grid]


def single(title: str, width: float = SINGLE_WIDTH_IN) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(width, ROW_HEIGHT_IN), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    ax.set_title(title)
    return fig, ax


def rolling_mean(values: Floats, window: int) -> Floats:
    """Trailing mean over ``window`` points, NaNs skipped (NaN where a window has none)."""
    if window <= 1 or len(values) == 0:
        return values.copy()
    valid = ~np.isnan(values)
    sums = np.cumsum(np.where(valid, values, 0.0))
    counts = np.cumsum(valid.astype(np.float64))
    sums[window:] = sums[window:] - sums[:-window].copy()
    counts[window:] = counts[window:] - counts[:-window].copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1.0), np.nan)


def minutes(seconds: Floats) -> Floats:
    return seconds / 60.0


def png_bytes(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()
