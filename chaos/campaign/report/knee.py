"""The knee of a ramp: the scale where throughput stops rising and where latency turns up.

Method: Kneedle (Satopää et al., 2011) as the ``kneed`` library implements it,
on one point per distinct scale: the median ``runs_per_s`` and the median
``p99_ms`` of that scale's waves (medians, so one collapse wave past the knee
does not move the point).  Throughput is a concave rising curve (the knee is
where it flattens); p99 is a convex rising one (the knee is where it turns
up).  Sensitivity ``S = 1`` (the paper's default).  Kneedle needs at least
three scales; with fewer, or on a straight line (the writeup's capacity probe:
"perfectly linear"), it finds no knee and says so.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from kneed import KneeLocator

from chaos.campaign.report.data import Floats, Table

MIN_SCALES = 3
SENSITIVITY = 1.0


@dataclass(frozen=True)
class Knee:
    """One curve's knee (``scale`` is None when there is none or too few scales)."""

    metric: str
    scales: tuple[float, ...]
    values: tuple[float, ...]
    scale: float | None
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "scale": self.scale,
            "points": [[s, v] for s, v in zip(self.scales, self.values, strict=True)],
            "note": self.note,
        }


def per_scale_medians(scale: Floats, values: Floats) -> tuple[Floats, Floats]:
    """One (scale, median value) point per distinct scale, NaNs ignored, scales ascending."""
    keep = ~(np.isnan(scale) | np.isnan(values))
    scale, values = scale[keep], values[keep]
    xs = np.unique(scale)
    ys = np.array([float(np.median(values[scale == x])) for x in xs], dtype=np.float64)
    return xs, ys


def find_knee(metric: str, scale: Floats, values: Floats, *, curve: str) -> Knee:
    """Kneedle on per-scale medians; ``curve`` is ``concave`` or ``convex`` (both rising)."""
    xs, ys = per_scale_medians(scale, values)
    points = (tuple(float(x) for x in xs), tuple(float(y) for y in ys))
    if len(xs) < MIN_SCALES:
        return Knee(metric, *points, None, f"needs {MIN_SCALES} scales, the waves have {len(xs)}")
    with warnings.catch_warnings():
        # kneed warns "No knee/elbow found" on a straight line; the note says it instead.
        warnings.simplefilter("ignore")
        locator = KneeLocator(
            xs, ys, S=SENSITIVITY, curve=curve, direction="increasing", online=False
        )
    if locator.knee is None:
        return Knee(metric, *points, None, "no knee: the curve has no bend Kneedle accepts")
    return Knee(metric, *points, float(locator.knee), f"kneedle, {curve} rising, S={SENSITIVITY}")


def ramp_knees(waves: Table) -> list[Knee]:
    """The throughput knee and the p99 knee of one build's waves."""
    scale = waves.num("scale")
    return [
        find_knee("runs_per_s", scale, waves.num("runs_per_s"), curve="concave"),
        find_knee("p99_ms", scale, waves.num("p99_ms"), curve="convex"),
    ]
