"""The ``loomchaos`` command line.

Sub-commands:

* ``setup``  install and start what the chaos tier needs (engine, images, binaries),
  reusing what exists;
* ``run``    the main job: set-up, then the short campaign (a burst on 3 replicas),
  its report folder and the verdict table;
* ``campaign`` the load/fault campaigns (``loomchaos campaign --help``);
* ``check``  re-run every checker offline on a saved history or artifact folder;
* ``sweep``  remove what a killed session left behind (only objects whose owning pid is gone);
* ``mutants`` build planted defects of the target, run gate scenarios, score the suite.
* ``gate`` the release gate: a candidate build judged against a baseline build.
* ``replay`` re-run a failed test from its artifact folder (same seed, same fault schedule).

User errors print one line and exit 2; a failing verdict exits 1 (``gate`` exits 3
when the environment fails: no engine, no build, a target never healthy).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from chaos import __version__
from chaos.errors import SetupError
from chaos.gate.cli import add_parser as add_gate_parser
from chaos.mutants.cli import add_parser as add_mutants_parser
from chaos.replay import add_parser as add_replay_parser


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
    from chaos.cluster.docker_ops import docker_client
    from chaos.cluster.sweep import sweep_orphans
    from chaos.mutants.sweep import sweep_mutants

    removed = sweep_orphans()
    names = [
        *(f"container {n}" for n in removed.containers),
        *(f"network {n}" for n in removed.networks),
        *(f"volume {n}" for n in removed.volumes),
        *sweep_mutants(docker_client()),
    ]
    print(f"removed {len(names)} object(s) left by sessions whose process is gone")
    for name in names:
        print(f"  {name}")
    return 0


def _cmd_campaign(args: argparse.Namespace) -> int:
    from chaos.campaign.builds import default_build
    from chaos.campaign.cli import options_from
    from chaos.campaign.options import OptionError
    from chaos.campaign.run import run_campaign

    try:
        opts = options_from(args, default_build())
    except OptionError as exc:
        print(f"loomchaos campaign: {exc}", file=sys.stderr)
        return 2
    return run_campaign(opts)


def _cmd_run(args: argparse.Namespace) -> int:
    """Set-up, then the short campaign (a burst) end to end; prints where the report is."""
    from chaos.campaign.cli import SMALLEST_SCALE

    _cmd_setup(args)
    # The campaign provisions again (warm: about a second) from the same image source.
    os.environ["LOOMCHAOS_IMAGE_SOURCE"] = args.image_source
    argv = ["campaign", "burst", "--replicas", "3"]
    if args.smallest:
        argv += ["--scale", str(SMALLEST_SCALE)]
    if args.seed is not None:
        argv += ["--seed", str(args.seed)]
    if args.out is not None:
        argv += ["--out", args.out]
    print("running: loomchaos", shlex.join(argv), flush=True)
    return _cmd_campaign(build_parser().parse_args(argv))


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

    p_run = sub.add_parser("run", help="set up, run the short campaign (a burst), print verdicts")
    add_source(p_run)
    p_run.add_argument("--seed", type=int, default=None, help="replay with this seed")
    p_run.add_argument("--smallest", action="store_true", help="the smallest size (CI)")
    p_run.add_argument("--out", default=None, help="output folder (default under reports/)")
    p_run.set_defaults(func=_cmd_run)

    from chaos.campaign.cli import add_campaign_parser

    add_campaign_parser(sub, _cmd_campaign)

    p_check = sub.add_parser("check", help="re-check a saved history or artifact folder")
    p_check.add_argument("path", help="history.jsonl or an artifact folder holding one")
    p_check.set_defaults(func=_cmd_check)

    p_sweep = sub.add_parser("sweep", help="remove what killed sessions left behind")
    p_sweep.set_defaults(func=_cmd_sweep)

    add_mutants_parser(sub)
    add_gate_parser(sub)
    add_replay_parser(sub)
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
