#!/usr/bin/env python3
"""How long the invariant checkers take on big synthetic histories, and how much memory.

Each measurement runs in its own subprocess so its peak RSS (``resource.getrusage``)
is its own.  The history is a legal synthetic scenario
(:mod:`chaos.testing.synthetic`): runs via the load balancer, cancels, client
cuts, one replica killed and reaped, 200 database snapshots (the last one holds
every run), and an audit log with two rows per run.

    python scripts/bench_checks.py                          # streamed, 10^5 and 10^6 runs
    python scripts/bench_checks.py --sizes 100000 5000000 --repeat 2
    python scripts/bench_checks.py --paths streamed in-memory --sizes 100000
    python scripts/bench_checks.py --append 200000          # the driver's cost per record

Paths:

``streamed`` (what ``loomchaos check`` does): the history is first written to a JSONL
file by a writer child (``write_s``, ``file_mb``, the writer's own ``write_rss_mib``),
then a checker child reads it once (``read_s``: parse and gather the facts) and runs
the ten checkers (``checkers_s``); ``peak_rss_mib`` is the checker child's.

``in-memory``: the history is rendered in memory and the context built from it
(``load_s``), its indexes built (``index_s``), then the checkers; ``peak_rss_mib``
includes the history itself.

``--append N`` times ``History.invoke``/``complete`` pairs (N records) with and
without streaming to a file: the write side's cost on the driver's hot path.

Time per run should stay about flat as the size grows: every step is O(n log n) at
worst.  ``--repeat`` runs each measurement again (a fresh child each time) and keeps
the fastest, since other work on the machine only ever adds time.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SNAPSHOTS = 200


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _world(n_runs: int):  # type: ignore[no-untyped-def]
    from chaos.testing.synthetic import plan_world

    world = plan_world(n_runs, seed=1, concurrency=200.0)
    span = world.end_time
    world.snapshot_times = [span * k / SNAPSHOTS for k in range(1, SNAPSHOTS)] + [span]
    return world


def _check_all(ctx: object, out: dict[str, float]) -> None:
    from chaos.checks import ALL_CHECKS
    from chaos.checks.facts import gc_paused

    failures = 0
    total = 0.0
    with gc_paused():  # as run_checks does
        for name, check in ALL_CHECKS.items():
            t0 = time.perf_counter()
            verdict = check(ctx)  # type: ignore[arg-type]
            took = time.perf_counter() - t0
            out[name] = took
            total += took
            failures += verdict.status.value == "fail"
    out["checkers_s"] = total
    out["failed_verdicts"] = failures


def measure_in_memory(n_runs: int) -> dict[str, float]:
    """Render one synthetic history in memory and time every stage (this process)."""
    from chaos.checks.context import CheckContext
    from chaos.checks.facts import gc_paused
    from chaos.testing.synthetic import render

    out: dict[str, float] = {"runs": n_runs}
    t0 = time.perf_counter()
    world = _world(n_runs)
    history = render(world)
    del world
    out["records"] = len(history)
    out["build_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    ctx = CheckContext.from_history(history)
    out["load_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    with gc_paused():  # built inside run_checks, where collection is paused too
        _ = (
            ctx.client_by_agent,
            ctx.client_by_run_id,
            ctx.cancels_by_agent,
            ctx.final_runs,
            ctx.final_by_agent,
            ctx.client_rows,
            ctx.audit_terminal_wall,
            ctx.first_terminal_wall,
        )
    out["index_s"] = time.perf_counter() - t0
    _check_all(ctx, out)
    out["peak_rss_mib"] = _peak_mib()
    return out


def measure_write(n_runs: int, path: Path) -> dict[str, float]:
    """Write the synthetic history of ``n_runs`` runs to ``path``, streamed (this process)."""
    from chaos.testing.synthetic import render_to_path

    gc.disable()  # the bench's own generator: only the file it leaves matters
    out: dict[str, float] = {"runs": n_runs}
    t0 = time.perf_counter()
    world = _world(n_runs)
    out["plan_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    out["records"] = render_to_path(world, path)
    out["write_s"] = time.perf_counter() - t0
    out["file_mb"] = path.stat().st_size / 1e6
    out["write_rss_mib"] = _peak_mib()
    return out


def measure_streamed(path: Path) -> dict[str, float]:
    """Check a history file the way ``loomchaos check`` does (this process)."""
    from chaos.checks.streamed import context_from_path

    out: dict[str, float] = {}
    t0 = time.perf_counter()
    ctx = context_from_path(path)
    out["read_s"] = time.perf_counter() - t0
    out["read_rss_mib"] = _peak_mib()
    _check_all(ctx, out)
    out["total_s"] = out["read_s"] + out["checkers_s"]
    out["peak_rss_mib"] = _peak_mib()
    return out


def measure_append(n_records: int, path: Path) -> dict[str, float]:
    """Microseconds per record appended by the driver, with and without a stream."""
    from chaos.record.history import History

    out: dict[str, float] = {"records": n_records}
    for label, stream in (("memory_only", False), ("streamed", True)):
        history = History(seed=1)
        if stream:
            history.stream_to_path(path)
        events = [{"type": "session", "mono": 1.0}, {"type": "done", "mono": 2.0}]
        t0 = time.perf_counter()
        for i in range(n_records // 2):
            inv = history.invoke("start_run", "w0", f"a{i}", user_id=f"u{i % 50}", via="lb")
            history.complete(inv, "ok", run_id=f"r_{i:x}", stop_reason="end_turn", events=events)
        took = time.perf_counter() - t0
        if stream:
            history.close_stream()
        out[f"{label}_us_per_record"] = took / n_records * 1e6
    out["streaming_adds_us"] = out["streamed_us_per_record"] - out["memory_only_us_per_record"]
    return out


# -- the parent: one child per measurement ---------------------------------------------
def _child(*args: str) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=7200,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _best(runs: list[dict[str, float]], key: str) -> dict[str, float]:
    best = dict(min(runs, key=lambda r: r[key]))
    best["repeats"] = len(runs)
    best[f"{key}_all"] = ",".join(f"{r[key]:.1f}" for r in runs)  # type: ignore[assignment]
    return best


def _table(title: str, results: list[dict[str, float]], columns: list[str]) -> str:
    width = max(len(c) for c in [*columns, "checkers us/run", "total us/run"])
    header = f"{title:<{width}}" + "".join(f"{int(r['runs']):>16,}" for r in results)
    lines = [header, "-" * len(header)]
    for col in columns:
        cells = []
        for r in results:
            value = r.get(col, float("nan"))
            if isinstance(value, str):
                cells.append(f"{value:>16}")
            elif col in ("records", "failed_verdicts", "repeats"):
                cells.append(f"{int(value):>16,}")
            else:
                cells.append(f"{value:>16.3f}")
        lines.append(f"{col:<{width}}" + "".join(cells))
    per_run = [r["checkers_s"] / r["runs"] * 1e6 for r in results]
    lines.append(f"{'checkers us/run':<{width}}" + "".join(f"{x:>16.2f}" for x in per_run))
    if "total_s" in results[0]:
        per_run = [r["total_s"] / r["runs"] * 1e6 for r in results]
        lines.append(f"{'total us/run':<{width}}" + "".join(f"{x:>16.2f}" for x in per_run))
    return "\n".join(lines)


def _streamed(sizes: list[int], repeat: int, workdir: Path, keep: bool) -> str:
    from chaos.checks import ALL_CHECKS

    results = []
    for n in sizes:
        path = workdir / f"history-{n}.jsonl"
        written_file = path.with_suffix(".write.json")
        if keep and written_file.exists() and path.exists():
            print(f"reusing {path}", file=sys.stderr, flush=True)
            written = json.loads(written_file.read_text(encoding="utf-8"))
        else:
            print(f"writing {n:,} runs to {path} ...", file=sys.stderr, flush=True)
            written = _child("write", str(n), str(path))
            written_file.write_text(json.dumps(written), encoding="utf-8")
        runs = []
        for k in range(repeat):
            print(f"checking {n:,} runs ({k + 1}/{repeat}) ...", file=sys.stderr, flush=True)
            runs.append(_child("streamed", str(path)))
        if not keep:
            path.unlink()
            written_file.unlink()
        results.append({**written, **_best(runs, "total_s")})
    columns = [
        "records",
        "file_mb",
        "plan_s",
        "write_s",
        "write_rss_mib",
        "repeats",
        "total_s_all",
        "read_s",
        "read_rss_mib",
        *ALL_CHECKS,
        "checkers_s",
        "total_s",
        "failed_verdicts",
        "peak_rss_mib",
    ]
    return _table("streamed: runs", results, columns)


def _in_memory(sizes: list[int], repeat: int) -> str:
    from chaos.checks import ALL_CHECKS

    results = []
    for n in sizes:
        runs = []
        for k in range(repeat):
            print(f"in memory {n:,} runs ({k + 1}/{repeat}) ...", file=sys.stderr, flush=True)
            run = _child("in-memory", str(n))
            run["total_s"] = run["load_s"] + run["index_s"] + run["checkers_s"]
            runs.append(run)
        results.append(_best(runs, "total_s"))
    columns = [
        "records",
        "build_s",
        "repeats",
        "total_s_all",
        "load_s",
        "index_s",
        *ALL_CHECKS,
        "checkers_s",
        "total_s",
        "failed_verdicts",
        "peak_rss_mib",
    ]
    return _table("in memory: runs", results, columns)


def _run_child(args: list[str]) -> dict[str, float]:
    kind = args[0]
    if kind == "in-memory":
        return measure_in_memory(int(args[1]))
    if kind == "write":
        return measure_write(int(args[1]), Path(args[2]))
    if kind == "streamed":
        return measure_streamed(Path(args[1]))
    if kind == "append":
        return measure_append(int(args[1]), Path(args[2]))
    raise SystemExit(f"unknown child {kind}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument(
        "--paths", nargs="+", choices=["streamed", "in-memory"], default=["streamed"]
    )
    parser.add_argument("--repeat", type=int, default=1, help="children per measurement")
    parser.add_argument("--append", type=int, default=0, help="records for the append cost")
    parser.add_argument("--workdir", type=Path, help="where history files go (default: temp)")
    parser.add_argument(
        "--keep", action="store_true", help="keep the history files in --workdir, and reuse them"
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_run_child(args.child)))
        return 0
    if args.keep and args.workdir is None:
        parser.error("--keep needs --workdir")
    print(f"load average at start: {os.getloadavg()}", flush=True)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-checks-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        if args.append:
            result = _child("append", str(args.append), str(workdir / "append.jsonl"))
            print("append: " + json.dumps({k: round(v, 3) for k, v in result.items()}))
        if "streamed" in args.paths:
            print(_streamed(args.sizes, args.repeat, workdir, args.keep), flush=True)
        if "in-memory" in args.paths:
            print(_in_memory(args.sizes, args.repeat), flush=True)
    finally:
        (workdir / "append.jsonl").unlink(missing_ok=True)
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"load average at end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
