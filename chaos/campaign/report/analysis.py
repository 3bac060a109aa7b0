"""Every analysis of one campaign, done by code and written to ``analysis.json``.

The methods are documented in their modules (``knee``, ``drift``, ``steps``,
``compare``, ``spread``); :data:`METHODS` is the one-line version the report
prints beside the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from chaos.campaign.report.compare import Difference, compare_builds
from chaos.campaign.report.data import CampaignData, Floats, Table
from chaos.campaign.report.drift import Drift, sampled_slope, slope
from chaos.campaign.report.events import ReapAfterKill, cancel_stats, reap_after_kills
from chaos.campaign.report.knee import Knee, ramp_knees
from chaos.campaign.report.spread import LoadSpread, load_spread
from chaos.campaign.report.steps import Step, phase_steps

METHODS = {
    "knee": "Kneedle (kneed, S=1) on per-scale medians: runs/s as a concave rising curve, "
    "p99 as a convex rising one; needs 3 scales",
    "drift": "OLS slope per hour with a 95 % t-interval, within each phase; 1 s samples "
    "reduced to 20 equal-time block means first (autocorrelation)",
    "steps": "binary segmentation (ruptures Binseg, l2 cost, min 5 waves, penalty "
    "4·σ²·ln n, σ from the MAD of wave-to-wave differences) on wall time per phase",
    "load": "max share of runs, coefficient of variation, spread = (max - min) / mean",
    "compare": "candidate minus baseline (first build): paired t-interval (95 %) over "
    "interleaved repetitions; Welch t-interval over waves if fewer than 2 repetitions",
}
SAMPLED_SERIES = ("rss_mb", "goroutines")
COMPARED = ("wall_s", "ms_per_circuit")


@dataclass(frozen=True)
class Analysis:
    knees: dict[str, list[Knee]]
    drifts: list[Drift]
    steps: list[Step]
    load: LoadSpread | None
    cross_replica_circuit_share: float | None
    compare: list[Difference]
    cancels: dict[str, Any] | None
    reaps: list[ReapAfterKill]
    totals: dict[str, dict[str, float]]
    replicas: dict[str, dict[str, dict[str, float]]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "methods": METHODS,
            "knees": {b: [k.to_dict() for k in ks] for b, ks in self.knees.items()},
            "drift": [d.to_dict() for d in self.drifts],
            "steps": [s.to_dict() for s in self.steps],
            "load": self.load.to_dict() if self.load else None,
            "cross_replica_circuit_share": self.cross_replica_circuit_share,
            "compare": [c.to_dict() for c in self.compare],
            "cancels": self.cancels,
            "reaps": [r.to_dict() for r in self.reaps],
            "totals": self.totals,
            "replicas": self.replicas,
        }


def in_wave_order(waves: Table) -> Table:
    """The rows sorted by start time (then wave number), as a phase ran them."""
    return waves.take(np.lexsort((waves.num("wave"), waves.num("started_at"))))


def phase_at(waves: Table, t: Floats) -> NDArray[np.str_]:
    """The phase running at each time ``t``: that of the last wave started by then."""
    ordered = in_wave_order(waves)
    starts = ordered.num("started_at")
    index = np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(starts) - 1)
    return ordered.txt("phase")[index]


def wave_analyses(waves: Table, arm: str) -> tuple[list[Drift], list[Step]]:
    drifts: list[Drift] = []
    steps: list[Step] = []
    ordered = in_wave_order(waves)
    for phase in ordered.distinct("phase"):
        rows = ordered.matching(phase=phase)
        group = f"{arm} / {phase}"
        found = slope("wall_s", group, rows.num("started_at"), rows.num("wall_s"))
        drifts += [found] if found else []
        steps += phase_steps(group, rows.num("wave"), rows.num("started_at"), rows.num("wall_s"))
    return drifts, steps


def sample_drifts(samples: Table, waves: Table, arm: str) -> list[Drift]:
    if len(samples) == 0 or len(waves) == 0:
        return []
    phases = phase_at(waves, samples.num("t"))
    replicas = samples.txt("replica")
    out: list[Drift] = []
    for phase in waves.distinct("phase"):
        for replica in samples.distinct("replica"):
            mask = (phases == phase) & (replicas == replica)
            for series in SAMPLED_SERIES:
                group = f"{arm} / {phase} / {replica}"
                found = sampled_slope(
                    series, group, samples.num("t")[mask], samples.num(series)[mask]
                )
                out += [found] if found else []
    return out


def _finite_max(values: Floats) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.max()) if len(finite) else float("nan")


def wave_totals(waves: Table) -> dict[str, float]:
    """Sums and extremes over one arm's waves."""
    circuits = float(np.nansum(waves.num("circuits")))
    completed = float(np.nansum(waves.num("completed")))
    p50 = waves.num("p50_ms")
    return {
        "waves": float(len(waves)),
        "circuits": circuits,
        "completed": completed,
        "failed": float(np.nansum(waves.num("failed"))),
        "silent_regressions": float(np.nansum(waves.num("silent_regressions"))),
        "completion": completed / circuits if circuits else float("nan"),
        "median_p50_ms": float(np.nanmedian(p50)) if np.isfinite(p50).any() else float("nan"),
        "max_p99_ms": _finite_max(waves.num("p99_ms")),
        "max_ms": _finite_max(waves.num("max_ms")),
        "wall_s": float(np.nansum(waves.num("wall_s"))),
    }


def replica_peaks(samples: Table) -> dict[str, dict[str, float]]:
    """Per replica: the peak of every sampled series, and the mean of active runs."""
    out: dict[str, dict[str, float]] = {}
    for replica in samples.distinct("replica"):
        rows = samples.matching(replica=replica)
        active = rows.num("active_runs")
        out[replica] = {
            "samples": float(len(rows)),
            "peak_rss_mb": _finite_max(rows.num("rss_mb")),
            "peak_goroutines": _finite_max(rows.num("goroutines")),
            "peak_active_runs": _finite_max(active),
            "mean_active_runs": float(np.nanmean(active))
            if np.isfinite(active).any()
            else float("nan"),
            "peak_queued_runs": _finite_max(rows.num("queued_runs")),
            "peak_cpu_pct": _finite_max(rows.num("cpu_pct")),
        }
    return out


def analyse(data: CampaignData) -> Analysis:
    knees: dict[str, list[Knee]] = {}
    drifts: list[Drift] = []
    steps: list[Step] = []
    for arm in data.arms:
        waves = data.waves.matching(arm=arm)
        knees[arm] = ramp_knees(waves)
        wave_drifts, wave_steps = wave_analyses(waves, arm)
        drifts += wave_drifts + sample_drifts(data.samples.matching(arm=arm), waves, arm)
        steps += wave_steps
    compared: list[Difference] = []
    if data.is_compare:
        baseline = data.arms[0]
        for candidate in data.arms[1:]:
            for metric in COMPARED:
                found = compare_builds(data.waves, baseline, candidate, metric)
                compared += [found] if found else []
    share = data.summary.get("cross_replica_circuit_share")
    return Analysis(
        knees=knees,
        drifts=drifts,
        steps=steps,
        load=load_spread(data.summary.get("load_split") or {}),
        cross_replica_circuit_share=float(share) if isinstance(share, int | float) else None,
        compare=compared,
        cancels=cancel_stats(data.cancels) if len(data.cancels) else None,
        reaps=reap_after_kills(data.reap) if len(data.reap) else [],
        totals={arm: wave_totals(data.waves.matching(arm=arm)) for arm in data.arms},
        replicas={arm: replica_peaks(data.samples.matching(arm=arm)) for arm in data.arms},
    )
