"""A user's deployed configuration is what the cluster runs, and its secrets stay out of JUnit.

The smoke scenario runs in a pytest subprocess with ``--chaos-target-config``
pointing at a file whose auth token differs from the suite's and whose stale
threshold is below what the target's documentation advises.  It passes only
if every replica got the deployed token (the suite's clients use it too: a
replica still on the preset token answers 401), the JUnit carries the
advisory beside the verdicts, and the token appears nowhere in the JUnit or
the artifacts.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chaos.report.junit import read_junit
from chaos.sut.loomcycle import target_config

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "deployed-token-4d1c9e"
DEPLOYED = f"""
env:
  LOOMCYCLE_REPLICAS_STALE_AFTER_MS: 45000
  LOOMCYCLE_AUTH_TOKEN: {TOKEN}
  GOGC: "100"
config:
  concurrency:
    max_concurrent_runs: 24
"""


def test_the_smoke_runs_the_deployed_configuration(tmp_path: Path, chaos_seed: int) -> None:
    cfg = tmp_path / "deployed.yaml"
    cfg.write_text(DEPLOYED)
    junit, artifacts = tmp_path / "junit.xml", tmp_path / "artifacts"
    env = {k: v for k, v in os.environ.items() if k != target_config.ENV_TARGET_CONFIG}
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-m",
        "chaos",
        "tests/chaos/test_smoke.py",
        f"--chaos-target-config={cfg}",
        f"--chaos-seed={chaos_seed}",
        f"--junitxml={junit}",
        f"--chaos-artifacts={artifacts}",
        "-p",
        "no:cacheprovider",
    ]
    done = subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=840, check=False
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert f"target config {cfg}" in out and "advisory: LOOMCYCLE_REPLICAS_STALE_AFTER_MS" in out
    _props, outcomes = read_junit(junit)
    assert [o.outcome for o in outcomes] == ["passed"]
    text = junit.read_text()
    assert "target_config_advisories" in text and "LOOMCYCLE_REPLICAS_STALE_AFTER_MS=45000" in text
    leaked = [p for p in [junit, *artifacts.rglob("*")] if p.is_file() and TOKEN in p.read_text()]
    assert TOKEN not in out and not leaked
