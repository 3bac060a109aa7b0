#!/usr/bin/env python3
"""The workload driver's own cost: CPU per 1,000 runs, open streams held, loop lag.

Measures the suite's DRIVER (chaos.workload.driver.Driver with the real
HTTP/SSE client, chaos.sut.loomcycle.client.LoomcycleClient), not any
target.  loomcycle cannot run on this machine, so the driver opens its streams
against chaos.sut.loomcycle.bench_sink: a benchmark LOAD SINK, NOT a stand-in for loomcycle.
The sink only speaks the wire shape the client parses (session, agent, text,
keepalive comments during a hold, done end_turn) and has none of the target's
behaviour; its numbers say nothing about loomcycle.  It runs in a SEPARATE
PROCESS on 127.0.0.1, so its CPU is not charged to the driver, but on a small
machine the two share the cores: the driver's wall-clock figures (runs/s,
open time, lag) include waiting for the sink.  The sink's CPU is printed
alongside so that share is visible.

    python scripts/bench_driver.py                          # defaults, about 4 min here
    python scripts/bench_driver.py --levels 50 200 500 --runs 3000
    python scripts/bench_driver.py --steps 500 1000 2000 4000 8000 16000 19000
    python scripts/bench_driver.py --skip-cpu --json out.json

Phase 1, CPU: ``--runs`` runs of ``--hold-ms`` each, with ``--levels`` runs
in flight; driver CPU = time.process_time() (user+sys of this process).
Phase 2, ramp: hold ``--steps`` streams at once (cumulative), each step held
for ``--hold-window-s`` with no stream ending; stops at the first failure,
at ``--ramp-budget-s``, or when a step would not fit the open-files limit
(raised to the hard limit first).  Loop lag (chaos.workload.lag.LagSampler,
20 ms interval) is sampled during each phase.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from chaos.bench.driver_load import CpuLevel, Ramp, measure_cpu, ramp_streams  # noqa: E402
from chaos.bench.process import SinkProcess  # noqa: E402
from chaos.bench.stats import format_table  # noqa: E402
from chaos.sut.loomcycle.bench_sink import raise_open_files_limit  # noqa: E402

#: File descriptors kept free beyond one per stream: the interpreter, the sink's
#: pipes, the lag sampler, status polls.
FD_RESERVE = 200


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument(
        "--levels",
        type=int,
        nargs="+",
        default=[50, 200, 500],
        help="runs in flight for the CPU phase",
    )
    p.add_argument("--runs", type=int, default=2000, help="runs per CPU level")
    p.add_argument("--hold-ms", type=float, default=20.0, help="sink hold per CPU-phase run")
    p.add_argument("--warmup", type=int, default=200, help="unmeasured runs before phase 1")
    p.add_argument(
        "--steps",
        type=int,
        nargs="+",
        default=[500, 1000, 2000, 4000, 8000, 12000, 16000],
        help="open streams to hold, cumulative",
    )
    p.add_argument(
        "--open-batch",
        type=int,
        default=250,
        help="ramp: streams opened at once, each batch open before the next",
    )
    p.add_argument("--step-timeout-s", type=float, default=60.0)
    p.add_argument("--hold-window-s", type=float, default=5.0)
    p.add_argument("--ramp-budget-s", type=float, default=150.0)
    p.add_argument(
        "--keepalive-ms",
        type=float,
        default=5000.0,
        help="sink keepalive comment interval while holding (loomcycle: 20000)",
    )
    p.add_argument(
        "--pools",
        type=int,
        default=1,
        help="experiment: deal streams over this many LoomcycleClients (the suite uses 1)",
    )
    p.add_argument("--skip-cpu", action="store_true")
    p.add_argument("--skip-ramp", action="store_true")
    p.add_argument("--json", type=Path, help="also write the results here")
    return p.parse_args(argv)


def _cpu_table(levels: list[CpuLevel]) -> str:
    rows = [
        [
            lv.in_flight,
            f"{lv.completed}/{lv.runs}",
            f"{lv.cpu_s:.2f}",
            f"{lv.cpu_per_1000_s:.2f}",
            f"{lv.runs_per_s:.0f}",
            f"{lv.latency.p50 * 1e3:.0f}/{lv.latency.p99 * 1e3:.0f}",
            lv.lag.ms(),
            f"{lv.sink_cpu_s:.2f}",
        ]
        for lv in levels
    ]
    headers = [
        "in flight",
        "done/runs",
        "driver cpu s",
        "cpu s/1000 runs",
        "runs/s",
        "latency p50/p99 ms",
        "loop lag p50/p99/max ms",
        "sink cpu s",
    ]
    return format_table(headers, rows)


def _ramp_table(ramp: Ramp) -> str:
    rows = [
        [
            s.target,
            "yes" if s.held else "NO",
            s.open_streams,
            f"{s.open_s:.1f}",
            f"{s.open_cpu_s:.1f}",
            s.open_lag.ms(),
            s.hold_lag.ms() if s.held else "-",
            f"{s.hold_cpu_s:.2f}" if s.held else "-",
            f"{s.rss_mib:.0f}",
        ]
        for s in ramp.steps
    ]
    headers = [
        "streams",
        "held",
        "open now",
        "open s",
        "open cpu s",
        "lag opening ms",
        "lag holding ms",
        "hold cpu s",
        "rss MiB",
    ]
    return format_table(headers, rows)


def _ramp_summary(ramp: Ramp, fd_limit: int, dropped: list[int]) -> list[str]:
    lines = []
    best = ramp.highest_held
    if best is None:
        lines.append("most concurrent open streams held: none (the first step failed)")
    else:
        lines.append(
            f"most concurrent open streams held by one driver process: {best.target} "
            f"(loop lag while holding them, p50/p99/max ms: {best.hold_lag.ms()}; "
            f"while opening: {best.open_lag.ms()})"
        )
    failed = ramp.first_failed
    if failed is not None:
        lines.append(f"step {failed.target} failed: {failed.failure}")
    elif best is not None and not ramp.skipped and not dropped:
        lines.append(f"every step held; the limit is above {best.target}")
    if ramp.skipped:
        lines.append(f"steps not tried: {ramp.skipped} (after a failure or the time budget)")
    if dropped:
        lines.append(
            f"steps not tried: {dropped} (open-files limit {fd_limit} minus {FD_RESERVE} reserve)"
        )
    lines.append(
        f"after the release: {ramp.drained} streams ended done; other endings: "
        f"{ramp.drain_failures}"
    )
    return lines


async def _run(args: argparse.Namespace, fd_limit: int) -> dict[str, Any]:
    out: dict[str, Any] = {"cpus": os.cpu_count(), "fd_limit": fd_limit}
    fits = [s for s in args.steps if s <= fd_limit - FD_RESERVE]
    dropped = [s for s in args.steps if s > fd_limit - FD_RESERVE]
    lifetime = 600.0 + args.ramp_budget_s + args.step_timeout_s
    async with SinkProcess(keepalive_ms=args.keepalive_ms, max_lifetime_s=lifetime) as sink:
        print(
            f"sink (benchmark load sink, not loomcycle): pid {sink.pid}, {sink.base_url}",
            file=sys.stderr,
            flush=True,
        )
        if not args.skip_cpu:
            if args.warmup:
                warm = min(args.levels)
                await measure_cpu(
                    sink.base_url,
                    in_flight=warm,
                    runs=max(args.warmup, warm),
                    hold_ms=args.hold_ms,
                    sink_cpu=sink.cpu_s,
                    pools=args.pools,
                )
            levels = []
            for level in args.levels:
                print(
                    f"phase 1: {args.runs} runs, {level} in flight ...", file=sys.stderr, flush=True
                )
                levels.append(
                    await measure_cpu(
                        sink.base_url,
                        in_flight=level,
                        runs=max(args.runs, level),
                        hold_ms=args.hold_ms,
                        sink_cpu=sink.cpu_s,
                        pools=args.pools,
                    )
                )
            print(f"\nDriver CPU per 1,000 completed runs (hold {args.hold_ms:g} ms each):")
            print(_cpu_table(levels))
            for lv in levels:
                if lv.failures != "none":
                    print(f"  {lv.in_flight} in flight, not done: {lv.failures}")
            out["cpu"] = [
                dataclasses.asdict(lv) | {"cpu_per_1000_s": lv.cpu_per_1000_s} for lv in levels
            ]
        if not args.skip_ramp and fits:
            print(f"phase 2: ramp {fits} ...", file=sys.stderr, flush=True)
            ramp = await ramp_streams(
                sink.base_url,
                steps=fits,
                release=sink.release,
                step_timeout_s=args.step_timeout_s,
                hold_window_s=args.hold_window_s,
                budget_s=args.ramp_budget_s,
                open_batch=args.open_batch,
                pools=args.pools,
            )
            print(
                f"\nOpen streams held at once (keepalive every {args.keepalive_ms:g} ms, "
                f"hold window {args.hold_window_s:g} s, open-files limit {fd_limit}):"
            )
            print(_ramp_table(ramp))
            for line in _ramp_summary(ramp, fd_limit, dropped):
                print(line)
            out["ramp"] = dataclasses.asdict(ramp)
    return out


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    fd_limit = raise_open_files_limit()
    started = time.monotonic()
    try:
        out = asyncio.run(_run(args, fd_limit))
    except KeyboardInterrupt:
        print("interrupted; the sink process was stopped", file=sys.stderr)
        return 130
    took = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        f"\n{os.cpu_count()} cores, shared by the driver and the sink process; "
        f"total {took:.0f} s, driver peak RSS {usage.ru_maxrss / 1024:.0f} MiB"
    )
    if args.json:
        out["total_s"] = took
        args.json.write_text(json.dumps(out, indent=2, default=_jsonable) + "\n")
    return 0


def _jsonable(value: object) -> object:
    if isinstance(value, float) and math.isnan(value):
        return None
    return str(value)


if __name__ == "__main__":
    raise SystemExit(main())
