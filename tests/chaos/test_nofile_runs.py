"""The write-up's nginx open-files loss, measured in loomcycle runs.

The write-up lost circuits to nginx 500s with the default nofile=1024.  Here
the same 3-replica cluster shape runs behind an nginx limited to 256 open
files and, as the control, behind the suite's default (16384).  Each gets a
burst of 160 runs at once (cap 4 per user: 40 users).  A proxied stream holds
two descriptors in nginx (client and upstream), so 160 streams need ~320, above
256 and far below 16384:

* low: some runs are lost, as 5xx answers or broken streams, and nginx's log
  says "Too many open files": the effect proven by its cause;
* default: none is lost and no such line: the fix heals it.

Both judge every invariant: a run nginx lost before loomcycle saw it is not
a run loomcycle lost.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import pytest

from chaos.bench.nofile_rig import raise_own_nofile_limit
from chaos.cluster.spec import NginxSpec
from chaos.faults import ReplicaFdExhaustion, injected
from chaos.faults.replica import answers_healthz, container_target
from chaos.record.history import History
from chaos.scenario.steps import load_requests, run_many
from chaos.sut.base import RunRequest
from chaos.sut.loomcycle.ports import gated_policy, lb_client, scenario_run
from chaos.sut.loomcycle.settings import settings_of, with_settings
from chaos.sut.loomcycle.specs import REPLICA_NOFILE_SPEC, SMOKE_SPEC
from chaos.verdict import Verdict
from chaos.workload import Driver, RunResult
from chaos.workload.gates import CapPolicy

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.timeout(600),
]

RUNS, USERS = 160, 40
LOW_NOFILE = 256
#: The smoke cluster with an nginx that may open only 256 files.
LOW_NOFILE_SPEC = with_settings(
    SMOKE_SPEC, nginx=NginxSpec(nofile=LOW_NOFILE, worker_rlimit_nofile=LOW_NOFILE)
)
EMFILE = "Too many open files"
#: Nothing is cancelled or killed in a burst.
NOTHING_TO_TIME = ["cancel_classification", "bounded_recovery"]


@pytest.fixture(autouse=True)
def _driver_can_hold_the_burst() -> None:
    """The driver must not run out of descriptors before nginx does, or the test lies."""
    own = raise_own_nofile_limit()
    if own < RUNS * 2 + 64:
        pytest.fail(f"this process may open only {own} files; {RUNS * 2 + 64} are needed")


async def burst(cluster: Any, history: History, prefix: str) -> tuple[list[RunResult], Any]:
    async with scenario_run(cluster, history, prefix) as run, lb_client(cluster) as lb:
        driver = Driver(
            lb,
            history,
            via="lb",
            policy=gated_policy(settings_of(cluster.spec).max_runs_per_user),
            launch_slots=RUNS,
            run_timeout_s=120,
            poll_timeout_s=15,
        )
        results = await run_many(driver, load_requests(prefix, "burst", RUNS, USERS))
        await run.converge()
    return results, run


def lost(results: Sequence[RunResult]) -> Counter[str]:
    """How the runs that did not complete ended, by the driver's word."""
    return Counter(f"{r.end}:{r.http_status or ''}" for r in results if not r.completed)


async def test_low_nofile_nginx_loses_runs_with_emfile_in_its_log(
    chaos_cluster_for: Callable[..., Awaitable[Any]],
    chaos_history: History,
    chaos_prefix: str,
    chaos_verdicts: Callable[[Sequence[Verdict]], None],
) -> None:
    cluster = await chaos_cluster_for(LOW_NOFILE_SPEC)
    results, run = await burst(cluster, chaos_history, chaos_prefix)
    log = await cluster.log_tail("nginx", lines=5000)
    losses = lost(results)
    chaos_history.note("nofile_loss", nofile=LOW_NOFILE, runs=RUNS, lost=dict(losses))
    print(f"nofile={LOW_NOFILE}: {sum(losses.values())} of {RUNS} runs lost: {dict(losses)}")
    assert sum(losses.values()) > 0, f"a {LOW_NOFILE}-file nginx carried {RUNS} streams"
    assert EMFILE in log, f"losses without '{EMFILE}' in nginx's log: {dict(losses)}"
    chaos_verdicts(run.verdicts(allow_vacuous=NOTHING_TO_TIME))


async def test_default_nofile_nginx_loses_no_run(
    chaos_cluster_for: Callable[..., Awaitable[Any]],
    chaos_history: History,
    chaos_prefix: str,
    chaos_verdicts: Callable[[Sequence[Verdict]], None],
) -> None:
    cluster = await chaos_cluster_for(SMOKE_SPEC)
    results, run = await burst(cluster, chaos_history, chaos_prefix)
    losses = lost(results)
    print(f"nofile={SMOKE_SPEC.nginx.nofile}: {sum(losses.values())} of {RUNS} runs lost")
    assert not losses, f"the default limit still lost runs: {dict(losses)}"
    assert EMFILE not in await cluster.log_tail("nginx", lines=5000)
    chaos_verdicts(run.verdicts(allow_vacuous=NOTHING_TO_TIME))


# -- issue #10, scenario 10 at a replica ------------------------------------------------

#: The load while one replica has no descriptor left: ~2 s runs, 12 users x cap 4.
FD_RUNS, FD_USERS = 120, 12
#: The fault holds one idle connection per descriptor the replica may open, and a margin.
FD_HOLD = REPLICA_NOFILE_SPEC.replica_nofile + 64
#: While the victim is out of descriptors the survivors must go on: this many runs
#: completed after the effect was proven ends the fault (bounded by FD_HELD_MAX_S).
SURVIVOR_RUNS_DURING_FAULT = 12
FD_HELD_MAX_S = 60.0


async def test_replica_out_of_file_descriptors_loses_no_run(
    chaos_cluster_for: Callable[..., Awaitable[Any]],
    chaos_history: History,
    chaos_prefix: str,
    chaos_rng: random.Random,
    chaos_verdicts: Callable[[Sequence[Verdict]], None],
) -> None:
    """One replica (every replica runs with nofile=512) has its descriptor table filled
    with idle connections to its own port while the cluster is under load: its accept
    loop fails ("too many open files", Go's net/http retries the accept), so nginx's
    new connections to it wait in the kernel's backlog, and anything it must open (a
    Postgres connection, a file) fails.  What must hold: the survivors go on serving;
    nothing is lost silently (every start got a run id and a terminal row, or a clear
    refusal: nothing_lost, one_truth, no_zombies); once the idle connections close, the
    replica serves again (a start sent straight to it completes); every invariant."""
    cluster = await chaos_cluster_for(REPLICA_NOFILE_SPEC)
    victim = chaos_rng.choice(cluster.replica_ids)
    url = urlsplit(cluster.replica_url(victim))
    assert url.hostname and url.port, url
    async with scenario_run(cluster, chaos_history, chaos_prefix) as run, lb_client(cluster) as lb:
        driver = Driver(
            lb,
            chaos_history,
            via="lb",
            policy=gated_policy(settings_of(cluster.spec).max_runs_per_user),
            run_timeout_s=180,
            poll_timeout_s=15,
        )
        load = asyncio.create_task(
            run_many(driver, load_requests(chaos_prefix, "fd", FD_RUNS, FD_USERS))
        )
        try:
            await run.wait_for(
                lambda s: any(r.replica_id == victim and r.status == "running" for r in s.runs),
                what=f"{victim} to own a running run",
                timeout=60,
            )
            fault = ReplicaFdExhaustion(
                await container_target(cluster, victim, answers_healthz(cluster, victim)),
                (url.hostname, url.port),
                max_connections=FD_HOLD,
                path="/healthz",
            )
            async with injected(fault, chaos_history):
                since = time.time()
                await run.wait_for(
                    lambda s: (
                        sum(
                            1
                            for r in s.runs
                            if r.replica_id != victim
                            and r.status == "completed"
                            and (r.completed_at or 0) > since
                        )
                        >= SURVIVOR_RUNS_DURING_FAULT
                    ),
                    what=f"the survivors to complete {SURVIVOR_RUNS_DURING_FAULT} runs "
                    f"while {victim} has no descriptor left",
                    timeout=FD_HELD_MAX_S,
                )
                held = len(fault.held)
            results = await load
        finally:
            if not load.done():
                load.cancel()
            await asyncio.gather(load, return_exceptions=True)
        direct = cluster.adapter.client(cluster.replica_url(victim))
        try:
            after = await Driver(direct, chaos_history, via=victim, policy=CapPolicy()).run(
                RunRequest(
                    agent="chaos",
                    agent_id=f"{chaos_prefix}-fd-healed",
                    prompt="loomchaos after the fd fault",
                    user_id=f"{chaos_prefix}-fd-healed-u",
                )
            )
        finally:
            await direct.aclose()
        await run.converge()

    losses = lost(results)
    chaos_history.note("replica_fd", victim=victim, held=held, lost=dict(losses))
    print(
        f"{victim} out of descriptors ({held} held): {sum(losses.values())} of "
        f"{FD_RUNS} runs not completed: {dict(losses)}"
    )
    assert held >= REPLICA_NOFILE_SPEC.replica_nofile // 2, f"only {held} connections held"
    assert after.completed, f"{victim} does not serve after the heal: {after}"
    chaos_verdicts(run.verdicts(allow_vacuous=NOTHING_TO_TIME))
