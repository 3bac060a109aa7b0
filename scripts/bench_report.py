"""Time the campaign report on a large synthetic campaign (prints numbers; never asserted).

    python scripts/bench_report.py [--waves 10000] [--samples 100000] [--keep DIR]

Writes a synthetic campaign folder (waves in four phases, one with a step-up;
samples from four replicas; cancels; a kill and its reaps), then times
reading, analysing and the whole ``render_report``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from chaos.campaign.data import CANCELS_COLUMNS, REAP_COLUMNS, SAMPLES_COLUMNS, WAVES_COLUMNS
from chaos.campaign.report import render_report
from chaos.campaign.report.analysis import analyse
from chaos.campaign.report.load import load_campaign

REPLICAS = ("r1", "r2", "r3", "r4")


def _write(path: Path, columns: tuple[str, ...], rows: list[dict[str, object]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows([row.get(c, "") for c in columns] for row in rows)


def synthetic_campaign(out: Path, waves: int, samples: int, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    rows: list[dict[str, object]] = []
    t = 0.0
    per_phase = waves // 4
    for p in range(4):
        scale = 1000 * (p + 1)
        for i in range(per_phase):
            wall = (
                16.0 * (p + 1)
                + rng.normal(0.0, 1.5)
                + (6.0 if p == 2 and i > per_phase // 2 else 0)
            )
            p99 = 3600.0 + rng.normal(0.0, 100.0)
            rows.append(
                {
                    "campaign": "bench",
                    "build": "v1.59.0",
                    "replicas": 4,
                    "phase": f"p{p + 1}",
                    "wave": len(rows) + 1,
                    "scale": scale,
                    "started_at": round(t, 3),
                    "wall_s": round(wall, 3),
                    "runs_per_s": round(3 * scale / wall, 3),
                    "circuits": scale,
                    "completed": scale,
                    "failed": 0,
                    "silent_regressions": 0,
                    "p50_ms": 2500,
                    "p95_ms": 3300,
                    "p99_ms": round(p99),
                    "max_ms": round(p99 + 400),
                    "cancels": 0,
                }
            )
            t += wall
    _write(out / "waves.csv", WAVES_COLUMNS, rows)
    each = samples // len(REPLICAS)
    times = np.linspace(0.0, t, each)
    sample_rows: list[dict[str, object]] = []
    for k, replica in enumerate(REPLICAS):
        rss = 300 + 40 * ((times % 97) / 97) + k + rng.normal(0, 3, each)
        for ti, ri in zip(times, rss, strict=True):
            sample_rows.append(
                {
                    "campaign": "bench",
                    "build": "v1.59.0",
                    "t": round(float(ti), 3),
                    "replica": replica,
                    "cpu_pct": 50,
                    "rss_mb": round(float(ri), 2),
                    "goroutines": 600 + k,
                    "active_runs": 300,
                    "queued_runs": 0,
                }
            )
    _write(out / "samples.csv", SAMPLES_COLUMNS, sample_rows)
    cancels = [
        {
            "t": float(i),
            "replica": REPLICAS[i % 4],
            "ack_ms": float(rng.gamma(3.0, 8.0)),
            "outcome": "acknowledged",
        }
        for i in range(1000)
    ]
    _write(out / "cancels.csv", CANCELS_COLUMNS, cancels)
    reap = [{"t": 1000.0, "event": "kill", "run_id": "", "replica": "r2"}] + [
        {"t": 1018.0 + i * 0.05, "event": "reaped", "run_id": f"run-{i}", "replica": "r2"}
        for i in range(50)
    ]
    _write(out / "reap.csv", REAP_COLUMNS, reap)
    summary = {
        "campaign": "bench",
        "build": "v1.59.0",
        "seed": seed,
        "options": {},
        "started_at_utc": "2026-12-01T00:00:00+00:00",
        "wall_s": t,
        "load_split": {r: 250_000 + i for i, r in enumerate(REPLICAS)},
        "cross_replica_circuit_share": None,
        "verdicts": [],
        "known": [],
        "new": [],
        "exit_code": 0,
    }
    (out / "summary.json").write_text(json.dumps(summary))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waves", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, default=None, help="write the campaign here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="loomchaos-bench-report-") as tmp:
        out = args.keep or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        synthetic_campaign(out, args.waves, args.samples)
        t0 = time.perf_counter()
        data = load_campaign(out)
        t1 = time.perf_counter()
        analysis = analyse(data)
        t2 = time.perf_counter()
        render_report(out)
        t3 = time.perf_counter()
        print(f"{len(data.waves)} waves, {len(data.samples)} samples")
        print(f"read {t1 - t0:.2f} s, analyse {t2 - t1:.2f} s, render_report (all) {t3 - t2:.2f} s")
        print(f"steps found: {[(s.group, s.wave, round(s.size, 1)) for s in analysis.steps]}")
        size = (out / "report.html").stat().st_size
        print(f"report.html {size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
