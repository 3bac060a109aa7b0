"""``loomchaos mutants PATCH_DIR [--scenarios EXPR]``: the sub-command's arguments and body."""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import os
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chaos.errors import SetupError
from chaos.labels import new_session_id
from chaos.mutants.classify import Fate
from chaos.mutants.patches import Patch, discover
from chaos.mutants.report import (
    MutantResult,
    json_report,
    markdown_report,
    score,
    score_line,
)
from chaos.mutants.scenarios import DEFAULT_SCENARIOS, split_selection
from chaos.sut.loomcycle import build as target_build

ENV_LOCK = "LOOMCHAOS_DOCKER_LOCK"
DEFAULT_SEED = 20261201


def add_parser(sub: Any) -> None:
    p = sub.add_parser("mutants", help="build planted defects, run gate scenarios, score the suite")
    p.add_argument("patch_dir", help="folder of *.patch files (unified diffs, -p1 paths)")
    p.add_argument(
        "--scenarios",
        default=None,
        help="pytest selection (node ids, files, -k ...), split like a shell; "
        f"default: {' '.join(DEFAULT_SCENARIOS)}",
    )
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="the --chaos-seed of every run")
    p.add_argument("--controls", type=int, default=2, help="unpatched control runs (default 2)")
    p.add_argument(
        "--only",
        action="append",
        default=[],
        help="only patches matching this glob (repeatable; run in this order)",
    )
    p.add_argument("--report-dir", default="reports/mutants", help="report.md and report.json")
    p.add_argument("--runs-dir", default=None, help="per-run JUnit and logs (<report-dir>/runs)")
    p.add_argument("--reuse", action="store_true", help="reuse results of an identical earlier run")
    p.add_argument(
        "--all-tests",
        action="store_true",
        help="run every scenario on a mutant (default: stop at its first failing test)",
    )
    p.add_argument(
        "--docker-lock",
        default=os.environ.get(ENV_LOCK),
        help=f"flock this file around each build's Docker work (env {ENV_LOCK})",
    )
    p.add_argument(
        "--min-score", type=float, default=1.0, help="exit 1 below this score (default 1.0)"
    )
    p.set_defaults(func=run)


def select(patches: list[Patch], globs: list[str]) -> list[Patch]:
    """The patches matching any glob, in the order of the globs (the first match decides)."""
    chosen: list[Patch] = []
    for glob in globs:
        chosen += [p for p in patches if fnmatch.fnmatch(p.name, glob) and p not in chosen]
    return chosen


def _scenarios(expr: str | None) -> tuple[str, ...]:
    return DEFAULT_SCENARIOS if expr is None else split_selection(expr)


def run(args: argparse.Namespace) -> int:
    # Docker, Go and the target's fixtures are imported here: `loomchaos --help` needs none.
    from chaos.cluster.docker_ops import docker_client
    from chaos.cluster.spec import Images
    from chaos.mutants.build import GoBuilder, target_module
    from chaos.mutants.campaign import Campaign, file_lock
    from chaos.mutants.image import ImageMaker
    from chaos.mutants.probe import ContainerProber
    from chaos.mutants.scenarios import PytestRunner
    from chaos.mutants.workspace import Workspace, pinned_source
    from chaos.provision.common import cache_dir
    from chaos.provision.images import namespace, resolve_images

    if args.controls < 1:
        raise SetupError("--controls must be at least 1")
    patches = discover(Path(args.patch_dir))
    if args.only:
        patches = select(patches, args.only)
        if not patches:
            raise SetupError(f"no patch in {args.patch_dir} matches {args.only}")
    scenarios = _scenarios(args.scenarios)
    report_dir = Path(args.report_dir)
    runs_dir = Path(args.runs_dir) if args.runs_dir else report_dir / "runs"
    cache = cache_dir()
    module, main_package = target_module()
    version = os.environ.get(target_build.ENV_VERSION) or target_build.VERSION
    source = pinned_source(cache / "go" / "path", module, version)
    target = main_package.rsplit("/", 1)[-1]
    base = resolve_images(Images()).loomcycle
    if base is None:  # pragma: no cover - resolve_images always names one
        raise SetupError("no replica image is named; run `loomchaos setup`")
    session_id = new_session_id()
    lock_path = Path(args.docker_lock) if args.docker_lock else None
    workspace = Workspace.create(cache, session_id)
    campaign = Campaign(
        source=source,
        workspace=workspace,
        builder=GoBuilder(cache, main_package),
        images=ImageMaker(docker_client, base, target, namespace(), session_id),
        prober=ContainerProber(session_id),
        runner=PytestRunner(Path.cwd(), scenarios),
        seed=args.seed,
        out_dir=runs_dir,
        context=f"{version} {shlex.join(scenarios)}",
        controls=args.controls,
        stop_early=not args.all_tests,
        reuse=args.reuse,
        lock=(lambda: file_lock(lock_path)) if lock_path else contextlib.nullcontext,
        progress=lambda line: print(f"[mutants {time.strftime('%H:%M:%S')}] {line}", flush=True),
    )
    started = time.monotonic()
    try:
        results, controls = campaign.run(patches)
    finally:
        workspace.remove()
    meta = {
        "command": shlex.join(["loomchaos", "mutants", *sys.argv[2:]]),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "target": f"{module}@{version}",
        "seed": args.seed,
        "scenarios": list(scenarios),
        "wall_s": round(time.monotonic() - started, 1),
    }
    header = _header(meta)
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "report.md").write_text(markdown_report(results, controls, header))
    (report_dir / "report.json").write_text(json_report(results, controls, meta))
    print(markdown_report(results, controls, header))
    print(f"report: {report_dir / 'report.md'}, {report_dir / 'report.json'}")
    return exit_code(results, args.min_score)


def _header(meta: dict[str, Any]) -> str:
    return "\n".join(
        [
            "# Planted defects: verdicts",
            "",
            f"- command: `{meta['command']}`",
            f"- target: `{meta['target']}`, seed {meta['seed']}, finished {meta['finished']}",
            f"- scenarios: `{' '.join(meta['scenarios'])}`",
            f"- campaign wall time: {meta['wall_s']:.0f} s",
        ]
    )


def exit_code(results: list[MutantResult], min_score: float) -> int:
    """0 when the score reaches ``min_score`` and no patch is broken, else 1."""
    s = score(results)
    broken = any(r.fate is Fate.BROKEN for r in results)
    print(score_line(results))
    return 0 if (s is None or s >= min_score) and not broken else 1
