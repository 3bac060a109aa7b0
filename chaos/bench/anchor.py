"""Pure helpers of ``scripts/bench_anchor.py``: our driver against loomcycle's circuit-stress.

The benchmark runs both drivers as child processes against one 3-replica
cluster; what can be computed without Docker lives here so it is unit-tested:

* reading circuit-stress's output (its ``Circuits:`` summary line and its
  ``circuits.jsonl``);
* counting a process's established TCP connections to one port from
  ``/proc/<pid>/fd`` and ``/proc/<pid>/net/tcp{,6}`` (the one way both
  drivers' open connections are measured alike);
* checking that a rendered loomcycle config declares what circuit-stress
  needs (agents, models, tools, channel ACLs, channels, per-user cap);
* per-1,000 arithmetic, totals over rounds, and the Markdown table.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.bench.stats import percentile

ROLES: tuple[str, str, str] = ("researcher", "editor", "evaluator")

#: What circuit-stress's ``loomcycle.mock.yaml`` (v1.59.0) declares per agent, and
#: so what its mock FSMs call: the model each role is pinned to, its tools, its
#: memory scope and its channel ACLs (publish, subscribe).
CS_AGENTS: Mapping[str, Mapping[str, Any]] = {
    "researcher": {
        "model": "mock-researcher",
        "tools": ("Memory", "Channel", "Context"),
        "publish": ("research-done/*",),
        "subscribe": (),
    },
    "editor": {
        "model": "mock-editor",
        "tools": ("Memory", "Channel", "Context"),
        "publish": ("editing-done/*",),
        "subscribe": ("research-done/*",),
    },
    "evaluator": {
        "model": "mock-evaluator",
        "tools": ("Memory", "Channel", "Evaluation", "Context"),
        "publish": (),
        "subscribe": ("editing-done/*",),
    },
}

_CS_SUMMARY = re.compile(
    r"Circuits:\s*(\d+) total / (\d+) completed / (\d+) failed / (\d+) timeout / (\d+) skipped"
)
_SOCKET_LINK = re.compile(r"^socket:\[(\d+)\]$")
_TCP_ESTABLISHED = "01"
_CIRCUIT_OF_AGENT = re.compile(r"^(?:researcher|editor|evaluator)-c(\d+)(?:-|$)")


# -- per-1,000 arithmetic and formatting ------------------------------------------


def per_1000(value: float, count: int) -> float | None:
    """``value`` per 1,000 units of ``count``; None when nothing was counted."""
    if count <= 0:
        return None
    return value * 1000.0 / count


def fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub Markdown table; ``|`` inside a cell is escaped."""
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"row has {len(row)} cells, expected {len(headers)}: {row}")

    def line(cells: Sequence[object]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join(
        [line(headers), "|" + "|".join("---" for _ in headers) + "|", *(line(r) for r in rows)]
    )


# -- circuit-stress's output ---------------------------------------------------------


@dataclass(frozen=True)
class CsSummary:
    total: int
    completed: int
    failed: int
    timeout: int
    skipped: int


def parse_cs_summary(stdout: str) -> CsSummary | None:
    """The ``Circuits: N total / ...`` line circuit-stress prints last; None if absent."""
    match = _CS_SUMMARY.search(stdout)
    if match is None:
        return None
    return CsSummary(*(int(g) for g in match.groups()))


@dataclass(frozen=True)
class CircuitTally:
    """Circuits and runs one driver launched and completed, with circuit durations."""

    circuits: int = 0
    circuits_completed: int = 0
    runs: int = 0
    runs_completed: int = 0
    durations_s: tuple[float, ...] = ()
    failures: Mapping[str, int] = field(default_factory=dict)

    def describe_failures(self, top: int = 3) -> str:
        counts = Counter(self.failures)
        return "; ".join(f"{n}x {what}" for what, n in counts.most_common(top)) or "none"


def parse_cs_results(jsonl: str) -> CircuitTally:
    """Tally circuit-stress's ``circuits.jsonl`` (one object per circuit).

    A skipped circuit launched nothing; every other circuit launched its three
    runs (a circuit whose POST failed part-way may have launched fewer, which
    this counts as three).  A run completed when its ``agent_status`` is
    ``completed``; a circuit completed when circuit-stress says so (it also
    checks the circuit's memory outputs and score).
    """
    circuits = done = runs = runs_done = 0
    durations: list[float] = []
    failures: Counter[str] = Counter()
    for raw in jsonl.splitlines():
        if not raw.strip():
            continue
        row = json.loads(raw)
        status = str(row.get("status", ""))
        if status == "skipped":
            failures["skipped"] += 1
            continue
        circuits += 1
        runs += len(ROLES)
        agent_status = row.get("agent_status") or {}
        runs_done += sum(1 for s in agent_status.values() if s == "completed")
        if status == "completed":
            done += 1
            durations.append(float(row.get("duration_ms", 0)) / 1000.0)
        else:
            failures[f"{status}: {str(row.get('error', ''))[:90]}"] += 1
    return CircuitTally(circuits, done, runs, runs_done, tuple(durations), dict(failures))


def tally_runs(results: Iterable[tuple[str, bool, float, str]]) -> CircuitTally:
    """Tally our driver's run results ``(agent_id, completed, latency_s, ending)``.

    Agent ids are ``<role>-c<N>-<prefix>`` (chaos.workload.circuits); a circuit
    completed when all its runs did, and its duration is its slowest run's.
    """
    by_circuit: dict[str, list[tuple[bool, float]]] = {}
    failures: Counter[str] = Counter()
    runs = runs_done = 0
    for agent_id, completed, latency_s, ending in results:
        match = _CIRCUIT_OF_AGENT.match(agent_id)
        key = match.group(1) if match else agent_id
        by_circuit.setdefault(key, []).append((completed, latency_s))
        runs += 1
        runs_done += completed
        if not completed:
            failures[ending[:100]] += 1
    done = [c for c in by_circuit.values() if all(ok for ok, _ in c)]
    durations = tuple(max(lat for _, lat in c) for c in done)
    return CircuitTally(len(by_circuit), len(done), runs, runs_done, durations, dict(failures))


def spread_s(durations: Sequence[float]) -> str:
    """``p50/p95/max`` seconds of circuit durations, as one cell."""
    if not durations:
        return "n/a"
    return "/".join(
        f"{v:.2f}" for v in (percentile(durations, 50), percentile(durations, 95), max(durations))
    )


# -- established connections of one process to one port -----------------------------


def socket_inode(link: str) -> int | None:
    """The inode of a ``/proc/<pid>/fd`` link ``socket:[1234]``; None for anything else."""
    match = _SOCKET_LINK.match(link)
    return int(match.group(1)) if match else None


def established_to_port(table: str, port: int) -> set[int]:
    """Socket inodes of ESTABLISHED connections whose remote port is ``port``.

    ``table`` is the text of ``/proc/<pid>/net/tcp`` or ``tcp6``: a header line,
    then ``sl local_address rem_address st ... uid timeout inode``, addresses
    as ``HEXIP:HEXPORT``.
    """
    out: set[int] = set()
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != _TCP_ESTABLISHED:
            continue
        _, _, remote_port = fields[2].rpartition(":")
        try:
            if int(remote_port, 16) == port:
                out.add(int(fields[9]))
        except ValueError:
            continue
    return out


def connections_to_port(pid: int, port: int, proc: Path = Path("/proc")) -> int:
    """How many of process ``pid``'s sockets are established connections to ``port``.

    Raises OSError when the process is gone (or not ours to read).
    """
    base = proc / str(pid)
    inodes: set[int] = set()
    for fd in os.listdir(base / "fd"):
        try:
            inode = socket_inode(os.readlink(base / "fd" / fd))
        except OSError:  # closed between listdir and readlink
            continue
        if inode is not None:
            inodes.add(inode)
    if not inodes:
        return 0
    remote: set[int] = set()
    for name in ("tcp", "tcp6"):
        try:
            remote |= established_to_port((base / "net" / name).read_text(), port)
        except FileNotFoundError:  # no IPv6 here
            continue
    return len(inodes & remote)


# -- what circuit-stress needs from the config -----------------------------------------


def _models_of(agent: Mapping[str, Any]) -> set[str]:
    models = {str(agent["model"])} if agent.get("model") else set()
    for candidates in (agent.get("models") or {}).values():
        models |= {str(c.get("model")) for c in candidates if isinstance(c, Mapping)}
    return models


def circuit_stress_gaps(config: Mapping[str, Any], scale: int, circuits_per_user: int) -> list[str]:
    """What circuit-stress (``-scale``, ``-circuits-per-user``) needs that ``config`` lacks.

    circuit-stress runs agents ``researcher``/``editor``/``evaluator`` on the
    mock models, circuit ids ``c1..c<scale>`` (channels ``research-done/c<N>``
    and ``editing-done/c<N>`` must exist at boot: the runtime API refuses '/'),
    and starts all three runs of all circuits of a user at once, so a per-user
    cap (when on) must be at least ``3 * circuits_per_user``.
    """
    gaps: list[str] = []
    agents = config.get("agents") or {}
    for role, need in CS_AGENTS.items():
        agent = agents.get(role)
        if not isinstance(agent, Mapping):
            gaps.append(f"agent {role!r} is not declared")
            continue
        if need["model"] not in _models_of(agent):
            gaps.append(f"agent {role!r} does not use model {need['model']!r}")
        missing_tools = sorted(set(need["tools"]) - set(agent.get("tools") or ()))
        if missing_tools:
            gaps.append(f"agent {role!r} lacks tools {missing_tools}")
        if "user" not in (agent.get("memory_scopes") or ()):
            gaps.append(f"agent {role!r} lacks memory scope 'user'")
        acl = agent.get("channels") or {}
        for kind in ("publish", "subscribe"):
            missing = sorted(set(need[kind]) - set(acl.get(kind) or ()))
            if missing:
                gaps.append(f"agent {role!r} may not {kind} {missing}")
    evaluator = agents.get("evaluator")
    if isinstance(evaluator, Mapping) and "submit_any" not in (
        evaluator.get("evaluation_scopes") or ()
    ):
        gaps.append("agent 'evaluator' lacks evaluation scope 'submit_any'")
    channels = config.get("channels") or {}
    absent = [
        n
        for n in range(1, scale + 1)
        if f"research-done/c{n}" not in channels or f"editing-done/c{n}" not in channels
    ]
    if absent:
        gaps.append(f"channels for circuits {absent[0]}..{absent[-1]} are not declared")
    cap = int((config.get("concurrency") or {}).get("max_concurrent_runs_per_user") or 0)
    if 0 < cap < 3 * circuits_per_user:
        gaps.append(
            f"per-user cap {cap} < 3 x {circuits_per_user} circuits per user: "
            "circuit-stress does not retry the 429s it would get"
        )
    return gaps


# -- one driver's measured run and totals over rounds ---------------------------------


@dataclass(frozen=True)
class DriverRun:
    """One driver process's run: what it did, what it cost, what it held open."""

    driver: str
    tally: CircuitTally
    wall_s: float  # the child process, start to exit
    cpu_s: float  # user+sys of the child process, whole life (wait4 rusage)
    workload_cpu_s: float | None = None  # measured inside the process around the workload
    startup_cpu_s: float | None = None  # interpreter start and imports (ours)
    peak_streams: int | None = None  # the driver's own count of runs in flight
    peak_lb_conns: int = 0  # sampled established TCP connections to the LB port
    lb_samples: int = 0
    returncode: int = 0
    note: str = ""
    design_streams: int | None = None  # runs in flight by the driver's design, when not counted


def total(runs: Sequence[DriverRun]) -> DriverRun:
    """Rounds summed (counts, wall, CPU); peaks are the maximum over rounds."""
    if not runs:
        raise ValueError("no runs to total")

    def opt_sum(values: Iterable[float | None]) -> float | None:
        vals = list(values)
        return None if any(v is None for v in vals) else sum(v for v in vals if v is not None)

    peaks = [r.peak_streams for r in runs]
    failures: Counter[str] = Counter()
    for r in runs:
        failures.update(r.tally.failures)
    tally = CircuitTally(
        circuits=sum(r.tally.circuits for r in runs),
        circuits_completed=sum(r.tally.circuits_completed for r in runs),
        runs=sum(r.tally.runs for r in runs),
        runs_completed=sum(r.tally.runs_completed for r in runs),
        durations_s=tuple(d for r in runs for d in r.tally.durations_s),
        failures=dict(failures),
    )
    return DriverRun(
        driver=runs[0].driver,
        tally=tally,
        wall_s=sum(r.wall_s for r in runs),
        cpu_s=sum(r.cpu_s for r in runs),
        workload_cpu_s=opt_sum(r.workload_cpu_s for r in runs),
        startup_cpu_s=opt_sum(r.startup_cpu_s for r in runs),
        peak_streams=None if any(p is None for p in peaks) else max(p or 0 for p in peaks),
        peak_lb_conns=max(r.peak_lb_conns for r in runs),
        lb_samples=sum(r.lb_samples for r in runs),
        returncode=max((r.returncode for r in runs), key=abs),
        note="; ".join(dict.fromkeys(r.note for r in runs if r.note)),
        design_streams=runs[0].design_streams,
    )


def driver_rows(ours: DriverRun, theirs: DriverRun) -> list[list[str]]:
    """The comparison table's rows: one measure per row, one driver per column."""

    def both(label: str, get: Callable[[DriverRun], str]) -> list[str]:
        return [label, get(ours), get(theirs)]

    return [
        both(
            "circuits launched / completed",
            lambda r: f"{r.tally.circuits} / {r.tally.circuits_completed}",
        ),
        both("runs launched / completed", lambda r: f"{r.tally.runs} / {r.tally.runs_completed}"),
        both("wall s (process start to exit)", lambda r: f"{r.wall_s:.1f}"),
        both("driver CPU s, user+sys, whole process", lambda r: f"{r.cpu_s:.2f}"),
        both("CPU s per 1,000 runs (launched)", lambda r: fmt(per_1000(r.cpu_s, r.tally.runs))),
        both(
            "CPU s per 1,000 circuits (launched)",
            lambda r: fmt(per_1000(r.cpu_s, r.tally.circuits)),
        ),
        both(
            "of which interpreter start + imports",
            lambda r: (
                fmt(r.startup_cpu_s) if r.startup_cpu_s is not None else "not measured (Go binary)"
            ),
        ),
        both(
            "CPU s per 1,000 runs, workload only",
            lambda r: (
                fmt(per_1000(r.workload_cpu_s, r.tally.runs))
                if r.workload_cpu_s is not None
                else "not separable"
            ),
        ),
        both(
            "streams held, driver's own count (peak)",
            lambda r: (
                str(r.peak_streams)
                if r.peak_streams is not None
                else "not counted by it"
                + (f" (by design {r.design_streams} runs in flight)" if r.design_streams else "")
            ),
        ),
        both(
            "established TCP conns to LB (peak, sampled)",
            lambda r: f"{r.peak_lb_conns} ({r.lb_samples} samples)",
        ),
        both("circuit duration p50/p95/max s", lambda r: spread_s(r.tally.durations_s)),
        both("failures", lambda r: r.tally.describe_failures()),
    ]


@dataclass
class PhaseTimes:
    """Seconds per cluster phase, in the order first seen."""

    times: dict[str, list[float]] = field(default_factory=dict)

    def add(self, phase: str, seconds: float) -> None:
        self.times.setdefault(phase, []).append(seconds)

    def rows(self) -> list[list[str]]:
        out = []
        for phase, values in self.times.items():
            ordered = sorted(values)
            median = percentile(ordered, 50)
            out.append(
                [
                    phase,
                    str(len(values)),
                    f"{median:.2f}",
                    f"{ordered[0]:.2f}",
                    f"{ordered[-1]:.2f}",
                ]
            )
        return out
