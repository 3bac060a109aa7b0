"""Interrupted sessions leave nothing behind.

Each test runs a small pytest scenario in a subprocess that starts an
infrastructure cluster under a session id chosen here, interrupts it from
outside, and then looks for anything still labelled with that session:

* SIGINT (Ctrl-C) while ``start()`` is still waiting on Postgres, and while the
  test body runs: the process must remove its own cluster on the way out;
* SIGKILL: nothing can run in the process, so the objects stay, and
  ``sweep_orphans()`` in a fresh process must find and remove exactly them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import docker
import docker.errors
import pytest

from chaos.labels import LABEL_SESSION, new_session_id
from chaos.wait import eventually_sync

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]

SCENARIO = textwrap.dedent(
    """
    import asyncio, os, pathlib

    import pytest
    import pytest_asyncio

    from chaos.cluster import Cluster, Deadlines
    from chaos.cluster.spec import ClusterSpec, NginxSpec, ResolvedImages
    from chaos.wait import eventually

    IMAGES = ResolvedImages(
        "loomchaos/postgres:local", "loomchaos/nginx:local", "loomchaos/toxiproxy:local", None
    )
    SPEC = ClusterSpec(replicas=2, nginx=NginxSpec(nofile=16384, worker_rlimit_nofile=16384))
    READY = pathlib.Path(os.environ["SCENARIO_READY_FILE"])
    POLLING = READY.with_name("polling")

    if os.environ.get("SCENARIO_SLOW_PG") == "1":
        # Postgres never looks ready, so start() is surely still running when the
        # signal arrives; the marker tells the parent that start() got this far.
        import chaos.cluster.cluster as cluster_module

        async def never_ready(*args, **kwargs):
            POLLING.write_text("polling")
            return False

        cluster_module.pg_select_one = never_ready


    @pytest_asyncio.fixture
    async def cluster():
        c = Cluster(SPEC, IMAGES, session_id=os.environ["SCENARIO_SESSION"])
        try:
            await c.start(with_replicas=False)
            yield c
        finally:
            await c.teardown()


    @pytest.mark.asyncio
    async def test_hold(cluster):
        READY.write_text(cluster.id)

        async def never():
            return False

        # Held until the parent interrupts us; bounded so a lost signal cannot hang CI.
        await eventually(never, what="the parent to interrupt this scenario", timeout=120)
    """
)


def _client() -> docker.DockerClient:
    try:
        client = docker.from_env()
        client.ping()
        client.images.get("loomchaos/postgres:local")
    except docker.errors.DockerException as exc:
        pytest.skip(f"no Docker engine or images: {exc}")
    return client


def _labelled(client: docker.DockerClient, session: str) -> list[str]:
    flt = {"label": [f"{LABEL_SESSION}={session}"]}
    return (
        [f"container:{c.name}" for c in client.containers.list(all=True, filters=flt)]
        + [f"network:{n.name}" for n in client.networks.list(filters=flt)]
        + [f"volume:{v.name}" for v in client.volumes.list(filters=flt)]
    )


def _spawn(tmp_path: Path, session: str, *, slow_pg: bool) -> tuple[subprocess.Popen[bytes], Path]:
    scenario = tmp_path / "scenario_cluster.py"
    scenario.write_text(SCENARIO)
    ready = tmp_path / "ready"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "SCENARIO_SESSION": session,
        "SCENARIO_READY_FILE": str(ready),
        "SCENARIO_SLOW_PG": "1" if slow_pg else "0",
    }
    # Our own plugin is left out: the scenario tests the cluster module, nothing else.
    cmd = [
        sys.executable, "-m", "pytest", str(scenario), "-q", "-s",
        "-p", "no:cacheprovider", "-p", "no:loomchaos", "-o", "addopts=",
        "-o", "asyncio_default_fixture_loop_scope=function",
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        # As from a terminal: a session started in the background (a CI runner's job,
        # `cmd &` in a script) has SIGINT ignored, its children inherit that, and Python
        # then never turns SIGINT into KeyboardInterrupt: the scenario would hang.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    return proc, ready


def _finish(proc: subprocess.Popen[bytes], timeout: float = 90) -> str:
    out, _ = proc.communicate(timeout=timeout)
    return out.decode(errors="replace")[-3000:]


@pytest.mark.parametrize("moment", ["mid-start", "mid-test"])
def test_sigint_tears_the_cluster_down(tmp_path: Path, moment: str) -> None:
    client = _client()
    session = new_session_id()
    proc, ready = _spawn(tmp_path, session, slow_pg=moment == "mid-start")
    try:
        if moment == "mid-start":
            polling = ready.with_name("polling")
            eventually_sync(
                polling.exists, what="the scenario's start() to poll Postgres", timeout=60
            )
            assert not ready.exists()
        else:
            eventually_sync(ready.exists, what="the scenario's cluster to be ready", timeout=90)
        assert _labelled(client, session), "the scenario created nothing"
        proc.send_signal(signal.SIGINT)
        output = _finish(proc)
        print(output)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode != 0, output
    assert _labelled(client, session) == [], output


def test_sigkill_leaves_orphans_that_sweep_removes(tmp_path: Path) -> None:
    client = _client()
    session = new_session_id()
    proc, ready = _spawn(tmp_path, session, slow_pg=False)
    try:
        eventually_sync(ready.exists, what="the scenario's cluster to be ready", timeout=90)
        proc.kill()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    left = _labelled(client, session)
    assert len(left) == 5, left  # SIGKILL: 3 containers, the network and the volume remain
    sweep = subprocess.run(
        [
            sys.executable, "-c",
            "from chaos.cluster import sweep_orphans; r = sweep_orphans(); "
            "print(r.containers, r.networks, r.volumes)",
        ],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        timeout=120,
    )  # fmt: skip
    assert sweep.returncode == 0, sweep.stderr.decode()
    report = sweep.stdout.decode()
    for name in left:
        assert name.split(":", 1)[1] in report
    assert _labelled(client, session) == []
