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

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest

from chaos.bench.nofile_rig import raise_own_nofile_limit
from chaos.cluster.spec import NginxSpec
from chaos.record.history import History
from chaos.scenario.steps import load_requests, run_many
from chaos.sut.loomcycle.ports import gated_policy, lb_client, scenario_run
from chaos.sut.loomcycle.settings import settings_of, with_settings
from chaos.sut.loomcycle.specs import SMOKE_SPEC
from chaos.verdict import Verdict
from chaos.workload import Driver, RunResult

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
