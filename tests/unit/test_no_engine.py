"""`pytest -m chaos` with no engine reachable and no way to start one stops with one line.

DOCKER_HOST points at a TCP port where nothing listens: provisioning cannot
start an engine behind a TCP address, so it must stop at once, naming what is
missing, with no traceback and nothing started.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

CHAOS_TEST = """
import pytest

@pytest.mark.chaos
def test_needs_a_cluster():
    raise AssertionError("must not run: provisioning should have stopped the session")
"""


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_chaos_tier_without_engine_stops_with_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "test_c.py").write_text(CHAOS_TEST)
    env = {**os.environ, "DOCKER_HOST": f"tcp://127.0.0.1:{_dead_port()}"}
    env["LOOMCHAOS_CACHE"] = str(tmp_path / "cache")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "chaos", "-p", "no:cacheprovider", "test_c.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 3, out
    lines = [ln for ln in out.splitlines() if "loomchaos: no Docker engine answers" in ln]
    assert len(lines) == 1, out
    assert "Traceback" not in out and "must not run" not in out
