"""Drift over time: a least-squares slope with its 95 % interval.

Method: ordinary least squares (``scipy.stats.linregress``) and a two-sided
95 % t-interval, ``slope ± t(0.975, n-2) · stderr``.  Samples taken every
second are strongly autocorrelated (the GC sawtooth of RSS, for one): a plain
OLS interval on them would be far too narrow and call every wiggle a drift.
So a sampled series is first reduced to the means of at most
:data:`MAX_BLOCKS` equal-time blocks, and the regression runs on those means.
Waves are separate experiments and are regressed one point per wave.

Drift is judged within a phase (a constant requested load): across phases
RSS and wall time follow the scale, which is not drift.  Slopes are given per
hour.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from chaos.campaign.report.data import Floats

CONFIDENCE = 0.95
MAX_BLOCKS = 20
MIN_POINTS = 3
SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class Drift:
    """The slope of one series, per hour, with its 95 % interval."""

    series: str
    group: str
    points: int
    slope_per_h: float
    low: float
    high: float
    mean: float

    @property
    def significant(self) -> bool:
        """Whether the interval excludes 0 (the series drifts, up or down)."""
        return self.low > 0 or self.high < 0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "significant": self.significant}


def block_means(t: Floats, y: Floats, blocks: int = MAX_BLOCKS) -> tuple[Floats, Floats]:
    """Means of ``y`` (and their mid times) over up to ``blocks`` equal-time blocks."""
    keep = ~(np.isnan(t) | np.isnan(y))
    t, y = t[keep], y[keep]
    if len(t) == 0:
        return t, y
    edges = np.linspace(float(t.min()), float(t.max()), blocks + 1)
    which = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, blocks - 1)
    counts = np.bincount(which, minlength=blocks)
    used = counts > 0
    sums_t = np.bincount(which, weights=t, minlength=blocks)
    sums_y = np.bincount(which, weights=y, minlength=blocks)
    return sums_t[used] / counts[used], sums_y[used] / counts[used]


def slope(series: str, group: str, t: Floats, y: Floats) -> Drift | None:
    """OLS slope of ``y`` over ``t`` (seconds) per hour, or None with fewer than 3 points."""
    keep = ~(np.isnan(t) | np.isnan(y))
    t, y = t[keep], y[keep]
    if len(t) < MIN_POINTS or float(np.ptp(t)) == 0.0:
        return None
    if float(np.ptp(y)) == 0.0:
        # A constant series: no slope and no uncertainty (linregress would answer NaN).
        return Drift(series, group, len(t), 0.0, 0.0, 0.0, float(y[0]))
    fit = stats.linregress(t, y)
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, len(t) - 2)) * float(fit.stderr)
    per_h = float(fit.slope) * SECONDS_PER_HOUR
    half_h = half * SECONDS_PER_HOUR if math.isfinite(half) else math.inf
    return Drift(series, group, len(t), per_h, per_h - half_h, per_h + half_h, float(y.mean()))


def sampled_slope(series: str, group: str, t: Floats, y: Floats) -> Drift | None:
    """The slope of a 1 s-sampled series, regressed on its block means."""
    bt, by = block_means(t, y)
    return slope(series, group, bt, by)
