"""What a campaign is asked to do: its options, their defaults, and the text forms they parse.

Every size is an option; the defaults are sized for a 2-core machine and
finish in minutes.  Parsing errors are :class:`OptionError` with one line
that names the option and the form it expects (the CLI prints it and exits 2).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CAMPAIGNS = ("baseline", "burst", "sweep", "faults", "sustained", "ramp", "soak", "compare")
#: Campaigns whose legs run one burst wave each: the only ones that may run circuits
#: (a circuit id's channels are declared at boot and not reused, see chaos.workload.circuits).
BURST_CAMPAIGNS = ("baseline", "burst", "sweep", "faults", "compare")
WORKLOADS = ("single", "circuit")
#: The circuit workload's mock latency per provider call when none is given: a circuit
#: makes about fifteen calls in sequence (chaos/bench/anchor.py measured ~3.7 s at 200 ms).
CIRCUIT_LATENCY_MS, CIRCUIT_JITTER_MS = 200, 50


class OptionError(ValueError):
    """A campaign option with a bad value; the message is one line for the user."""


@dataclass(frozen=True)
class ReplicaLimit:
    """A replica's CPU (cores, may be fractional) and memory (MiB) limits; None: unlimited."""

    cpus: float | None = None
    memory_mb: int | None = None

    def describe(self) -> str:
        cpu = "-" if self.cpus is None else f"{self.cpus:g}cpu"
        mem = "-" if self.memory_mb is None else f"{self.memory_mb}MiB"
        return f"{cpu}/{mem}"


@dataclass(frozen=True)
class PhaseSpec:
    """``scale`` units per wave for ``duration_s`` (a burst: one wave, ``duration_s`` None)."""

    name: str
    scale: int
    duration_s: float | None = None

    @property
    def is_burst(self) -> bool:
        return self.duration_s is None


@dataclass(frozen=True)
class Defaults:
    """One campaign's default sizes (``loomchaos campaign NAME --help`` prints them)."""

    replicas: int = 3
    scale: int = 60
    phases: str = ""
    # Runs of ~2 s (as the smoke test's): long enough that the database snapshots,
    # every 0.5 s, see the burst holding its quota slots on a loaded 2-core machine.
    latency_ms: int = 2_000
    jitter_ms: int = 250
    cancels: int = 0
    kill: bool = False
    replica_counts: str = "1,2,3,4"
    repetitions: int = 3
    db_sample_s: float = 0.5
    segment_s: float | None = None
    #: False: loomcycle without cluster mode (one process, no coord), the baseline's mode.
    cluster_mode: bool = True


DEFAULTS: Mapping[str, Defaults] = {
    # Experiment 1: the single-binary reference: one loomcycle process without cluster
    # mode (same Postgres store, no coord), one burst, driven at the process directly.
    "baseline": Defaults(replicas=1, scale=40, cluster_mode=False),
    "burst": Defaults(),
    # Experiment 2: the same burst across replica counts.
    "sweep": Defaults(),
    # Experiment 3: runs of ~10 s, so the victim surely owns running runs when killed
    # and cancels find runs still running.
    "faults": Defaults(latency_ms=10_000, jitter_ms=1_000, cancels=12, kill=True),
    # Experiments 4 and 5: low, high, low, waves back to back.
    "sustained": Defaults(phases="20x40,40x40,20x40", db_sample_s=1.0),
    # Experiments 6 and 7: rising scales until the knee shows.
    "ramp": Defaults(phases="20x20,40x20,80x20,160x20", db_sample_s=1.0),
    # Experiment 8: one long phase; --minutes sets its length.  Judged in segments of
    # 5 min (each its own scenario frame and id prefix), snapshots every 10 s: a
    # snapshot reads every run of its segment, so the cost per segment stays flat.
    "soak": Defaults(phases="30x300", db_sample_s=10.0, segment_s=300.0),
    # The same burst on two builds, interleaved.
    "compare": Defaults(),
}


@dataclass(frozen=True)
class CampaignOptions:
    campaign: str
    build: str
    replicas: int
    phases: tuple[PhaseSpec, ...]
    seed: int
    workload: str = "single"
    latency_ms: int = 2_000
    jitter_ms: int = 250
    per_user_cap: int = 4
    max_concurrent_runs: int = 32
    run_timeout_s: float = 120.0
    replica_counts: tuple[int, ...] = ()
    cancels: int = 0
    kill: bool = False
    repetitions: int = 3
    baseline_build: str | None = None
    candidate_build: str | None = None
    pg_settings: tuple[tuple[str, str], ...] = ()
    replica_env: tuple[tuple[str, str], ...] = ()
    limits: tuple[tuple[str, ReplicaLimit], ...] = ()
    db_sample_s: float = 1.0
    segment_s: float | None = None
    sample_interval_s: float = 1.0
    #: False: every leg runs loomcycle without cluster mode (one process; the baseline).
    cluster_mode: bool = True
    strict: bool = False
    out: Path | None = None
    sabotage: bool = False
    extra: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """The options as summary.json records them (plain JSON values)."""
        return {
            "campaign": self.campaign,
            "build": self.build,
            "replicas": self.replicas,
            "phases": [
                {"name": p.name, "scale": p.scale, "duration_s": p.duration_s} for p in self.phases
            ],
            "seed": self.seed,
            "workload": self.workload,
            "latency_ms": self.latency_ms,
            "jitter_ms": self.jitter_ms,
            "per_user_cap": self.per_user_cap,
            "max_concurrent_runs": self.max_concurrent_runs,
            "run_timeout_s": self.run_timeout_s,
            "replica_counts": list(self.replica_counts),
            "cancels": self.cancels,
            "kill": self.kill,
            "repetitions": self.repetitions,
            "baseline_build": self.baseline_build,
            "candidate_build": self.candidate_build,
            "pg_settings": dict(self.pg_settings),
            "replica_env": dict(self.replica_env),
            "limits": {rid: lim.describe() for rid, lim in self.limits},
            "db_sample_s": self.db_sample_s,
            "segment_s": self.segment_s,
            "sample_interval_s": self.sample_interval_s,
            "cluster_mode": self.cluster_mode,
            "strict": self.strict,
            "sabotage": self.sabotage,
        }


# -- the text forms -------------------------------------------------------------------

_PHASE = re.compile(r"^(\d+)x(\d+(?:\.\d+)?)s?$")
_MEMORY = re.compile(r"^(\d+)([mMgG])?$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


def parse_phases(text: str, *, prefix: str = "p") -> tuple[PhaseSpec, ...]:
    """``"20x40,40x40"`` -> phases ``p1`` (scale 20 for 40 s) and ``p2`` (40 for 40 s)."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise OptionError("--phases: give SCALExSECONDS[,SCALExSECONDS...], e.g. 20x60,40x60")
    out = []
    for i, part in enumerate(parts, start=1):
        match = _PHASE.match(part)
        if match is None:
            raise OptionError(f"--phases: {part!r} is not SCALExSECONDS (e.g. 20x60)")
        scale, seconds = int(match.group(1)), float(match.group(2))
        if scale < 1 or seconds <= 0:
            raise OptionError(f"--phases: {part!r} needs scale >= 1 and seconds > 0")
        out.append(PhaseSpec(f"{prefix}{i}", scale, seconds))
    return tuple(out)


def parse_counts(text: str) -> tuple[int, ...]:
    """Replica counts: ``"1,2,3"`` or a range ``"1-4"``; each within 1..8, no repeats."""
    counts: list[int] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        lo, sep, hi = part.partition("-")
        try:
            values = range(int(lo), int(hi) + 1) if sep else [int(part)]
        except ValueError:
            raise OptionError(f"--replica-counts: {part!r} is not N or N-M") from None
        counts.extend(values)
    if not counts or any(not 1 <= c <= 8 for c in counts) or len(set(counts)) != len(counts):
        raise OptionError(f"--replica-counts: {text!r} must name distinct counts within 1..8")
    return tuple(counts)


def parse_pairs(items: Sequence[str], option: str) -> tuple[tuple[str, str], ...]:
    """``KEY=VALUE`` items (repeatable option) -> sorted pairs; a later key wins."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not _KEY.match(key):
            raise OptionError(f"{option}: {item!r} is not KEY=VALUE")
        out[key] = value.strip()
    return tuple(sorted(out.items()))


def _memory_mb(text: str, item: str) -> int:
    match = _MEMORY.match(text)
    if match is None:
        raise OptionError(f"--replica-limits: memory {text!r} in {item!r} is not N, Nm or Ng")
    value = int(match.group(1))
    return value * 1024 if (match.group(2) or "m").lower() == "g" else value


def parse_limits(items: Sequence[str]) -> tuple[tuple[str, ReplicaLimit], ...]:
    """``rN=CPUS[:MEM]`` items, e.g. ``r1=1.5:512m r2=0.5`` (MEM in MiB, or with m/g)."""
    out: dict[str, ReplicaLimit] = {}
    for item in items:
        rid, sep, rest = item.partition("=")
        if not sep or not re.match(r"^r[1-8]$", rid.strip()):
            raise OptionError(f"--replica-limits: {item!r} is not rN=CPUS[:MEM], e.g. r1=0.5:256m")
        cpu_text, _, mem_text = rest.partition(":")
        try:
            cpus = float(cpu_text) if cpu_text.strip() not in ("", "-") else None
        except ValueError:
            raise OptionError(f"--replica-limits: cpus {cpu_text!r} in {item!r}") from None
        if cpus is not None and cpus <= 0:
            raise OptionError(f"--replica-limits: cpus must be > 0 in {item!r}")
        memory = _memory_mb(mem_text.strip(), item) if mem_text.strip() else None
        if memory is not None and memory < 64:
            raise OptionError(f"--replica-limits: {memory} MiB in {item!r} is below 64 MiB")
        out[rid.strip()] = ReplicaLimit(cpus, memory)
    return tuple(sorted(out.items()))


def check_limits_fit(limits: Sequence[tuple[str, ReplicaLimit]], replicas: int) -> None:
    """Every limited replica must exist in a cluster of ``replicas``."""
    extra = [rid for rid, _ in limits if int(rid[1:]) > replicas]
    if extra:
        raise OptionError(f"--replica-limits names {extra} but the cluster has {replicas} replicas")
