"""A test that hangs still leaves its artifacts: stacks, history and timeline before the end.

pytest-timeout (thread method) ends the whole process; the suite's watchdog
fires a little earlier.  Run in a subprocess (the timeout ends it), without
Docker: the container-log step reports that no engine answered and the rest
of the dump stands.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from chaos.record.history import History
from chaos.report.hang import fire_after

HANGS = """
import time

import pytest


@pytest.mark.timeout(3, method="thread")
def test_hangs(chaos_history):
    chaos_history.note("before the hang", step=1)
    time.sleep(60)  # the hang: the watchdog must leave artifacts before pytest-timeout ends it
"""


def test_a_hung_test_leaves_stacks_history_and_timeline(tmp_path: Path) -> None:
    (tmp_path / "test_hangs.py").write_text(HANGS)
    artifacts = tmp_path / "artifacts"
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent.sock", "LOOMCHAOS_ARTIFACTS": ""}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "test_hangs.py",
            f"--chaos-artifacts={artifacts}",
            "-p",
            "no:cacheprovider",
            "-q",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    (hang,) = artifacts.rglob("hang.txt")
    text = hang.read_text()
    assert "test_hangs.py::test_hangs made no end after" in text
    assert "time.sleep(60)" in text or "test_hangs" in text.split("\n\n", 1)[1]
    assert "container logs: none" in text
    history = History.read(hang.parent / "history.jsonl")
    assert [r.op for r in history.records if r.type == "note"] == ["before the hang"]
    assert json.loads((hang.parent / "timeline.json").read_text()) == []


def test_the_watchdog_fires_before_pytest_timeout() -> None:
    assert fire_after(600) == 570
    assert fire_after(4) == 3.6
    assert 0 < fire_after(0.5) < 0.5
