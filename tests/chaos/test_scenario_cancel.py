"""Issue 4, cancels: through a non-owner, to a frozen owner, twice at once, racing
completion, and a bounded storm.

Every cancel is a recorded operation (``cancel``), classified by the target
adapter; the checkers judge classes (cancel_classification), ack times
(bounded_recovery) and that each run's end fits its cancels
(stop_reason_fits_cause).  Runs last ~6 s (CANCEL_SPEC).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import pytest

from chaos.faults import CancelStorm, injected, prove_effect, prove_heal
from chaos.record.history import History
from chaos.record.vocabulary import RunRow, Snapshot
from chaos.scenario import (
    StormCanceller,
    freeze_replica,
    non_owner,
    other_replicas,
    recorded_cancel,
)
from chaos.scenario.evidence import final_rows
from chaos.scenario.run import ScenarioRun
from chaos.scenario.steps import load_requests, running_row
from chaos.sut.base import CancelResult, RunClient, RunRequest
from chaos.sut.loomcycle.ports import replica_clients, scenario_run, started_runs
from chaos.sut.loomcycle.settings import settings_of
from chaos.sut.loomcycle.specs import CANCEL_SPEC
from chaos.verdict import AssertVerdicts, Verdict

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.timeout(600),
]

#: Scenarios that cancel every run they start have no completed run whose outputs
#: no_silent_regressions could judge: vacuous by construction, not by accident.
ALL_CANCELLED = ["no_silent_regressions"]

#: Classes a cancel of a run that may end meanwhile can legitimately get from a healthy cluster.
RACE_CLASSES = frozenset({"acknowledged", "already_terminal"})


async def all_running(run: ScenarioRun, reqs: Sequence[RunRequest]) -> dict[str, RunRow]:
    """Wait until every request's run is running with a known owner; rows by agent id."""

    def every(snap: Snapshot) -> bool:
        return all(running_row(snap, r.agent_id) for r in reqs)

    snap = await run.wait_for(every, what=f"{len(reqs)} runs running", timeout=60)
    rows = {r.agent_id: running_row(snap, r.agent_id) for r in reqs}
    return {a: row for a, row in rows.items() if row is not None}


async def cancel_via_non_owner(
    history: History,
    clients: Mapping[str, RunClient],
    row: RunRow,
    rng: random.Random,
    reason: str,
) -> CancelResult | None:
    via = non_owner(list(clients), row.replica_id, rng)
    return await recorded_cancel(history, clients[via], row.agent_id, via=via, reason=reason)


async def test_cancel_through_a_non_owner_is_acknowledged(
    chaos_cluster_for: Callable[..., Awaitable[Any]],
    chaos_history: History,
    chaos_prefix: str,
    chaos_rng: random.Random,
    chaos_verdicts: AssertVerdicts,
) -> None:
    cluster = await chaos_cluster_for(CANCEL_SPEC)
    cap = settings_of(CANCEL_SPEC).max_runs_per_user
    reqs = load_requests(chaos_prefix, "nonowner", 6 * cap, 6)  # 24 at once: >= min_p99_samples
    reason = "loomchaos: cross-replica cancel"
    ack_bound = settings_of(CANCEL_SPEC).timers.cancel_ack_timeout_ms / 1000.0
    async with (
        # Every cancel here goes through a replica that does not own its run.
        scenario_run(
            cluster,
            chaos_history,
            chaos_prefix,
            ack_p99_bound_s=ack_bound,
            min_cross_replica_cancel_share=1.0,
        ) as run,
        replica_clients(cluster) as clients,
    ):
        async with started_runs(cluster, chaos_history, reqs):
            rows = await all_running(run, reqs)
            results = [
                await cancel_via_non_owner(chaos_history, clients, row, chaos_rng, reason)
                for row in rows.values()
            ]
        await run.converge()

    classes = [None if r is None else r.classification for r in results]
    assert classes.count("acknowledged") == len(reqs), classes
    ended = final_rows(run.context(), rows)
    assert all((r.status, r.stop_reason) == ("cancelled", reason) for r in ended), ended[:5]
    chaos_verdicts(run.verdicts(allow_vacuous=ALL_CANCELLED))


async def test_cancel_while_the_owner_is_frozen(
    chaos_cluster_for: Callable[..., Awaitable[Any]],
    chaos_history: History,
    chaos_prefix: str,
    chaos_verdicts: AssertVerdicts,
) -> None:
    """The owner cannot ack: ``owner_replica_unreachable`` after the ack timeout, classified
    and not a failure (the owner was not healthy).  A control cancel on two healthy
    replicas afterwards proves the ack path and gives bounded_recovery its sample."""
    cluster = await chaos_cluster_for(CANCEL_SPEC)
    owner, asker, third = cluster.replica_ids[:3]
    frozen_req = load_requests(chaos_prefix, "frozen", 1, 1)
    control_req = load_requests(chaos_prefix, "control", 1, 1)
    async with (
        scenario_run(cluster, chaos_history, chaos_prefix) as run,
        replica_clients(cluster) as clients,
    ):
        async with started_runs(cluster, chaos_history, frozen_req, via=owner):
            (row,) = (await all_running(run, frozen_req)).values()
            async with injected(await freeze_replica(cluster, owner), chaos_history):
                unreachable = await recorded_cancel(
                    chaos_history,
                    clients[asker],
                    row.agent_id,
                    via=asker,
                    reason="to a frozen owner",
                )
        async with started_runs(cluster, chaos_history, control_req, via=asker):
            (control,) = (await all_running(run, control_req)).values()
            acked = await recorded_cancel(
                chaos_history, clients[third], control.agent_id, via=third, reason="control"
            )
        await run.converge()

    assert unreachable is not None and unreachable.classification == "owner_unreachable", (
        unreachable
    )
    assert acked is not None and acked.classification == "acknowledged", acked
    chaos_verdicts(run.verdicts(allow_vacuous=ALL_CANCELLED))


async def test_the_same_run_cancelled_from_two_replicas_at_once(
    chaos_cluster_for: Callable[..., Awaitable[Any]],
    chaos_history: History,
    chaos_prefix: str,
    chaos_verdicts: AssertVerdicts,
) -> None:
    cluster = await chaos_cluster_for(CANCEL_SPEC)
    reqs = load_requests(chaos_prefix, "twice", 6, 6)
    async with (
        scenario_run(cluster, chaos_history, chaos_prefix) as run,
        replica_clients(cluster) as clients,
    ):
        async with started_runs(cluster, chaos_history, reqs):
            rows = await all_running(run, reqs)

            async def twice(agent_id: str, row: RunRow) -> list[CancelResult | None]:
                vias = other_replicas(cluster.replica_ids, row.replica_id)[:2]
                return list(
                    await asyncio.gather(
                        *(
                            recorded_cancel(
                                chaos_history, clients[v], agent_id, via=v, reason=f"twice-{v}"
                            )
                            for v in vias
                        )
                    )
                )

            # Every pair at once, while every run surely still runs (~6 s runs). Sent one
            # pair after another, a pair whose second cancel missed the owner's ack waited
            # the whole 2 s ack timeout, and three such waits let the last run end before
            # its pair was sent (seen on a CI run: both answers already_terminal).
            pairs = await asyncio.gather(*(twice(a, r) for a, r in rows.items()))
            answers = dict(zip(rows, pairs, strict=True))
        await run.converge()

    for agent_id, pair in answers.items():
        classes = [None if a is None else a.classification for a in pair]
        assert set(classes) <= RACE_CLASSES and "acknowledged" in classes, (agent_id, classes)
    ended = final_rows(run.context(), rows)
    assert all(
        r.status == "cancelled" and (r.stop_reason or "").startswith("twice-") for r in ended
    )
    # terminal_is_final (in the verdicts) proves the second cancel changed nothing.
    chaos_verdicts(run.verdicts(allow_vacuous=ALL_CANCELLED))


async def test_cancel_racing_completion(
    chaos_cluster_for: Callable[..., Awaitable[Any]],
    chaos_history: History,
    chaos_prefix: str,
    chaos_rng: random.Random,
    chaos_verdicts: AssertVerdicts,
) -> None:
    """Each cancel is aimed at a moment around its run's expected end (mock latency +/-
    jitter and a little more); both outcomes are legal, and each must fit the run's end."""
    cluster = await chaos_cluster_for(CANCEL_SPEC)
    mock = settings_of(CANCEL_SPEC).mock
    reqs = load_requests(chaos_prefix, "race", 12, 6)
    async with (
        scenario_run(cluster, chaos_history, chaos_prefix) as run,
        replica_clients(cluster) as clients,
    ):
        async with started_runs(cluster, chaos_history, reqs):
            rows = await all_running(run, reqs)
            wall_minus_mono = time.time() - time.monotonic()

            async def race(row: RunRow) -> CancelResult | None:
                spread = (mock.jitter_ms + 300) / 1000.0
                aim = (row.started_at or time.time()) + mock.latency_ms / 1000.0
                aim += chaos_rng.uniform(-spread, spread)
                # Scheduling the cancel at a chosen instant: timing, not synchronisation.
                await asyncio.sleep(max(0.0, aim - wall_minus_mono - time.monotonic()))
                return await cancel_via_non_owner(
                    chaos_history, clients, row, chaos_rng, RACE_REASON
                )

            results = await asyncio.gather(*(race(r) for r in rows.values()))
        await run.converge()

    classes = [None if r is None else r.classification for r in results]
    assert set(classes) <= RACE_CLASSES, classes
    chaos_history.note("race_outcomes", classes=classes)
    # LC-004 (a cancel landing after the client got done still writes cancelled) is
    # reproduced by test_finding_done_then_cancelled.py; here one_truth may fail only
    # with its signature, and every other invariant must pass.
    verdicts = run.verdicts()
    known = [v for v in verdicts if v.invariant == "one_truth" and not v.ok]
    for v in known:
        assert_lc004_signature(v, RACE_REASON)
    chaos_verdicts([v for v in verdicts if v not in known], known=known)


#: The reason the racing cancels carry (the row's stop_reason when the cancel won).
RACE_REASON = "loomchaos: racing completion"


def assert_lc004_signature(verdict: Verdict, reason: str) -> None:
    """The one_truth failure is LC-004's: every mismatch is a run whose client got
    ``done`` while its row says ``cancelled`` with our cancel's reason, and no run
    was reaped from a live owner."""
    ev = verdict.evidence
    assert not ev.get("reaped_live_owner"), f"one_truth failed, not as LC-004: {ev}"
    mismatches = ev.get("client_db_mismatch") or []
    assert mismatches, f"one_truth failed without a mismatch: {ev}"
    for item in mismatches:
        assert str(item.get("client_saw", "")).startswith("done"), item
        assert item.get("status") == "cancelled" and item.get("stop_reason") == reason, (
            f"not LC-004 (client saw done, row cancelled with {reason!r}): {item}"
        )


async def test_bounded_cancel_storm(
    chaos_cluster_for: Callable[..., Awaitable[Any]],
    chaos_history: History,
    chaos_prefix: str,
    chaos_rng: random.Random,
    chaos_verdicts: AssertVerdicts,
) -> None:
    """loomcycle's own rig: every 200 ms cancel the newest running run through a non-owner,
    at most 60 times, during 60 runs.  The storm is load, not an infrastructure fault, so it
    is driven with the proofs but NOT recorded as a fault window: a window would excuse
    every cancel inside it from the ack bound (bounded_recovery skips faulted spans)."""
    cluster = await chaos_cluster_for(CANCEL_SPEC)
    reqs = load_requests(chaos_prefix, "storm", 60, 6)
    ack_bound = settings_of(CANCEL_SPEC).timers.cancel_ack_timeout_ms / 1000.0
    async with (
        scenario_run(cluster, chaos_history, chaos_prefix, ack_p99_bound_s=ack_bound) as run,
        replica_clients(cluster) as clients,
    ):
        async with started_runs(cluster, chaos_history, reqs) as load:
            canceller = StormCanceller(chaos_history, run.peek, clients, chaos_rng)
            storm = CancelStorm("cluster", canceller, interval_s=0.2, max_cancels=60)
            chaos_history.note("cancel_storm", phase="start", **storm.describe())
            await storm.inject()
            try:
                await prove_effect(storm)
                # The storm blows for as long as the load runs (bounded by max_cancels).
                await asyncio.wait({load}, timeout=180)
            finally:
                await storm.heal()
                await prove_heal(storm)
            chaos_history.note("cancel_storm", phase="stop", **await storm.evidence())
        await run.converge()

    assert storm.counts["acknowledged"] >= 1, dict(storm.counts)
    assert not storm.errors, storm.errors
    chaos_verdicts(run.verdicts())
