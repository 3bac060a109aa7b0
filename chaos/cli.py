"""The ``loomchaos`` command line.

Sub-commands:

* ``setup``  install and start what the chaos tier needs (engine, images, binaries),
  reusing what exists;
* ``run``    the main job: set-up, then the short chaos campaign (the chaos tier without
  ``slow``/``soak``), a verdict table and a report folder;
* ``check``  re-run every checker offline on a saved history or artifact folder;
* ``sweep``  remove what a killed session left behind (only objects whose owning pid is gone).

User errors print one line and exit 2; a failing verdict exits 1.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from chaos import __version__
from chaos.errors import SetupError


def _cmd_setup(args: argparse.Namespace) -> int:
    from chaos.provision import format_summary, provision

    started = time.monotonic()
    result = provision(args.image_source)
    print(format_summary(result))
    print(f"setup took {time.monotonic() - started:.1f}s")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from chaos.checks.offline import check_path
    from chaos.verdict import verdict_table

    verdicts = check_path(Path(args.path))
    print(verdict_table(verdicts))
    return 0 if all(v.ok for v in verdicts) else 1


def _cmd_sweep(args: argparse.Namespace) -> int:
    from chaos.cluster.sweep import sweep_orphans

    removed = sweep_orphans()
    names = [
        *(f"container {n}" for n in removed.containers),
        *(f"network {n}" for n in removed.networks),
        *(f"volume {n}" for n in removed.volumes),
    ]
    print(f"removed {len(names)} object(s) left by sessions whose process is gone")
    for name in names:
        print(f"  {name}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from chaos.report.junit import summarize_junit

    _cmd_setup(args)
    report_dir = Path(args.report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    junit = report_dir / "junit.xml"
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-m",
        "chaos and not slow and not soak",
        f"--junitxml={junit}",
        f"--chaos-artifacts={report_dir / 'artifacts'}",
        f"--chaos-image-source={args.image_source}",
        "--durations=15",
    ]
    if args.seed is not None:
        cmd.append(f"--chaos-seed={args.seed}")
    cmd += args.pytest_args
    print("running:", shlex.join(cmd), flush=True)
    rc = subprocess.call(cmd)
    summary = summarize_junit(junit)
    (report_dir / "summary.txt").write_text(summary + "\n")
    print(summary)
    print(f"report: {report_dir}")
    return rc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loomchaos", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"loomchaos {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def add_source(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--image-source",
            choices=("local", "public"),
            default=os.environ.get("LOOMCHAOS_IMAGE_SOURCE", "local"),
            help="build images here from Debian packages (local) or use public images",
        )

    p_setup = sub.add_parser("setup", help="install and start what the chaos tier needs")
    add_source(p_setup)
    p_setup.set_defaults(func=_cmd_setup)

    p_run = sub.add_parser("run", help="set up, run the short chaos campaign, print verdicts")
    add_source(p_run)
    p_run.add_argument("--seed", type=int, default=None, help="replay with this seed")
    p_run.add_argument("--report-dir", default="reports/latest", help="where the report goes")
    p_run.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    p_run.set_defaults(func=_cmd_run)

    p_check = sub.add_parser("check", help="re-check a saved history or artifact folder")
    p_check.add_argument("path", help="history.jsonl or an artifact folder holding one")
    p_check.set_defaults(func=_cmd_check)

    p_sweep = sub.add_parser("sweep", help="remove what killed sessions left behind")
    p_sweep.set_defaults(func=_cmd_sweep)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        rc: int = args.func(args)
    except SetupError as exc:
        print(f"loomchaos: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("loomchaos: interrupted", file=sys.stderr)
        return 130
    return rc


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
