"""The gate scenarios, run as ``pytest -m chaos`` in a subprocess against one replica image.

The subprocess gets the image through the suite's own override variable
(``LOOMCHAOS_LOOMCYCLE_IMAGE``, named in :mod:`chaos.sut.loomcycle.build`), a
fixed ``--chaos-seed`` and a ``--junitxml`` of its own; the JUnit file is the
whole interface back (the plugin records each test's verdicts in the
``chaos_verdicts`` property).  The runner is a protocol, so the fast tier can
feed hand-made observations.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from chaos.report.junit import read_junit
from chaos.sut.loomcycle import build as target_build

#: The gate set (also ``loomchaos gate``'s default): smoke, every cancel scenario, a
#: SIGKILL and both SIGTERMs of a replica owning runs (runs longer and shorter than the
#: drain), the per-user cap: about 5.5 min a run here.  They reach the quota path, both
#: sweepers, the cancel path, shutdown, the heartbeat, stop_reason assignment and event
#: writing; the cancel windows and the freeze (slow) are added by --scenarios.
DEFAULT_SCENARIOS: tuple[str, ...] = (
    "tests/chaos/test_smoke.py",
    "tests/chaos/test_scenario_cancel.py",
    "tests/chaos/test_scenario_crash.py::test_kill_replica_owning_runs",
    "tests/chaos/test_scenario_crash.py::test_graceful_stop_replica_owning_runs",
    "tests/chaos/test_scenario_crash.py::test_graceful_stop_with_every_run_inside_the_drain",
    "tests/chaos/test_scenario_quota_cap.py",
)
#: The whole subprocess: the scenarios' own pytest timeouts are shorter.
RUN_TIMEOUT_S = 3600


def split_selection(expr: str, option: str = "--scenarios") -> tuple[str, ...]:
    """A pytest selection given as one string, split like a shell; one-line errors."""
    from chaos.errors import SetupError

    try:
        parts = tuple(shlex.split(expr))
    except ValueError as exc:
        raise SetupError(f"{option} {expr!r}: {exc}") from None
    if not parts:
        raise SetupError(f"{option} is empty")
    return parts


@dataclass(frozen=True)
class VerdictObs:
    status: str  # pass, fail, vacuous
    summary: str
    evidence: Mapping[str, Any]


@dataclass(frozen=True)
class TestObs:
    outcome: str  # passed, failed, error, skipped, xfailed
    message: str = ""
    #: invariant -> verdict; a repeated invariant in one test gets ``name#2``, ``name#3``...
    verdicts: Mapping[str, VerdictObs] = field(default_factory=dict)
    #: Failing verdicts the test excused as a written-up finding: not a failure of the test,
    #: but the gate compares their rate and size between builds.
    known: Mapping[str, VerdictObs] = field(default_factory=dict)


# pytest would collect a class named Test*: this one is data.
TestObs.__test__ = False  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ScenarioRun:
    """One pytest run: its tests by id, exit code, wall time and the command that replays it."""

    tests: Mapping[str, TestObs]
    returncode: int
    seconds: float
    command: str = ""
    #: Run with ``--maxfail=1``: the tests after the first failure never ran.
    stopped_early: bool = False


def verdicts_by_invariant(raw: Sequence[Mapping[str, Any]]) -> dict[str, VerdictObs]:
    out: dict[str, VerdictObs] = {}
    for v in raw:
        name = str(v.get("invariant", "?"))
        key, n = name, 1
        while key in out:
            n += 1
            key = f"{name}#{n}"
        evidence = v.get("evidence")
        out[key] = VerdictObs(
            str(v.get("status", "?")),
            str(v.get("summary", "")),
            evidence if isinstance(evidence, Mapping) else {},
        )
    return out


def observe_junit(path: Path) -> dict[str, TestObs]:
    """Every test in a JUnit file with its outcome and verdicts; {} if pytest wrote none."""
    if not path.is_file():
        return {}
    _props, outcomes = read_junit(path)
    return {
        o.name: TestObs(
            o.outcome, o.message, verdicts_by_invariant(o.verdicts), verdicts_by_invariant(o.known)
        )
        for o in outcomes
    }


class ScenarioRunner(Protocol):
    def run(self, image: str, seed: int, out_dir: Path, stop_early: bool = False) -> ScenarioRun:
        """Run the scenarios against ``image``; ``stop_early`` stops at the first failing test."""
        ...


@dataclass(frozen=True)
class PytestRunner:
    """``python -m pytest -m chaos <scenarios> --chaos-seed=S --junitxml=...`` in ``root``."""

    root: Path
    scenarios: tuple[str, ...] = DEFAULT_SCENARIOS
    extra_env: Mapping[str, str] = field(default_factory=dict)

    def command(self, seed: int, out_dir: Path, stop_early: bool = False) -> list[str]:
        return [
            sys.executable,
            "-m",
            "pytest",
            "-m",
            "chaos",
            *self.scenarios,
            f"--chaos-seed={seed}",
            f"--junitxml={out_dir / 'junit.xml'}",
            f"--chaos-artifacts={out_dir / 'artifacts'}",
            "-p",
            "no:cacheprovider",
            "-q",
            *(["--maxfail=1"] if stop_early else []),
        ]

    def run(self, image: str, seed: int, out_dir: Path, stop_early: bool = False) -> ScenarioRun:
        out_dir.mkdir(parents=True, exist_ok=True)
        cmd = self.command(seed, out_dir, stop_early)
        env = {**os.environ, **self.extra_env, target_build.ENV_IMAGE: image}
        started = time.monotonic()
        with (out_dir / "pytest.log").open("wb") as log:
            try:
                rc = subprocess.run(
                    cmd,
                    cwd=self.root,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    timeout=RUN_TIMEOUT_S,
                    check=False,
                ).returncode
            except subprocess.TimeoutExpired:
                rc = -1
        elapsed = time.monotonic() - started
        replay = f"{target_build.ENV_IMAGE}={image} {shlex.join(cmd)}"
        tests = observe_junit(out_dir / "junit.xml")
        return ScenarioRun(tests, rc, elapsed, replay, stop_early)


def run_to_dict(run: ScenarioRun) -> dict[str, Any]:
    """A run as JSON-ready data, so a campaign can be resumed without re-running it."""
    return {
        "returncode": run.returncode,
        "seconds": run.seconds,
        "command": run.command,
        "stopped_early": run.stopped_early,
        "tests": {
            name: {
                "outcome": t.outcome,
                "message": t.message,
                "verdicts": _verdicts_to_dict(t.verdicts),
                "known": _verdicts_to_dict(t.known),
            }
            for name, t in run.tests.items()
        },
    }


def _verdicts_to_dict(verdicts: Mapping[str, VerdictObs]) -> dict[str, Any]:
    return {
        k: {"status": v.status, "summary": v.summary, "evidence": dict(v.evidence)}
        for k, v in verdicts.items()
    }


def _verdicts_from_dict(data: Mapping[str, Any]) -> dict[str, VerdictObs]:
    return {k: VerdictObs(v["status"], v["summary"], v["evidence"]) for k, v in data.items()}


def run_from_dict(data: Mapping[str, Any]) -> ScenarioRun:
    tests = {
        name: TestObs(
            t["outcome"],
            t["message"],
            _verdicts_from_dict(t["verdicts"]),
            # Saved before known verdicts were recorded: none.
            _verdicts_from_dict(t.get("known", {})),
        )
        for name, t in data["tests"].items()
    }
    return ScenarioRun(
        tests,
        int(data["returncode"]),
        float(data["seconds"]),
        data["command"],
        bool(data.get("stopped_early", False)),
    )
