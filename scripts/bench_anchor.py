#!/usr/bin/env python3
"""Our circuit driver against loomcycle's circuit-stress, on one 3-replica cluster, in one run.

A benchmark: it prints numbers and asserts nothing.  On a loomcycle cluster
(3 replicas behind nginx on one Postgres, mock provider) it runs, as two
separate child processes measured the same way:

* ``ours``: this suite's driver (chaos.workload.circuits.CircuitWorkload over
  chaos.workload.driver.Driver and the HTTP/SSE LoomcycleClient), one wave of
  ``--circuits`` circuits, all in flight at once;
* ``circuit-stress``: loomcycle's own load driver (test/load/circuit-stress),
  ``-scale --circuits`` (it starts every circuit at once by design).

Both run the same circuits: researcher, editor, evaluator of one user, one
prompt naming ``c<N>``, the mock FSMs talking over ``research-done/c<N>`` and
``editing-done/c<N>``.  Driver CPU is user+sys of the child process
(``wait4`` rusage); streams held are the driver's own count where it has one
and, for both, established TCP connections of the child to the LB port,
sampled from ``/proc/<pid>/fd`` and ``/proc/<pid>/net/tcp``.  It also times
the cluster: first start (cold), a second start (warm: images present,
engine caches warm), reset of a healthy cluster, teardown.

    python scripts/bench_anchor.py                      # 30 circuits, 1 round, a few minutes
    python scripts/bench_anchor.py --circuits 60 --rounds 2 --circuits-per-user 10

Circuit ids: circuit-stress always uses c1..c<N> (and users user-001..);
ours uses c<N*r+1>..c<N*(r+1)> in round r, so no two waves share a channel
queue and no drain is needed.  The cluster declares c1..c<N*(rounds+1)>.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from chaos.bench.anchor import (  # noqa: E402
    DriverRun,
    PhaseTimes,
    circuit_stress_gaps,
    connections_to_port,
    driver_rows,
    markdown_table,
    parse_cs_results,
    parse_cs_summary,
    tally_runs,
    total,
)
from chaos.errors import SetupError  # noqa: E402
from chaos.sut.loomcycle.settings import settings_of, with_settings  # noqa: E402

CS_MODULE = "github.com/denn-gubsky/loomcycle/test/load/circuit-stress"
#: Bounds: a child driver gets its circuit timeout plus this, then is killed.
CHILD_MARGIN_S = 90.0
SAMPLE_INTERVAL_S = 0.2
KILL_WAIT_S = 10.0
MAX_CIRCUITS = 300
MAX_ROUNDS = 5


def _args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--circuits", type=int, default=30, help="circuits per driver per round")
    p.add_argument("--rounds", type=int, default=1, help="rounds (each runs both drivers)")
    p.add_argument(
        "--circuits-per-user",
        type=int,
        default=10,
        help="circuits sharing one user id (circuit-stress's default is 10)",
    )
    p.add_argument("--latency-ms", type=int, default=200, help="mock provider latency per call")
    p.add_argument("--jitter-ms", type=int, default=50, help="mock provider latency jitter")
    p.add_argument("--circuit-timeout-s", type=float, default=120.0, help="per circuit/run bound")
    p.add_argument("--image-source", choices=("local", "public"), default="local")
    # Internal: the child process that runs our driver.
    p.add_argument("--worker", choices=("ours",), help=argparse.SUPPRESS)
    p.add_argument("--base-url", help=argparse.SUPPRESS)
    p.add_argument("--token", help=argparse.SUPPRESS)
    p.add_argument("--first-id", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--prefix", default="ba", help=argparse.SUPPRESS)
    p.add_argument("--per-user-cap", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not 1 <= args.circuits <= MAX_CIRCUITS:
        p.error(f"--circuits must be 1..{MAX_CIRCUITS}")
    if not 1 <= args.rounds <= MAX_ROUNDS:
        p.error(f"--rounds must be 1..{MAX_ROUNDS}")
    if args.circuits_per_user < 1:
        p.error("--circuits-per-user must be >= 1")
    return args


# -- the child process that runs our driver -------------------------------------------


async def _worker_ours(args: argparse.Namespace) -> dict[str, Any]:
    from chaos.record.history import History
    from chaos.sut.loomcycle import LoomcycleClient
    from chaos.sut.loomcycle.adapter import QUOTA_RELEASE_LAG_S
    from chaos.workload.circuits import CircuitPool, CircuitWorkload, DrainResult
    from chaos.workload.driver import Driver
    from chaos.workload.gates import CapPolicy
    from chaos.workload.shapes import WaveContext

    startup_cpu_s = time.process_time()  # interpreter start and every import, before any work

    async def no_drain(circuit: int) -> DrainResult:
        # Every id is fresh (declared at boot, never used before), so the pool never drains.
        raise SetupError(f"circuit c{circuit} would need a drain; the benchmark reuses no id")

    n = args.circuits
    history = History(meta={"bench": "anchor"})
    pool = CircuitPool(range(args.first_id, args.first_id + n), no_drain, history, fresh=True)
    workload = CircuitWorkload(pool, circuits_per_user=args.circuits_per_user)
    ctx = WaveContext(prefix=args.prefix, phase="anchor", phase_index=0, wave=0, scale=n)
    async with LoomcycleClient(args.base_url, args.token) as client:
        driver = Driver(
            client,
            history,
            policy=CapPolicy.gated(args.per_user_cap, release_lag_s=QUOTA_RELEASE_LAG_S),
            launch_slots=3 * n,  # every circuit in flight at once, as circuit-stress does
            run_timeout_s=args.circuit_timeout_s,
            name="anchor",
        )
        cpu0, wall0 = time.process_time(), time.monotonic()
        results = await workload.wave(driver, ctx)
        cpu1, wall1 = time.process_time(), time.monotonic()
    return {
        "results": [
            [r.agent_id, r.completed, r.latency_s, f"{r.end}: {r.error or r.code or ''}"]
            for r in results
        ],
        "workload_cpu_s": cpu1 - cpu0,
        "workload_wall_s": wall1 - wall0,
        "startup_cpu_s": startup_cpu_s,
        "peak_streams": driver.launch.peak,
    }


def _run_worker(args: argparse.Namespace) -> int:
    out = asyncio.run(_worker_ours(args))
    print(json.dumps(out), flush=True)
    return 0


# -- a measured child process -----------------------------------------------------------


@dataclass(frozen=True)
class ChildUsage:
    returncode: int
    wall_s: float
    cpu_s: float
    peak_lb_conns: int
    samples: int
    stdout: str
    stderr: str


async def _run_measured(
    cmd: Sequence[str], *, env: dict[str, str], lb_port: int, timeout_s: float, workdir: Path
) -> ChildUsage:
    """Run ``cmd``; its rusage (``wait4``) and its peak connections to the LB port.

    The child gets its own session (Ctrl-C reaches only us) and is killed,
    with its group, on timeout, error or interruption.
    """
    began = time.monotonic()
    proc = _spawn(cmd, env=env, workdir=workdir)
    # wait4, not Popen.wait: it also returns the child's resource usage.
    waiter = asyncio.ensure_future(asyncio.to_thread(os.wait4, proc.pid, 0))
    peak = samples = 0
    try:
        async with asyncio.timeout(timeout_s):
            while not waiter.done():
                with contextlib.suppress(OSError):  # gone between two looks
                    peak = max(peak, connections_to_port(proc.pid, lb_port))
                    samples += 1
                await asyncio.wait({waiter}, timeout=SAMPLE_INTERVAL_S)
        _pid, status, usage = waiter.result()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await asyncio.wait({waiter}, timeout=KILL_WAIT_S)
        proc.returncode = -9  # reaped by the waiter; keep Popen from waiting again
        raise
    wall = time.monotonic() - began
    proc.returncode = os.waitstatus_to_exitcode(status)
    return ChildUsage(
        returncode=proc.returncode,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_lb_conns=peak,
        samples=samples,
        stdout=(workdir / "stdout.txt").read_text(errors="replace"),
        stderr=(workdir / "stderr.txt").read_text(errors="replace"),
    )


def _spawn(cmd: Sequence[str], *, env: dict[str, str], workdir: Path) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in ``workdir`` with its output in files there, in a session of its own."""
    with (workdir / "stdout.txt").open("wb") as out, (workdir / "stderr.txt").open("wb") as err:
        return subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=env,
            cwd=workdir,
            start_new_session=True,
        )


def _tail(text: str, lines: int = 5) -> str:
    return " | ".join(text.strip().splitlines()[-lines:])[:600]


async def _drive_ours(
    args: argparse.Namespace, base_url: str, token: str, lb_port: int, rnd: int, session: str
) -> DriverRun:
    n = args.circuits
    workdir = Path(tempfile.mkdtemp(prefix=f"bench_anchor-ours-r{rnd}-"))
    cmd = [
        sys.executable,
        str(SCRIPT),
        "--worker",
        "ours",
        "--base-url",
        base_url,
        "--token",
        token,
        "--circuits",
        str(n),
        "--circuits-per-user",
        str(args.circuits_per_user),
        "--first-id",
        str(n * rnd + 1),
        "--prefix",
        f"ba{session[:6]}r{rnd}",
        "--per-user-cap",
        str(3 * args.circuits_per_user),
        "--circuit-timeout-s",
        str(args.circuit_timeout_s),
    ]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    try:
        usage = await _run_measured(
            cmd,
            env=env,
            lb_port=lb_port,
            timeout_s=args.circuit_timeout_s + CHILD_MARGIN_S,
            workdir=workdir,
        )
        lines = [ln for ln in usage.stdout.splitlines() if ln.startswith("{")]
        if usage.returncode != 0 or not lines:
            raise SetupError(
                f"our driver exited {usage.returncode} without results: {_tail(usage.stderr)}"
            )
        out = json.loads(lines[-1])
    finally:
        _remove(workdir)
    tally = tally_runs((str(a), bool(c), float(lat), str(e)) for a, c, lat, e in out["results"])
    return DriverRun(
        driver="ours",
        tally=tally,
        wall_s=usage.wall_s,
        cpu_s=usage.cpu_s,
        workload_cpu_s=float(out["workload_cpu_s"]),
        startup_cpu_s=float(out["startup_cpu_s"]),
        peak_streams=int(out["peak_streams"]),
        peak_lb_conns=usage.peak_lb_conns,
        lb_samples=usage.samples,
        returncode=usage.returncode,
    )


def _cs_command(binary: Path, args: argparse.Namespace, base_url: str, token: str) -> list[str]:
    return [
        str(binary),
        "-scale",
        str(args.circuits),
        "-circuits-per-user",
        str(args.circuits_per_user),
        "-base-url",
        base_url,
        "-token",
        token,
        "-results-dir",
        "results",
        "-circuit-timeout",
        f"{args.circuit_timeout_s:g}s",
    ]


async def _drive_cs(
    binary: Path, args: argparse.Namespace, base_url: str, token: str, lb_port: int, rnd: int
) -> DriverRun:
    workdir = Path(tempfile.mkdtemp(prefix=f"bench_anchor-cs-r{rnd}-"))
    try:
        usage = await _run_measured(
            _cs_command(binary, args, base_url, token),
            env=dict(os.environ),
            lb_port=lb_port,
            timeout_s=args.circuit_timeout_s + CHILD_MARGIN_S,
            workdir=workdir,
        )
        jsonl = workdir / "results" / "circuits.jsonl"
        if usage.returncode != 0 or not jsonl.is_file():
            raise SetupError(
                f"circuit-stress exited {usage.returncode} without results: "
                f"{_tail(usage.stderr + usage.stdout)}"
            )
        tally = parse_cs_results(jsonl.read_text())
    finally:
        _remove(workdir)
    summary = parse_cs_summary(usage.stdout)
    note = ""
    if summary is None:
        note = "no summary line in circuit-stress's output"
    elif summary.completed != tally.circuits_completed:
        note = f"its summary says {summary.completed} completed"
    return DriverRun(
        driver="circuit-stress",
        tally=tally,
        wall_s=usage.wall_s,
        cpu_s=usage.cpu_s,
        peak_lb_conns=usage.peak_lb_conns,
        lb_samples=usage.samples,
        returncode=usage.returncode,
        note=note,
        design_streams=3 * args.circuits,
    )


def _remove(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


# -- set-up: images, the circuit-stress binary, the spec --------------------------------


def _go_environment() -> None:
    """GOPROXY/GONOSUMDB as scripts/goenv.sh sets them (the local module mirror)."""
    script = ROOT / "scripts" / "goenv.sh"
    done = subprocess.run(
        [
            "bash",
            "-c",
            f'source {shlex.quote(str(script))} && printf "%s\\n%s\\n" '
            '"${GOPROXY:-}" "${GONOSUMDB:-}"',
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise SetupError(f"sourcing {script} failed: {_tail(done.stderr)}")
    proxy, _, nosumdb = done.stdout.partition("\n")
    if proxy.strip():
        os.environ["GOPROXY"] = proxy.strip()
    if nosumdb.strip():
        os.environ["GONOSUMDB"] = nosumdb.strip()


def _circuit_stress_binary() -> tuple[Path, bool]:
    """``go install`` circuit-stress at loomcycle's version into the cache (reused when current)."""
    from chaos.provision.binaries import (
        GoInstallFailed,
        GoProgram,
        install_go_program,
        loomcycle_program,
    )
    from chaos.provision.common import cache_dir

    _go_environment()
    program = GoProgram("circuit-stress", CS_MODULE, loomcycle_program().version)
    try:
        return install_go_program(program, cache_dir(), lambda line: print(line, file=sys.stderr))
    except GoInstallFailed as exc:
        raise SetupError(f"cannot build circuit-stress: {exc.line} (log: {exc.log})") from None


def _spec(args: argparse.Namespace) -> Any:
    from chaos.sut.loomcycle.settings import MockProvider
    from chaos.sut.loomcycle.specs import SMOKE_SPEC

    n = args.circuits
    return with_settings(
        SMOKE_SPEC,
        circuits=n * (args.rounds + 1),
        mock=MockProvider(latency_ms=args.latency_ms, jitter_ms=args.jitter_ms),
        # A circuit takes 3 slots of its user; circuit-stress starts all of a user's at once.
        max_runs_per_user=3 * args.circuits_per_user,
        # Per replica: room for every run of a wave, so no researcher queues behind
        # the editors that wait for it (that would time out, a benchmark artefact).
        max_concurrent_runs=max(32, 3 * n),
    )


# -- the benchmark ------------------------------------------------------------------------


@dataclass
class Report:
    ours: list[DriverRun]
    theirs: list[DriverRun]
    phases: PhaseTimes
    gaps: list[str]
    cs_command: str
    provision_note: str


async def _bench(args: argparse.Namespace) -> Report:
    from chaos.cluster.cluster import Cluster
    from chaos.labels import new_session_id
    from chaos.provision import provision
    from chaos.sut.loomcycle import LoomcycleAdapter
    from chaos.sut.loomcycle.config import render_config
    from chaos.sut.loomcycle.hooks import verify_backplane, wait_idle

    phases = PhaseTimes()
    began = time.monotonic()
    provisioned = await asyncio.to_thread(
        provision, args.image_source, progress=lambda line: print(line, file=sys.stderr)
    )
    label = "provision (rebuilt something)" if provisioned.rebuilt else "provision (all reused)"
    phases.add(label, time.monotonic() - began)
    if provisioned.images.loomcycle is None:
        raise SetupError(f"loomcycle unavailable: {provisioned.loomcycle_error}")
    binary, built = await asyncio.to_thread(_circuit_stress_binary)
    spec = _spec(args)
    gaps = circuit_stress_gaps(render_config(spec), args.circuits, args.circuits_per_user)
    session = new_session_id()

    def new_cluster() -> Cluster:
        return Cluster(
            spec,
            provisioned.images,
            session_id=session,
            adapter=LoomcycleAdapter.for_spec(spec),
            verify_backplane=verify_backplane,
            wait_idle=wait_idle,
        )

    ours: list[DriverRun] = []
    theirs: list[DriverRun] = []
    cs_command = ""
    cluster = new_cluster()
    try:
        log(f"cluster {cluster.id}: first start (cold) ...")
        await cluster.start()
        phases.add("cold start (first cluster start)", cluster.timings["start_s"])
        lb_url = cluster.lb_url
        lb_port = urlsplit(lb_url).port or 80
        token = settings_of(spec).auth_token
        cs_command = shlex.join(_cs_command(binary, args, lb_url, "<settings_of(spec).auth_token>"))
        for rnd in range(1, args.rounds + 1):
            # Alternate who goes first, so neither always meets the fresher cluster.
            order = ("ours", "cs") if rnd % 2 else ("cs", "ours")
            for who in order:
                log(f"round {rnd}: {who}, {args.circuits} circuits ...")
                if who == "ours":
                    run = await _drive_ours(args, lb_url, token, lb_port, rnd, session)
                    ours.append(run)
                else:
                    run = await _drive_cs(binary, args, lb_url, token, lb_port, rnd)
                    theirs.append(run)
                log(
                    f"  {run.tally.circuits_completed}/{run.tally.circuits} circuits, "
                    f"cpu {run.cpu_s:.2f}s, wall {run.wall_s:.1f}s; reset ..."
                )
                phases.add("reset (healthy, after a driver)", await cluster.reset())
    finally:
        t0 = time.monotonic()
        await cluster.teardown()
        phases.add("teardown", time.monotonic() - t0)
    cluster = new_cluster()
    try:
        log(f"cluster {cluster.id}: second start (warm) ...")
        await cluster.start()
        phases.add("warm start (second cluster start)", cluster.timings["start_s"])
        phases.add("reset (healthy, idle)", await cluster.reset())
    finally:
        t0 = time.monotonic()
        await cluster.teardown()
        phases.add("teardown", time.monotonic() - t0)
    note = (
        f"provision rebuilt {list(provisioned.rebuilt)}"
        if provisioned.rebuilt
        else "images already present for both starts (provision rebuilt nothing)"
    )
    if built:
        note += "; circuit-stress binary built this run"
    return Report(ours, theirs, phases, gaps, cs_command, note)


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _print_report(args: argparse.Namespace, report: Report, argv: Sequence[str]) -> None:
    n, rounds = args.circuits, args.rounds
    print(
        f"\n## Driver cost: ours vs circuit-stress, {n} circuits x {rounds} round(s), "
        f"{args.circuits_per_user} circuits per user, mock {args.latency_ms}+-"
        f"{args.jitter_ms} ms per call, {os.cpu_count()} cores\n"
    )
    ours, theirs = total(report.ours), total(report.theirs)
    print(
        markdown_table(
            ["measure", "ours (loomchaos Driver)", "circuit-stress"], driver_rows(ours, theirs)
        )
    )
    for run in (ours, theirs):
        if run.note:
            print(f"\n{run.driver}: {run.note}")
    print("\n## 3-replica cluster\n")
    print(markdown_table(["phase", "n", "p50 s", "min s", "max s"], report.phases.rows()))
    print(f"\n{report.provision_note}.")
    print("\n## Workload parity\n")
    if report.gaps:
        print("The cluster config lacks what circuit-stress needs:")
        for gap in report.gaps:
            print(f"- {gap}")
    else:
        print(
            "- config check: agents researcher/editor/evaluator on mock-researcher/-editor/"
            "-evaluator, tools, channel ACLs, channels and per-user cap all fit circuit-stress."
        )
    print(
        f"- circuit ids: circuit-stress c1..c{n} (users user-001..), ours "
        f"c{n + 1}..c{n * (rounds + 1)} (prefixed users); same prompt text, same agents.\n"
        "- client work differs by design: circuit-stress drains each SSE stream unparsed,\n"
        "  polls GET /v1/agents/{id} every 750 ms per pending role, then reads 3 memory keys\n"
        "  + score per completed circuit, sweeps the users' memory and queries /v1/_events;\n"
        "  ours parses every SSE event, records a history, and polls only after a broken stream.\n"
        "- 'completed' differs: circuit-stress also requires the memory outputs and a score;\n"
        "  ours counts a circuit complete when its three runs end `done`.\n"
        "- TCP connections include idle keep-alive and poll connections, not only streams."
    )
    print("\n## Commands\n")
    print(f"- this benchmark: `{shlex.join([sys.executable, *argv])}`")
    print(f"- circuit-stress, per round: `{report.cs_command}`")


def main(argv: Sequence[str] | None = None) -> int:
    raw = list(sys.argv if argv is None else ["scripts/bench_anchor.py", *argv])
    args = _args(raw[1:])
    if args.worker == "ours":
        return _run_worker(args)
    try:
        report = asyncio.run(_bench(args))
    except SetupError as exc:
        print(f"bench_anchor: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("interrupted; clusters torn down, child drivers killed", file=sys.stderr)
        return 130
    _print_report(args, report, raw)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
