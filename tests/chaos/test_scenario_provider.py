"""The provider error storm with the fallback tier, on a live 3-replica cluster.

Half of the mock provider's calls answer 429 for the whole scenario (the
mock reads its rates once at boot, so the storm is the cluster's
configuration, PROVIDER_STORM_SPEC); every agent may fall back to
mock-stable.  The fallback must carry every run to ``completed``, the
database must say which runs it carried (``runs.provider``), and every
invariant must hold.  The storm's effect is proven from the data: runs served
by mock-stable exist; with the storm off (every other scenario) none do.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest

from chaos.record.history import History
from chaos.scenario.steps import load_requests, run_many
from chaos.sut.loomcycle.ports import gated_policy, lb_client, scenario_run, served_by
from chaos.sut.loomcycle.settings import settings_of
from chaos.sut.loomcycle.specs import PROVIDER_STORM_SPEC
from chaos.verdict import Verdict
from chaos.workload import Driver

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.timeout(600),
]

RUNS, USERS = 60, 6
#: The storm sends no cancel and kills nothing.
NOTHING_TO_TIME = ["cancel_classification", "bounded_recovery"]


async def test_provider_storm_is_carried_by_the_fallback_tier(
    chaos_cluster_for: Callable[..., Awaitable[Any]],
    chaos_history: History,
    chaos_prefix: str,
    chaos_verdicts: Callable[[Sequence[Verdict]], None],
) -> None:
    spec = PROVIDER_STORM_SPEC
    cluster = await chaos_cluster_for(spec)
    async with (
        scenario_run(cluster, chaos_history, chaos_prefix) as run,
        lb_client(cluster) as lb,
    ):
        driver = Driver(
            lb, chaos_history, via="lb", policy=gated_policy(settings_of(spec).max_runs_per_user)
        )
        results = await run_many(driver, load_requests(chaos_prefix, "storm", RUNS, USERS))
        await run.converge()

    served = await served_by(cluster, chaos_prefix)
    chaos_history.note("provider_storm", served={f"{p}/{s}": n for (p, s), n in served.items()})
    not_done = [r for r in results if not r.completed]
    assert not not_done, f"{len(not_done)} of {RUNS} runs not completed: {not_done[:5]}"
    fallback = sum(n for (p, s), n in served.items() if p == "mock-stable" and s == "completed")
    assert fallback >= 1, f"the storm never reached the fallback tier: {served}"
    assert sum(served.values()) == RUNS, served
    chaos_verdicts(run.verdicts(allow_vacuous=NOTHING_TO_TIME))
