"""``loomchaos gate`` end to end on a planted defect given as a binary (slow: a Go build).

The quota-release mutant (planted defect 01: a user's last slot is never
given back) is built into a binary and handed to the gate as
``--candidate bin:PATH``, with no baseline, on the smoke scenario.  Its leak is
written up nowhere, so the gate must answer "new finding": exit code 1, the
same verdict in the JUnit XML and the report, the candidate's version and image
id in the JUnit properties, and the image it packaged from the binary removed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import docker
import pytest

from chaos.mutants.build import GoBuilder, target_module
from chaos.mutants.patches import discover
from chaos.mutants.workspace import apply_patch, pinned_source, remove_tree
from chaos.provision.binaries import go_env
from chaos.provision.common import cache_dir
from chaos.sut.loomcycle import build as target_build

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.timeout(2400)]

ROOT = Path(__file__).resolve().parents[2]
PLANTED = ROOT / "planted" / f"loomcycle-{target_build.VERSION}"
#: The gate's "a new finding" exit code (README, "The release gate").
EXIT_NEW = 1


def mutant_binary(tmp_path: Path, prefix: str) -> Path:
    """The target's pinned source with one planted patch applied, built into a binary."""
    module, main_package = target_module()
    gopath = Path(go_env(cache_dir(), tmp_path)["GOPATH"])
    tree = tmp_path / "src"
    shutil.copytree(pinned_source(gopath, module, target_build.VERSION), tree, symlinks=True)
    (patch,) = [p for p in discover(PLANTED) if p.name.startswith(prefix)]
    try:
        apply_patch(tree, patch)
        built = GoBuilder(cache_dir(), main_package).build(tree, tmp_path / "loomcycle")
    finally:
        remove_tree(tree)
    assert built.ok and built.binary is not None, built.error
    return built.binary


def test_a_binary_with_a_planted_quota_leak_fails_the_gate(tmp_path: Path) -> None:
    binary = mutant_binary(tmp_path, "01-")
    report = tmp_path / "report"
    cmd = [
        sys.executable,
        "-m",
        "chaos.cli",
        "gate",
        "--candidate",
        f"bin:{binary}",
        "--reps",
        "1",
        "--scenarios",
        "tests/chaos/test_smoke.py",
        "--report-dir",
        str(report),
    ]
    env = {k: v for k, v in os.environ.items() if k != "LOOMCHAOS_DOCKER_LOCK"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == EXIT_NEW, out[-4000:]
    # The exit code, the verdict table, the report and the JUnit XML say the same thing.
    assert "gate FAIL" in proc.stdout, out[-4000:]
    doc = json.loads((report / "report.json").read_text())
    assert doc["verdict"] == "fail", doc
    assert "new" in [f["kind"] for f in doc["findings"]], doc["findings"]
    suite = ET.parse(report / "junit.xml").getroot()
    props = {p.get("name"): p.get("value") for p in suite.iterfind("properties/property")}
    assert props["verdict"] == "fail", props
    assert (props["candidate_image_id"] or "").startswith("sha256:"), props
    assert int(suite.get("failures", "0")) >= 1
    # The image the gate packaged from the binary is gone.
    packaged = doc["candidate"]["image"]
    assert packaged not in {"loomchaos/loomcycle:local", ""}, doc["candidate"]
    with pytest.raises(docker.errors.ImageNotFound):
        docker.from_env().images.get(packaged)
