#!/usr/bin/env python3
"""How long the invariant checkers take on big synthetic histories, and how much memory.

Each size runs in its own subprocess so its peak RSS (``resource.getrusage``)
is its own.  The history is a legal synthetic scenario
(:mod:`chaos.testing.synthetic`): runs via the load balancer, cancels, client
cuts, one replica killed and reaped, about 200 database snapshots plus the
final one, and an audit log with two rows per run.

    python scripts/bench_checks.py                 # 10^4, 10^5, 10^6 runs
    python scripts/bench_checks.py --sizes 10000 100000

"Checkers" is the sum of the ten checks; "load" rebuilds snapshots, audit
rows and params from the history (what ``loomchaos check`` does first);
"index" builds the shared indexes every checker reads.  Time per run should
stay about flat as the size grows: every checker is O(n log n) at worst.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def measure(n_runs: int) -> dict[str, float]:
    """Build one synthetic history of ``n_runs`` runs and time every stage (this process)."""
    from chaos.checks import ALL_CHECKS
    from chaos.checks.context import CheckContext
    from chaos.testing.synthetic import plan_world, render

    out: dict[str, float] = {"runs": n_runs}
    t0 = time.perf_counter()
    world = plan_world(n_runs, seed=1, concurrency=200.0)
    span = world.end_time
    world.snapshot_times = [span * k / 200 for k in range(1, 200)] + [span]
    history = render(world)
    del world
    out["records"] = len(history)
    out["build_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    ctx = CheckContext.from_history(history)
    out["load_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    _ = (
        ctx.client_runs,
        ctx.client_by_agent,
        ctx.client_by_run_id,
        ctx.cancels_by_agent,
        ctx.final_runs,
        ctx.final_by_agent,
        ctx.records_by_key,
        ctx.audit_by_table,
        ctx.first_terminal_wall,
        ctx.fault_windows,
    )
    out["index_s"] = time.perf_counter() - t0

    failures = 0
    total = 0.0
    for name, check in ALL_CHECKS.items():
        t0 = time.perf_counter()
        verdict = check(ctx)
        took = time.perf_counter() - t0
        out[name] = took
        total += took
        failures += verdict.status.value == "fail"
    out["checkers_s"] = total
    out["failed_verdicts"] = failures
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return out


def _run_child(n_runs: int) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", str(n_runs)],
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    if proc.returncode != 0:
        raise SystemExit(f"size {n_runs} failed:\n{proc.stderr[-2000:]}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _table(results: list[dict[str, float]]) -> str:
    from chaos.checks import ALL_CHECKS

    columns = [
        "records",
        "build_s",
        "load_s",
        "index_s",
        *ALL_CHECKS,
        "checkers_s",
        "failed_verdicts",
        "peak_rss_mib",
    ]
    width = max(len(c) for c in columns)
    header = f"{'runs':<{width}}" + "".join(f"{int(r['runs']):>14,}" for r in results)
    lines = [header, "-" * len(header)]
    for col in columns:
        cells = []
        for r in results:
            value = r[col]
            cells.append(
                f"{int(value):>14,}" if col in ("records", "failed_verdicts") else f"{value:>14.3f}"
            )
        lines.append(f"{col:<{width}}" + "".join(cells))
    per_run = [r["checkers_s"] / r["runs"] * 1e6 for r in results]
    lines.append(f"{'checkers us/run':<{width}}" + "".join(f"{x:>14.2f}" for x in per_run))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child)))
        return 0
    results = []
    for n in args.sizes:
        print(f"measuring {n:,} runs ...", file=sys.stderr, flush=True)
        results.append(_run_child(n))
    print(_table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
