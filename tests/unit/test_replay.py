"""The replay line a real failing run prints does replay it: same schedule, same draws.

A tiny test (not marked ``chaos``: it starts nothing) builds a schedule from
``chaos_seed``, records it and the workload stream's first draws in
``chaos_history``, and fails on purpose.  It runs in a subprocess under a
random session seed; the replay line is read from that output and run as a
second subprocess; the two saved histories must hold identical schedules.
Another session seed must give another schedule (or the comparison proves
nothing); that control is built in-process, a third pytest start costs seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from chaos.record.history import History
from chaos.schedule import Schedule
from chaos.seeds import derive_test_seed, parse_replay

TINY = """
from chaos.schedule import After, AnyOf, At, Fault, Heal, Load, Quiesce, Schedule
from chaos.seeds import WORKLOAD, stream


def build(seed):
    return Schedule.build(seed, [
        Load(duration_s=20),
        At(between=(5, 10), do=Fault("kill", target=AnyOf(["r1", "r2", "r3"]))),
        After(between=(3, 8), do=Heal()),
        Quiesce(),
    ])


def test_fails_on_purpose(chaos_seed, chaos_history):
    build(chaos_seed).record(chaos_history)
    workload = stream(chaos_history.seed, WORKLOAD)
    chaos_history.note("workload_draws", values=[workload.random() for _ in range(3)])
    assert False, "fails on purpose"
"""


def run_pytest(cwd: Path, args: list[str], artifacts: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOMCHAOS_")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *args,
            f"--chaos-artifacts={artifacts}",
            "-p",
            "no:cacheprovider",
            "-o",
            "asyncio_default_fixture_loop_scope=function",
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, f"expected one failure:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def saved_history(artifacts: Path) -> History:
    [path] = list(artifacts.rglob("history.jsonl"))
    return History.read(path)


def recorded(history: History) -> tuple[str, object]:
    [schedule] = Schedule.recorded(history)
    [draws] = [r.data["values"] for r in history.records if r.op == "workload_draws"]
    return schedule.to_json(), draws


def test_the_printed_replay_line_reproduces_the_schedule(tmp_path: Path) -> None:
    (tmp_path / "test_tiny.py").write_text(TINY)
    first = run_pytest(tmp_path, ["test_tiny.py"], tmp_path / "first")
    argv = parse_replay(first)
    assert argv[0] == "test_tiny.py::test_fails_on_purpose" and "-m" not in argv
    replayed = run_pytest(tmp_path, argv, tmp_path / "replay")

    original, again = saved_history(tmp_path / "first"), saved_history(tmp_path / "replay")
    assert again.seed == original.seed and again.meta == original.meta
    assert recorded(again) == recorded(original)
    assert parse_replay(replayed) == argv  # the replay prints the same line again

    session = int(argv[-1].removeprefix("--chaos-seed="))
    assert original.seed == derive_test_seed(session, argv[0])
    tiny: dict[str, Any] = {}
    exec(TINY, tiny)  # the tiny test's own spec, built here for the control
    assert tiny["build"](original.seed).to_json() == recorded(original)[0]
    other = tiny["build"](derive_test_seed(session + 1, argv[0]))
    assert other.to_json() != recorded(original)[0]
