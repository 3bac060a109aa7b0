"""``loomchaos campaign NAME [options]`` and ``loomchaos run``: argument parsing into options.

Every campaign takes the common options; ``sweep``, ``faults``, the timed
campaigns and ``compare`` add their own.  Bad values exit 2 with one line.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable
from pathlib import Path

from chaos.campaign.options import (
    BURST_CAMPAIGNS,
    CAMPAIGNS,
    CIRCUIT_JITTER_MS,
    CIRCUIT_LATENCY_MS,
    DEFAULTS,
    WORKLOADS,
    CampaignOptions,
    OptionError,
    PhaseSpec,
    check_limits_fit,
    parse_counts,
    parse_limits,
    parse_pairs,
    parse_phases,
)

HELP = {
    "baseline": "one loomcycle process without cluster mode, one burst: the single-binary "
    "reference (experiment 1)",
    "burst": "one wave at --scale on the cluster",
    "sweep": "the same burst across --replica-counts (experiment 2)",
    "faults": "cancels through non-owners and one SIGKILL during a burst (experiment 3)",
    "sustained": "--phases of SCALExSECONDS, waves back to back (experiments 4, 5)",
    "ramp": "rising --phases to find the knee (experiments 6, 7)",
    "soak": "one long phase, --minutes long (experiment 8)",
    "compare": "the burst on --baseline and --candidate builds, interleaved repetitions",
}
#: The smallest real campaign (``loomchaos run --smallest``, CI).
SMALLEST_SCALE = 12


def _add_common(p: argparse.ArgumentParser, name: str) -> None:
    d = DEFAULTS[name]
    p.add_argument(
        "--build",
        default=None,
        help="module version of the target (default: the provisioned build)",
    )
    p.add_argument(
        "--replicas", type=int, default=d.replicas, help=f"replicas (default {d.replicas})"
    )
    p.add_argument(
        "--scale", type=int, default=d.scale, help=f"runs per burst wave (default {d.scale})"
    )
    p.add_argument(
        "--seed", type=int, default=None, help="campaign seed (default: random, printed)"
    )
    p.add_argument(
        "--latency-ms",
        type=int,
        default=None,
        help=f"mock latency per call (default {d.latency_ms}; circuits {CIRCUIT_LATENCY_MS})",
    )
    p.add_argument(
        "--jitter-ms",
        type=int,
        default=None,
        help=f"mock latency jitter (default {d.jitter_ms}; circuits {CIRCUIT_JITTER_MS})",
    )
    p.add_argument(
        "--per-user-cap", type=int, default=4, help="per-user concurrent run cap (default 4)"
    )
    p.add_argument(
        "--max-concurrent-runs", type=int, default=32, help="per-replica run slots (default 32)"
    )
    p.add_argument(
        "--run-timeout-s", type=float, default=120.0, help="bound on one run (default 120)"
    )
    p.add_argument(
        "--pg-setting",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Postgres setting, e.g. autovacuum=off (repeatable)",
    )
    p.add_argument(
        "--replica-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra replica environment, e.g. GOGC=200 (repeatable)",
    )
    p.add_argument(
        "--replica-limits",
        action="append",
        default=[],
        metavar="rN=CPUS[:MEM]",
        help="a replica's CPU/memory limits, e.g. r1=0.5:256m (repeatable)",
    )
    p.add_argument(
        "--db-sample-s",
        type=float,
        default=d.db_sample_s,
        help=f"seconds between database snapshots (default {d.db_sample_s:g})",
    )
    p.add_argument(
        "--sample-s", type=float, default=1.0, help="seconds between resource samples (default 1)"
    )
    p.add_argument(
        "--out", default=None, help="output folder (default reports/campaigns/<campaign>-<UTC>)"
    )
    p.add_argument("--strict", action="store_true", help="known findings fail the campaign too")
    # Test-only: break an invariant behind the history's back (tests/chaos/test_campaign*.py).
    p.add_argument("--sabotage", action="store_true", help=argparse.SUPPRESS)


def _add_specific(p: argparse.ArgumentParser, name: str) -> None:
    d = DEFAULTS[name]
    if name in BURST_CAMPAIGNS:
        p.add_argument(
            "--workload",
            choices=WORKLOADS,
            default="single",
            help="single-agent runs, or three-agent circuits (--scale circuits per wave)",
        )
    if name == "baseline":
        p.add_argument(
            "--cluster-mode",
            action="store_true",
            help="run the one replica in cluster mode instead (the write-up's r=1 row of "
            "experiment 2); default: single-binary, no cluster mode",
        )
    if name == "sweep":
        p.add_argument(
            "--replica-counts",
            default=d.replica_counts,
            help=f"counts, e.g. 1-4 or 1,3 (default {d.replica_counts})",
        )
    if name == "faults":
        p.add_argument(
            "--cancels",
            type=int,
            default=d.cancels,
            help=f"cancels through non-owners (default {d.cancels})",
        )
        p.add_argument("--no-kill", action="store_true", help="cancels only, no SIGKILL")
    if name in ("sustained", "ramp", "soak"):
        p.add_argument("--phases", default=d.phases, help=f"SCALExSECONDS,... (default {d.phases})")
    if name == "soak":
        p.add_argument(
            "--segment-minutes",
            type=float,
            default=(d.segment_s or 0) / 60.0,
            help="judge in segments this long, each its own scenario frame (default 5)",
        )
        p.add_argument(
            "--minutes",
            type=float,
            default=None,
            help="soak length: one phase at its --phases scale",
        )
    if name == "compare":
        p.add_argument("--baseline", required=True, help="baseline build (module version)")
        p.add_argument("--candidate", required=True, help="candidate build (module version)")
        p.add_argument(
            "--repetitions",
            type=int,
            default=d.repetitions,
            help=f"repetitions per build (default {d.repetitions})",
        )


def add_campaign_parser(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    run: Callable[[argparse.Namespace], int],
) -> None:
    p = sub.add_parser("campaign", help="run a load/fault campaign and write its report")
    names = p.add_subparsers(dest="campaign", required=True, metavar="CAMPAIGN")
    for name in CAMPAIGNS:
        q = names.add_parser(name, help=HELP[name], description=HELP[name])
        _add_common(q, name)
        _add_specific(q, name)
        q.set_defaults(func=run)


def _positive(value: float, option: str) -> None:
    if value <= 0:
        raise OptionError(f"{option} must be > 0, got {value:g}")


def _phases(args: argparse.Namespace) -> tuple[PhaseSpec, ...]:
    name = args.campaign
    if name in ("sustained", "ramp", "soak"):
        phases = parse_phases(args.phases, prefix="p" if name != "ramp" else "ramp")
        if name == "soak" and args.minutes is not None:
            _positive(args.minutes, "--minutes")
            phases = (PhaseSpec("soak", phases[0].scale, args.minutes * 60.0),)
        return phases
    _positive(args.scale, "--scale")
    return (PhaseSpec("burst", args.scale),)


def options_from(args: argparse.Namespace, default_build: str) -> CampaignOptions:
    """Parsed arguments -> options; :class:`OptionError` with one line when a value is bad."""
    name = args.campaign
    d = DEFAULTS[name]
    for option, value in (
        ("--replicas", args.replicas),
        ("--per-user-cap", args.per_user_cap),
        ("--max-concurrent-runs", args.max_concurrent_runs),
        ("--run-timeout-s", args.run_timeout_s),
        ("--db-sample-s", args.db_sample_s),
        ("--sample-s", args.sample_s),
    ):
        _positive(value, option)
    if not 1 <= args.replicas <= 8:
        raise OptionError(f"--replicas must be 1..8, got {args.replicas}")
    workload = getattr(args, "workload", "single")
    circuits = workload == "circuit"
    latency = (
        args.latency_ms
        if args.latency_ms is not None
        else (CIRCUIT_LATENCY_MS if circuits else d.latency_ms)
    )
    jitter = (
        args.jitter_ms
        if args.jitter_ms is not None
        else (CIRCUIT_JITTER_MS if circuits else d.jitter_ms)
    )
    if latency < 0 or jitter < 0:
        raise OptionError("--latency-ms and --jitter-ms must be >= 0")
    if circuits and args.per_user_cap < 3:
        raise OptionError("--per-user-cap must be >= 3 for circuits: a circuit holds 3 slots")
    counts = parse_counts(args.replica_counts) if name == "sweep" else ()
    limits = parse_limits(args.replica_limits)
    check_limits_fit(limits, max(counts, default=args.replicas))
    repetitions = getattr(args, "repetitions", d.repetitions)
    if name == "compare" and repetitions < 2:
        raise OptionError("--repetitions must be >= 2: an interval needs two samples a side")
    segment_minutes = getattr(args, "segment_minutes", None)
    if segment_minutes is not None:
        _positive(segment_minutes, "--segment-minutes")
    cancels = getattr(args, "cancels", d.cancels)
    if cancels < 0:
        raise OptionError("--cancels must be >= 0")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    return CampaignOptions(
        campaign=name,
        build=args.build or default_build,
        replicas=1 if name == "baseline" else args.replicas,
        phases=_phases(args),
        seed=seed,
        workload=workload,
        latency_ms=latency,
        jitter_ms=jitter,
        per_user_cap=args.per_user_cap,
        max_concurrent_runs=args.max_concurrent_runs,
        run_timeout_s=args.run_timeout_s,
        replica_counts=counts,
        cancels=cancels,
        kill=name == "faults" and not getattr(args, "no_kill", False),
        repetitions=repetitions,
        baseline_build=getattr(args, "baseline", None),
        candidate_build=getattr(args, "candidate", None),
        pg_settings=parse_pairs(args.pg_setting, "--pg-setting"),
        replica_env=parse_pairs(args.replica_env, "--replica-env"),
        limits=limits,
        db_sample_s=args.db_sample_s,
        segment_s=None if segment_minutes is None else segment_minutes * 60.0,
        sample_interval_s=args.sample_s,
        cluster_mode=d.cluster_mode or getattr(args, "cluster_mode", False),
        strict=args.strict,
        out=None if args.out is None else Path(args.out),
        sabotage=args.sabotage,
    )
