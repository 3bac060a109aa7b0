"""Two builds compared: the difference in per-wave cost with a 95 % confidence interval.

A compare campaign runs the builds in interleaved repetitions (phase ``rep1``,
``rep2``, ... for each build in turn), so a slow hour of the machine hits
both builds alike.  Method: for each repetition both builds ran, the
difference of the builds' mean per-wave value (candidate minus baseline);
then a two-sided paired t-interval on those differences,
``mean(d) ± t(0.975, k-1) · sd(d) / √k`` over ``k`` repetitions.  Pairing by
repetition removes what drifts between repetitions; the t-interval (not a
bootstrap) because ``k`` is small (a bootstrap of 3-5 values under-covers).
Without at least two paired repetitions, Welch's t-interval on the per-wave
values of each build (``scipy.stats.ttest_ind(equal_var=False)``) is given
instead and marked so: it ignores drift between repetitions.

Builds are told apart by arm (``arms``: the build label, or the side when a
build is compared with itself); the baseline is the arm that appears first.  Two values
are compared: wall seconds per wave and milliseconds per circuit (the wall
divided by the wave's scale, which is fair when scales differ).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from chaos.campaign.report.data import Floats, Table

CONFIDENCE = 0.95
REPETITION = re.compile(r"^rep(\d+)$")
PAIRED = "paired t-interval over repetitions"
WELCH = "Welch t-interval over waves (fewer than 2 paired repetitions)"


@dataclass(frozen=True)
class Difference:
    """Candidate minus baseline, with its 95 % interval."""

    metric: str
    baseline: str
    candidate: str
    baseline_mean: float
    candidate_mean: float
    diff: float
    low: float
    high: float
    n: int
    method: str

    @property
    def relative(self) -> float:
        return self.diff / self.baseline_mean if self.baseline_mean else math.nan

    @property
    def significant(self) -> bool:
        return self.low > 0 or self.high < 0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "relative": self.relative, "significant": self.significant}


def paired_interval(diffs: Floats) -> tuple[float, float, float]:
    """Mean of paired differences and its two-sided t-interval."""
    k = len(diffs)
    mean = float(diffs.mean())
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, k - 1)) * float(diffs.std(ddof=1)) / math.sqrt(k)
    return mean, mean - half, mean + half


def welch_interval(base: Floats, cand: Floats) -> tuple[float, float, float]:
    """Difference of means (cand - base) and Welch's t-interval."""
    result = stats.ttest_ind(cand, base, equal_var=False)
    ci = result.confidence_interval(confidence_level=CONFIDENCE)
    return float(cand.mean() - base.mean()), float(ci.low), float(ci.high)


def per_wave_values(waves: Table, metric: str) -> Floats:
    if metric == "ms_per_circuit":
        with np.errstate(divide="ignore", invalid="ignore"):
            return waves.num("wall_s") * 1000.0 / waves.num("scale")
    return waves.num(metric)


def repetition_means(waves: Table, metric: str) -> dict[int, float]:
    """Mean value per repetition number (phases not named ``repN`` are left out)."""
    values = per_wave_values(waves, metric)
    phases = waves.txt("phase")
    out: dict[int, float] = {}
    for phase in waves.distinct("phase"):
        match = REPETITION.match(phase)
        chosen = values[(phases == phase) & np.isfinite(values)]
        if match and len(chosen):
            out[int(match.group(1))] = float(chosen.mean())
    return out


def compare_builds(waves: Table, baseline: str, candidate: str, metric: str) -> Difference | None:
    """The candidate's difference from the baseline, or None when a build has no values."""
    base_w, cand_w = waves.matching(arm=baseline), waves.matching(arm=candidate)
    base_reps, cand_reps = repetition_means(base_w, metric), repetition_means(cand_w, metric)
    shared = sorted(set(base_reps) & set(cand_reps))
    if len(shared) >= 2:
        base = np.array([base_reps[r] for r in shared])
        cand = np.array([cand_reps[r] for r in shared])
        interval, n, method = paired_interval(cand - base), len(shared), PAIRED
    else:
        base = per_wave_values(base_w, metric)
        cand = per_wave_values(cand_w, metric)
        base, cand = base[np.isfinite(base)], cand[np.isfinite(cand)]
        if len(base) < 2 or len(cand) < 2:
            return None
        interval, n, method = welch_interval(base, cand), min(len(base), len(cand)), WELCH
    diff, low, high = interval
    means = float(base.mean()), float(cand.mean())
    return Difference(metric, baseline, candidate, *means, diff, low, high, n, method)
