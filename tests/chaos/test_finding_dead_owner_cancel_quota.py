"""Finding LC-005, reduced: a run the cancel path marks failed for a dead owner keeps its slot.

One run of one user goes straight to a seeded victim, which is SIGKILLed.  Past
the cancel path's fixed 90 s judgement, but before the sweeper's stale
threshold (130 s under CANCEL_WINDOWS_SPEC), the run is cancelled through a
survivor: the survivor marks it ``failed / owner_replica_dead`` and answers
``owner_dead_marked_failed``.  The sweeper then reaps the victim, but its quota
reap counts only rows it marked itself (error ``owner replica died``) and runs
only when it marked any: the user's slot is never given back.

Deterministic (the cancel is aimed inside the window from the victim's last
heartbeat on the database clock): hit in every run so far (docs/findings/LC-005.md).
About 2.5 min: the window opens 90 s after the victim's last heartbeat.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from chaos.checks import no_quota_leaks
from chaos.faults import injected
from chaos.faults.replica import reap_wait_s
from chaos.findings import known_finding
from chaos.record.history import History
from chaos.record.vocabulary import Snapshot
from chaos.scenario import non_owner, recorded_cancel
from chaos.scenario.evidence import owned_running
from chaos.scenario.killed_owner import kill_seen_dead
from chaos.scenario.steps import load_requests
from chaos.sut.loomcycle.cancel_windows import EXPECTED, JUDGED_DEAD_UNREAPED, aim, window_bounds
from chaos.sut.loomcycle.ports import replica_clients, scenario_run, started_runs
from chaos.sut.loomcycle.settings import settings_of
from chaos.sut.loomcycle.specs import CANCEL_WINDOWS_SPEC
from chaos.verdict import InvariantViolation, assert_verdicts

#: ``slow``: the scenarios that meet this finding check its signature in the CI tier; this
#: reduction (a fixed target turns it red) runs in ``-m slow`` and the gate's ``--full``,
#: to keep the CI chaos tier inside its 40 min (README, "The two tiers").
pytestmark = [
    pytest.mark.slow,
    pytest.mark.chaos,
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.timeout(600),
]

#: Keep this far (s) from the window's edges: the database's clock against ours.
SLACK_S = 3.0
#: A cancel through a survivor takes up to the ack timeout plus a re-read.
CALL_S = 4.0


@known_finding("LC-005", raises=InvariantViolation)
async def test_a_run_marked_failed_for_a_dead_owner_gives_its_slot_back(
    chaos_cluster_for: Callable[..., Awaitable[Any]],
    chaos_history: History,
    chaos_prefix: str,
    chaos_rng: random.Random,
    chaos_seed: int,
) -> None:
    cluster = await chaos_cluster_for(CANCEL_WINDOWS_SPEC)
    stale_s = settings_of(cluster.spec).timers.replica_stale_ms / 1000.0
    victim = cluster.replica_ids[chaos_rng.randrange(len(cluster.replica_ids))]
    reqs = load_requests(chaos_prefix, "lc005", 1, 1)
    async with (
        scenario_run(cluster, chaos_history, chaos_prefix) as run,
        replica_clients(cluster) as clients,
    ):
        async with started_runs(cluster, chaos_history, reqs, via=victim, poll_timeout_s=5.0):
            await run.wait_for(
                lambda s: len(owned_running(s, victim)) == 1,
                what=f"the run to be running on {victim}",
                timeout=60,
            )
            (row,) = owned_running(await run.sample(), victim)
            async with injected(await kill_seen_dead(cluster, victim), chaos_history):
                snap = await run.sample()
                (beat,) = [r.last_heartbeat_at for r in snap.replicas if r.replica_id == victim]
                bounds = window_bounds(beat, stale_s, SLACK_S)[JUDGED_DEAD_UNREAPED]
                # Timing, not synchronisation: the window is a span of the database's clock
                # (90 s after the last heartbeat, until the stale threshold).
                await asyncio.sleep(max(0.0, aim(bounds, 0.25, CALL_S) - time.time()))
                via = non_owner(list(clients), victim, chaos_rng)
                answer = await recorded_cancel(
                    chaos_history, clients[via], row.agent_id, via=via, reason="loomchaos LC-005"
                )
                # The provocation itself, not the invariant: the cancel path judged the
                # owner dead and marked the run.
                expected = EXPECTED[JUDGED_DEAD_UNREAPED].cancel_class
                assert answer is not None and answer.classification == expected, answer

                def reaped(s: Snapshot) -> bool:
                    return all(r.replica_id != victim for r in s.replicas)

                await run.wait_for(
                    reaped,
                    what=f"the survivors to reap {victim}",
                    timeout=reap_wait_s(run.params),
                    interval=0.5,
                )
        await run.converge()

    assert_verdicts([no_quota_leaks.check(run.context())], seed=chaos_seed)
