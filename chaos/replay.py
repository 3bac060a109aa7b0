"""``loomchaos replay ARTIFACT_DIR``: run a failed test again with its seed and fault schedule.

A failing chaos test leaves ``history.jsonl`` in its artifact folder; its
header names the session seed and the test id (:class:`chaos.seeds.Replay`)
and the build the test ran against (the suite's override variables, when one
was set).  The seed rebuilds the same workload draws and the same fault
schedule; it does not rebuild the same interleaving of threads, the network
and the target's own timers, so a race may need several tries: ``--times N``
runs it N times and says in how many it failed again.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaos.errors import SetupError
from chaos.seeds import Replay
from chaos.sut.loomcycle import build as target_build

#: The override variables that name the build a test ran against (recorded in the meta).
BUILD_VARIABLES = (target_build.ENV_IMAGE, target_build.ENV_BIN, target_build.ENV_VERSION)


def build_meta(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The build overrides in force, for a history's meta (empty when the default build ran)."""
    env = os.environ if env is None else env
    return {name: env[name] for name in BUILD_VARIABLES if env.get(name)}


@dataclass(frozen=True)
class ReplayPlan:
    replay: Replay
    build: Mapping[str, str]

    def argv(self, artifacts: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "pytest",
            *self.replay.argv(),
            f"--chaos-artifacts={artifacts}",
            "-p",
            "no:cacheprovider",
            "-q",
        ]


def plan_from(path: Path) -> ReplayPlan:
    """What the artifact folder (or its ``history.jsonl``) says to re-run; one-line errors."""
    history = path / "history.jsonl" if path.is_dir() else path
    try:
        with history.open(encoding="utf-8") as fp:
            header: Any = json.loads(fp.readline() or "{}")
    except OSError as exc:
        raise SetupError(f"no history to replay at {history}: {exc.strerror}") from None
    except ValueError:
        raise SetupError(f"{history} does not start with a history header") from None
    meta = header.get("meta") if isinstance(header, dict) else None
    replay = Replay.from_meta(meta) if isinstance(meta, dict) else None
    if replay is None:
        raise SetupError(f"{history} names no test and seed to replay (an old or offline history)")
    build = meta.get("build", {}) if isinstance(meta, dict) else {}
    return ReplayPlan(replay, {str(k): str(v) for k, v in dict(build).items()})


def add_parser(sub: Any) -> None:
    p = sub.add_parser("replay", help="re-run a failed test with its seed and fault schedule")
    p.add_argument("path", help="the test's artifact folder (or its history.jsonl)")
    p.add_argument("--times", type=int, default=1, help="run it this many times (default 1)")
    p.add_argument("--out", default="reports/replay", help="artifact folder of the replays")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    plan = plan_from(Path(args.path))
    if args.times < 1:
        raise SetupError("--times must be at least 1")
    if not Path(plan.replay.nodeid.split("::", 1)[0]).is_file():
        raise SetupError(f"{plan.replay.nodeid}: run replay from the loomchaos checkout")
    env = {**os.environ, **plan.build}
    build = " ".join(f"{k}={v}" for k, v in plan.build.items()) or "the default build"
    print(f"replay: {plan.replay.command()} against {build}", flush=True)
    failed = 0
    for i in range(1, args.times + 1):
        argv = plan.argv(Path(args.out) / f"try-{i}")
        rc = subprocess.run(argv, env=env, check=False).returncode
        failed += rc != 0
        print(f"replay {i}/{args.times}: {'failed again' if rc else 'passed'} (exit {rc})")
    print(f"replay: failed again in {failed} of {args.times}")
    return 1 if failed else 0
