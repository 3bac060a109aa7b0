"""``loomchaos gate --candidate BUILD [--baseline BUILD]``: the arguments and the body.

Exit codes: 0 the gate passes, 1 a new finding (or, with ``--strict``, a
known one), 2 a wrong option, 3 the environment failed (no engine, a build
that cannot be had, a target that never gets healthy).  The verdict table is
printed last; the JUnit file says the same.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from chaos.errors import SetupError
from chaos.mutants.cli import DEFAULT_SEED, ENV_LOCK
from chaos.mutants.scenarios import DEFAULT_SCENARIOS

#: The default gate set: the mutants' set (it killed every planted defect it can reach,
#: docs/mutants/): about 5.5 min a repetition here.
GATE_SCENARIOS: tuple[str, ...] = DEFAULT_SCENARIOS
#: ``--full``: every scenario that judges the target, slow ones included (soaks excluded).
FULL_SCENARIOS: tuple[str, ...] = (
    "tests/chaos/test_smoke.py",
    "tests/chaos/test_scenario_cancel.py",
    "tests/chaos/test_scenario_crash.py",
    "tests/chaos/test_scenario_quota_cap.py",
    "tests/chaos/test_scenario_provider.py",
    "tests/chaos/test_scenario_crash_cancel_windows.py",
    "tests/chaos/test_scenario_postgres.py",
    "tests/chaos/test_scenario_lb_cut.py",
    "tests/chaos/test_scenario_restart.py",
    "tests/chaos/test_scenario_controls.py",
    "tests/chaos/test_nofile_runs.py",
    "tests/chaos/test_nofile_loss.py",
    # The findings' reductions: a fixed target turns its strict xfail red.
    "tests/chaos/test_finding_contract.py",
    "tests/chaos/test_finding_graceful_stop.py",
    "tests/chaos/test_finding_kill_queued.py",
    "tests/chaos/test_finding_done_then_cancelled.py",
    "tests/chaos/test_finding_dead_owner_cancel_quota.py",
    "tests/chaos/test_finding_same_id_restart.py",
    "tests/chaos/test_finding_pause_reboot.py",
    "tests/chaos/test_finding_lost_end.py",
    "-m",
    "chaos and not soak",
)
EXIT_ENVIRONMENT = 3


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "gate", help="the release gate: a candidate build against a baseline, pass or fail"
    )
    p.add_argument(
        "--candidate",
        required=True,
        type=build_label,
        help="v1.59.0 (module version), image:REF or bin:PATH",
    )
    p.add_argument(
        "--baseline", default=None, type=build_label, help="the build to compare with (same forms)"
    )
    p.add_argument("--reps", type=positive_int, default=3, help="repetitions per build (default 3)")
    p.add_argument(
        "--jobs",
        type=positive_int,
        default=1,
        help="sessions side by side (default 1; the reap waits leave the CPU idle)",
    )
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the first repetition")
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--scenarios",
        default=None,
        type=selection,
        help="pytest selection, split like a shell (default: gate set)",
    )
    which.add_argument("--full", action="store_true", help="every scenario, slow ones included")
    p.add_argument(
        "--target-config",
        default=None,
        type=target_config_file,
        help="YAML of the loomcycle env: and config: you deploy; every scenario runs it",
    )
    p.add_argument("--strict", action="store_true", help="known findings fail the gate too")
    p.add_argument("--report-dir", default="reports/gate", help="report.md, report.json, junit")
    p.add_argument("--runs-dir", default=None, help="per-run JUnit and logs (<report-dir>/runs)")
    p.add_argument(
        "--junitxml", default=None, help="the gate's JUnit file (<report-dir>/junit.xml)"
    )
    p.add_argument("--reuse", action="store_true", help="reuse runs of the same image and seed")
    p.add_argument(
        "--docker-lock",
        default=os.environ.get(ENV_LOCK),
        help=f"flock this file around each run's Docker work (env {ENV_LOCK})",
    )
    p.add_argument(
        "--image-source",
        choices=("local", "public"),
        default=os.environ.get("LOOMCHAOS_IMAGE_SOURCE", "local"),
        help="build images here (local) or use public images",
    )
    p.set_defaults(func=run)


def selection(text: str) -> tuple[str, ...]:
    """An argparse type: a pytest selection split like a shell (else exit 2)."""
    from chaos.mutants.scenarios import split_selection

    try:
        return split_selection(text)
    except SetupError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def target_config_file(text: str) -> str:
    """An argparse type: a readable, well-formed target config (else exit 2); its absolute path."""
    from chaos.sut.loomcycle.target_config import load

    try:
        load(Path(text))
    except SetupError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return str(Path(text).resolve())


def build_label(text: str) -> str:
    """An argparse type: a label :func:`chaos.gate.builds.kind_of` understands (else exit 2)."""
    from chaos.gate.builds import kind_of

    try:
        kind_of(text)
    except SetupError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def scenarios_of(args: argparse.Namespace) -> tuple[str, ...]:
    if args.full:
        return FULL_SCENARIOS
    return GATE_SCENARIOS if args.scenarios is None else tuple(args.scenarios)


def run(args: argparse.Namespace) -> int:
    try:
        return _gate(args)
    except SetupError as exc:
        print(f"loomchaos gate: environment failure: {exc}", file=sys.stderr)
        return EXIT_ENVIRONMENT


def _gate(args: argparse.Namespace) -> int:
    # Docker, Go and the target's fixtures are imported here: `loomchaos --help` needs none.
    from chaos.campaign.builds import images_for
    from chaos.cluster.docker_ops import docker_client
    from chaos.findings import load_findings
    from chaos.gate.builds import resolved
    from chaos.gate.classify import classify, gate_passes
    from chaos.gate.deployed import Deployed
    from chaos.gate.documented import documented_findings
    from chaos.gate.report import GateResult, print_verdict, write
    from chaos.gate.run import Repetitions, rep_seeds
    from chaos.labels import new_session_id
    from chaos.mutants.campaign import file_lock
    from chaos.mutants.image import ImageMaker
    from chaos.mutants.probe import ContainerProber
    from chaos.mutants.scenarios import PytestRunner
    from chaos.provision import provision
    from chaos.provision.images import namespace
    from chaos.sut.loomcycle.adapter import NAME as TARGET_NAME

    started = time.monotonic()
    labels = [args.candidate] + ([args.baseline] if args.baseline else [])
    seeds = rep_seeds(args.seed, args.reps)
    scenarios = scenarios_of(args)
    root = Path.cwd()
    if not (root / "tests" / "chaos").is_dir():
        raise SetupError("run the gate from a loomchaos checkout (tests/chaos/ is not here)")
    documented = documented_findings(load_findings(root).values())
    deployed = Deployed.of(args.target_config)

    def note(line: str) -> None:
        print(f"[gate {time.strftime('%H:%M:%S')}] {line}", flush=True)

    provisioned = provision(args.image_source, progress=note)
    base = provisioned.images.loomcycle
    if base is None:
        raise SetupError(f"{TARGET_NAME} unavailable: {provisioned.loomcycle_error}")
    client = docker_client()
    session_id = new_session_id()
    maker = ImageMaker(lambda: client, base, TARGET_NAME, namespace(), session_id)
    lock_path = Path(args.docker_lock) if args.docker_lock else None
    report_dir = Path(args.report_dir)
    try:
        with resolved(
            labels,
            client,
            lambda v: str(images_for(v, provisioned, note).loomcycle),
            maker.make,
            maker.remove,
        ) as builds:
            reps = Repetitions(
                runner=PytestRunner(root, scenarios, deployed.env),
                prober=ContainerProber(session_id),
                seeds=seeds,
                out_dir=Path(args.runs_dir) if args.runs_dir else report_dir / "runs",
                context=f"{shlex.join(scenarios)} {deployed.digest}",
                reuse=args.reuse,
                lock=(lambda: file_lock(lock_path)) if lock_path else contextlib.nullcontext,
                progress=note,
                after_run=deployed.redact_folder,
                jobs=args.jobs,
            )
            if len(builds) > 1 and builds[1].label == builds[0].label:
                # A build against itself (the gate's own noise check): keep the runs apart.
                builds[1] = replace(builds[1], label=f"{builds[1].label} (baseline)")
            runs = reps.run(builds)
    finally:
        client.close()
    candidate, baseline = builds[0], (builds[1] if len(builds) > 1 else None)
    findings = classify(
        runs[candidate.label], runs[baseline.label] if baseline else None, documented
    )
    result = GateResult(
        candidate=candidate,
        baseline=baseline,
        seeds=seeds,
        scenarios=scenarios,
        findings=findings,
        runs=runs,
        passed=gate_passes(findings, args.strict),
        strict=args.strict,
        command=shlex.join(["loomchaos", "gate", *sys.argv[2:]]),
        target_config=args.target_config or "",
        advisories=deployed.advisories,
        wall_s=time.monotonic() - started,
    )
    paths = write(result, report_dir, Path(args.junitxml) if args.junitxml else None)
    note(f"report: {', '.join(map(str, paths))}")
    print_verdict(result)
    return 0 if result.passed else 1
