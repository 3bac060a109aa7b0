"""``loomchaos replay ARTIFACT_DIR``: run a failed test again with its seed and fault schedule.

A failing chaos test leaves ``history.jsonl`` in its artifact folder; its
header names the session seed and the test id (:class:`chaos.seeds.Replay`)
and the build the test ran against (the suite's override variables, when one
was set).  The seed rebuilds the same workload draws and the same fault
schedule; it does not rebuild the same interleaving of threads, the network
and the target's own timers, so a race may need several tries: ``--times N``
runs it N times and says in how many it failed again.

A known finding's reproduction (a strict xfail) keeps its artifacts too, and
its replay counts the tries that failed as marked: that count over N is the
finding's replay hit rate.  Each try's outcome is read from its own JUnit file,
not from the exit code alone (pytest exits 0 for an xfail and for a pass).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaos.errors import SetupError
from chaos.report.junit import read_junit
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
            f"--junitxml={artifacts / JUNIT_NAME}",
            "-o",
            "junit_family=xunit1",
            "-p",
            "no:cacheprovider",
            "-q",
        ]


#: Each try's JUnit file, inside its artifact folder.
JUNIT_NAME = "junit.xml"
#: What a try's outcome says about the failure being replayed.
REPRODUCED = {
    "failed": "failed again",
    "error": "failed again",
    "xfailed": "reproduced the finding",
}


def try_outcome(returncode: int, junit: Path) -> str:
    """The replayed test's outcome in one try: passed, failed, error, skipped or xfailed;
    ``exit N`` when pytest wrote no result for it (a session that stopped early)."""
    try:
        _props, outcomes = read_junit(junit)
    except (OSError, ET.ParseError):
        outcomes = []
    if not outcomes:
        return f"exit {returncode}"
    worst = ("error", "failed", "xfailed", "skipped", "passed")
    return min((o.outcome for o in outcomes), key=lambda o: worst.index(o) if o in worst else 0)


def summary(outcomes: list[str]) -> str:
    """``reproduced in K of N`` with the split, the figure the README's hit-rate table quotes."""
    hits = sum(o in REPRODUCED for o in outcomes)
    split = ", ".join(f"{o} {outcomes.count(o)}" for o in sorted(set(outcomes)))
    return f"replay: reproduced in {hits} of {len(outcomes)} ({split})"


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
    outcomes: list[str] = []
    failed = 0
    for i in range(1, args.times + 1):
        folder = Path(args.out) / f"try-{i}"
        rc = subprocess.run(plan.argv(folder), env=env, check=False).returncode
        outcome = try_outcome(rc, folder / JUNIT_NAME)
        outcomes.append(outcome)
        failed += rc != 0
        said = REPRODUCED.get(outcome, outcome)
        print(f"replay {i}/{args.times}: {said} ({outcome}, exit {rc})", flush=True)
    print(summary(outcomes))
    # The exit code is pytest's: 1 when a try failed (an xfail that reproduced is not a failure).
    return 1 if failed else 0
