"""``loomchaos campaign`` end to end, as a user runs it: the command in a child process,
against real clusters (Postgres, Toxiproxy, nginx, loomcycle).

* the smallest burst: exit 0, every file of the data contract, every checker's verdict;
* the same burst sabotaged (one completed run rewritten to ``failed`` behind the
  history's back): ``terminal_is_final`` breaks, which no finding explains, so the
  exit code is 1 and the breach is listed as new;
* Ctrl-C while the cluster runs: exit 130, what was collected is written, and no
  container, network or volume of the child is left;
* the report in headless Chromium, provisioned as the suite's other tools are
  (reused, else installed from Debian's ``chromium`` as root): no console output,
  a screenshot; a page that writes to the console fails;
* (``slow``) the wheel: built, installed into a clean venv and used from outside
  the checkout (``scripts/check_wheel.sh``).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import docker
import pytest

from chaos.campaign.data import FILES
from chaos.campaign.report import render_report
from chaos.labels import LABEL_PID
from chaos.provision.browser import ensure_chromium
from chaos.wait import WaitTimeout

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(600)]

SMALLEST = ["burst", "--scale", "12", "--replicas", "3", "--seed", "11"]
#: A campaign child gets this long (start, one short wave, converge, teardown: ~30 s here).
CHILD_TIMEOUT_S = 300.0
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "scripts" / "screenshot_report.sh"
REPORT_FIXTURE = ROOT / "tests" / "unit" / "data" / "campaign" / "soak"
#: The script's own Chromium deadline is 90 s; rendering the page takes seconds.
SCREENSHOT_TIMEOUT_S = 150.0
#: Wheel build, clean install (~50 s), setup, the smallest campaign, the smoke test.
WHEEL_CHECK_TIMEOUT_S = 900.0


def campaign(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "chaos.cli", "campaign", *args, "--out", str(out)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False)


def summary_of(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "summary.json").read_text())
    return data


def test_smallest_campaign_writes_every_file_and_passes(
    tmp_path: Path, chaos_provisioned: Any
) -> None:
    done = campaign(tmp_path, *SMALLEST)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for name, columns in FILES.items():
        with (tmp_path / name).open() as fp:
            assert tuple(next(csv.reader(fp))) == columns, name
    (wave,) = list(csv.DictReader((tmp_path / "waves.csv").open()))
    assert (wave["scale"], wave["completed"], wave["failed"]) == ("12", "12", "0")
    samples = list(csv.DictReader((tmp_path / "samples.csv").open()))
    assert {s["replica"] for s in samples} == {"r1", "r2", "r3"}
    assert any(s["goroutines"] for s in samples), "no /metrics gauge was read"
    summary = summary_of(tmp_path)
    assert summary["exit_code"] == 0 and summary["new"] == []
    assert sum(summary["load_split"].values()) == 12
    invariants = {v["invariant"] for v in summary["verdicts"]}
    assert {"no_zombies", "no_quota_leaks", "terminal_is_final", "nothing_lost"} <= invariants
    assert "exit 0: 0 new breach(es)" in done.stdout


def test_sabotaged_campaign_exits_non_zero(tmp_path: Path, chaos_provisioned: Any) -> None:
    done = campaign(tmp_path, *SMALLEST, "--sabotage")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    summary = summary_of(tmp_path)
    assert summary["exit_code"] == 1
    assert "burst:terminal_is_final" in summary["new"], summary["new"]
    assert "NEW" in done.stdout


def _objects_of(pid: int) -> list[str]:
    client = docker.from_env()
    try:
        labels = {"label": f"{LABEL_PID}={pid}"}
        return [
            *(f"container {c.name}" for c in client.containers.list(all=True, filters=labels)),
            *(f"network {n.name}" for n in client.networks.list(filters=labels)),
            *(f"volume {v.name}" for v in client.volumes.list(filters=labels)),
        ]
    finally:
        client.close()


def _wait_for_line(path: Path, needle: str, proc: subprocess.Popen[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in path.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            raise AssertionError(f"campaign exited {proc.returncode} before {needle!r}")
        # Polling a log file the child writes: no event to wait on.
        time.sleep(0.2)
    raise WaitTimeout(f"{needle!r} in the campaign's output within {timeout:.0f}s")


def test_ctrl_c_tears_down_and_keeps_what_it_had(tmp_path: Path, chaos_provisioned: Any) -> None:
    out, log = tmp_path / "out", tmp_path / "log.txt"
    cmd = [sys.executable, "-m", "chaos.cli", "campaign", "sustained"]
    cmd += ["--phases", "8x120", "--seed", "3", "--out", str(out)]
    with log.open("w") as fp:
        # As from a terminal: a child of a background shell starts with SIGINT ignored,
        # and Python then never turns it into KeyboardInterrupt.
        proc = subprocess.Popen(
            cmd,
            stdout=fp,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    try:
        _wait_for_line(log, "wave 1 ", proc, CHILD_TIMEOUT_S)
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=CHILD_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    text = log.read_text(errors="replace")
    assert rc == 130, text[-3000:]
    summary = summary_of(out)
    assert summary["interrupted"] is True and summary["exit_code"] == 130
    assert len(list(csv.DictReader((out / "waves.csv").open()))) >= 1
    assert _objects_of(proc.pid) == [], "the interrupted campaign left Docker objects"


def _screenshot(folder: Path, browser_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{browser_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    env["PYTHON"] = sys.executable  # Pillow trims the blank rows
    return subprocess.run(
        ["bash", str(SCREENSHOT), str(folder), "1200", "6000"],
        capture_output=True,
        text=True,
        timeout=SCREENSHOT_TIMEOUT_S,
        env=env,
        check=False,
    )


def test_the_report_opens_in_headless_chromium(tmp_path: Path) -> None:
    browser = ensure_chromium(progress=print)
    print(
        f"chromium: {browser.path} "
        + ("(reused)" if browser.install_s is None else f"(installed in {browser.install_s:.0f}s)")
    )
    report = tmp_path / "soak"
    shutil.copytree(REPORT_FIXTURE, report)  # every chart, a kill, cancels, two replicas
    render_report(report)
    done = _screenshot(report, browser.path.parent)
    assert done.returncode == 0, done.stderr
    assert (report / "report.png").stat().st_size > 10_000
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "report.html").write_text("<html><script>console.error('boom')</script></html>")
    failed = _screenshot(broken, browser.path.parent)
    assert failed.returncode == 1
    assert "wrote to the console" in failed.stderr


@pytest.mark.slow
@pytest.mark.timeout(WHEEL_CHECK_TIMEOUT_S + 60)
def test_the_wheel_installs_and_runs_outside_the_checkout(
    tmp_path: Path, chaos_provisioned: Any
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LOOMCHAOS_DOCKER_LOCK"}
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "check_wheel.sh"), str(tmp_path / "wheel")],
        capture_output=True,
        text=True,
        timeout=WHEEL_CHECK_TIMEOUT_S,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "check_wheel: ok" in done.stdout
    # The phase times (build, install, setup, run --smallest, smoke test), for -s or -rP.
    phases = ("build:", "install:", "setup:", "run --smallest:", "smoke test:")
    print("\n".join(line for line in done.stdout.splitlines() if line.startswith(phases)))
