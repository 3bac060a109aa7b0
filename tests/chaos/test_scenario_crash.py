"""Issue 4, crashes: a replica owning runs is killed, stopped gracefully, or frozen under load.

CONTRACT.md promises that a crashed replica's runs are marked failed
(``replica_died``) and its users' quota slots given back by the survivors
within the stale threshold plus one sweep (CRASH_TIMERS: 60 s + 5 s), that a
graceful stop deletes the replica's row within ~5 s, and that Postgres is the
one truth.  Each test asserts what it set out to cause (the victim owned
running runs; its row went) and then every invariant.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest

from chaos.checks.params import CheckParams
from chaos.faults import Fault as ChaosFault
from chaos.faults import FaultNotProven, injected
from chaos.faults.replica import REJOIN_TIMEOUT_S, reap_wait_s, survivors_list
from chaos.record.history import History
from chaos.record.vocabulary import FAULT_KILL, FAULT_PAUSE, FAULT_STOP, RunRow
from chaos.scenario import freeze_replica, kill_replica, rejoin, stop_replica
from chaos.scenario.evidence import (
    final_rows,
    only_window,
    owned_running,
    replica_row_deleted_after,
)
from chaos.scenario.run import ScenarioRun
from chaos.scenario.steps import load_requests
from chaos.schedule import (
    At,
    Choose,
    Chosen,
    Fault,
    Heal,
    Load,
    Opened,
    Quiesce,
    Schedule,
    ScheduleRun,
    Step,
    Until,
    run_schedule,
)
from chaos.sut.loomcycle.ports import scenario_run, started_runs
from chaos.sut.loomcycle.signatures import (
    LC002_INVARIANTS,
    assert_lc002_signature,
    last_stops,
)
from chaos.sut.loomcycle.specs import CRASH_SPEC, SMOKE_SPEC
from chaos.verdict import AssertVerdicts, Verdict
from chaos.wait import WaitTimeout, eventually
from chaos.workload import RunResult

pytestmark = [pytest.mark.chaos, pytest.mark.asyncio(loop_scope="session")]

#: ~10 s runs, 6 users x cap 4 = 24 at once: the load outlasts the fault's first minute.
RUNS, USERS = 96, 6
#: The victim must own at least this many running runs when the fault hits.
MIN_OWNED = 2
#: "Graceful shutdown deletes the replica's row and stops within ~5 s" (CONTRACT.md), plus
#: the database-vs-suite clock slack.
GRACEFUL_ROW_BOUND_S = 5.0 + 1.0
#: This scenario sends no cancel, so there is no cancel answer to classify.
NO_CANCELS = "cancel_classification"
#: bounded_recovery times reaps after kills and cancel acks; without either it has nothing.
NO_KILL_NO_CANCEL = "bounded_recovery"


def background_load(
    cluster: Any, history: History, prefix: str, label: str
) -> AbstractAsyncContextManager[asyncio.Task[list[RunResult]]]:
    """The load through the LB while the block runs; awaited (or cancelled) on the way out."""
    reqs = load_requests(prefix, label, RUNS, USERS)
    return started_runs(cluster, history, reqs, poll_timeout_s=15.0)


async def victim_owning_runs(run: ScenarioRun, victim: str) -> list[RunRow]:
    snap = await run.wait_for(
        lambda s: len(owned_running(s, victim)) >= MIN_OWNED,
        what=f"{victim} to own {MIN_OWNED} running runs",
        timeout=60,
    )
    return owned_running(snap, victim)


#: The kill lands at a moment drawn from this range (s) after the victim owns MIN_OWNED runs.
KILL_AFTER_S = (2.0, 6.0)
#: Slack over the waits each step already bounds itself (docker calls, probes' own time).
STEP_SLACK_S = 60.0
#: victim_owning_runs waits this long for the victim to own MIN_OWNED running runs.
OWNED_WAIT_S = 60.0
#: The load drains at quiescence: 96 runs of ~10 s, 24 at once, some caught by the kill.
LOAD_DRAIN_S = 300.0


def replica_fault_schedule(
    seed: int,
    replicas: Sequence[str],
    kind: str,
    after_s: tuple[float, float],
    fault_timeout_s: float,
    gate: str | None = None,
) -> Schedule:
    """Load; once a random victim owns MIN_OWNED running runs, inject ``kind`` on it at a
    moment drawn from ``after_s``; optionally wait on ``gate`` while it is in force; heal
    (the replica back under the same id, rejoined); quiesce (the load drains).  Victim
    and moment come from the seed."""
    held = [Until(gate, target=Chosen("victim"), timeout_s=fault_timeout_s)] if gate else []
    return Schedule.build(
        seed,
        [
            Choose("victim", replicas),
            Load(),
            Until("victim_owns_runs", target=Chosen("victim"), timeout_s=OWNED_WAIT_S + 30),
            At(after_s, Fault(kind, Chosen("victim"), timeout_s=fault_timeout_s)),
            *held,
            Heal(timeout_s=2 * REJOIN_TIMEOUT_S + STEP_SLACK_S),
            Quiesce(timeout_s=LOAD_DRAIN_S),
        ],
    )


def kill_schedule(seed: int, replicas: Sequence[str], params: CheckParams) -> Schedule:
    """SIGKILL; the kill's effect proof is the reap, so its heal follows at once."""
    return replica_fault_schedule(
        seed, replicas, FAULT_KILL, KILL_AFTER_S, reap_wait_s(params) + STEP_SLACK_S
    )


@asynccontextmanager
async def in_force(
    cluster: Any, victim: str, fault: ChaosFault, history: History
) -> AsyncIterator[None]:
    """``fault`` injected and proven; leaving heals it and waits until the victim rejoined.
    A fault whose effect was never proven was healed by ``injected``: it rejoins all the same."""
    try:
        async with injected(fault, history):
            yield
    except FaultNotProven:
        await rejoin(cluster, victim)
        raise
    await rejoin(cluster, victim)


async def run_replica_fault(
    run: ScenarioRun,
    cluster: Any,
    history: History,
    prefix: str,
    schedule: Schedule,
    make_fault: Callable[[str], Awaitable[ChaosFault]],
    gates: Mapping[str, Callable[[str], Awaitable[None]]] | None = None,
) -> tuple[str, list[RunRow], ScheduleRun]:
    """Run a :func:`replica_fault_schedule` under ``run``: the victim, the runs it owned
    when the fault hit, and what the schedule did (recorded as the note ``schedule``)."""
    victim = schedule.bindings["victim"]
    kind = next(s.op for s in schedule.steps if s.kind == "fault")
    owned: list[RunRow] = []

    async def load(step: Step) -> Opened:
        return background_load(cluster, history, prefix, kind)

    async def victim_owns_runs(step: Step) -> None:
        await victim_owning_runs(run, victim)

    async def fault(step: Step) -> Opened:
        # The runs it owns at the fault (it owned MIN_OWNED a few seconds ago).
        owned.extend(owned_running(await run.sample(), victim))
        return in_force(cluster, victim, await make_fault(victim), history)

    def gate_action(wait: Callable[[str], Awaitable[None]]) -> Callable[[Step], Awaitable[None]]:
        async def action(step: Step) -> None:
            await wait(victim)

        return action

    actions: dict[str, Any] = {"load": load, "victim_owns_runs": victim_owns_runs, kind: fault}
    actions.update({name: gate_action(wait) for name, wait in (gates or {}).items()})
    ran = await run_schedule(schedule, actions, history=history, tolerate=(FaultNotProven,))
    return victim, owned, ran


async def test_kill_replica_owning_runs(
    chaos_cluster_for: Callable[..., Awaitable[Any]],
    chaos_history: History,
    chaos_prefix: str,
    chaos_seed: int,
    chaos_verdicts: AssertVerdicts,
) -> None:
    cluster = await chaos_cluster_for(CRASH_SPEC)
    async with scenario_run(cluster, chaos_history, chaos_prefix) as run:
        schedule = kill_schedule(chaos_seed, cluster.replica_ids, run.params)
        victim, owned, ran = await run_replica_fault(
            run,
            cluster,
            chaos_history,
            chaos_prefix,
            schedule,
            lambda victim: kill_replica(cluster, victim, run.params),
        )
        # judged below, after the checkers had their say
        effect_missing = next(iter(ran.tolerated), None)
        convergence = await run.converge()

    ctx = run.context()
    window = only_window(chaos_history, FAULT_KILL, victim)
    final = {r.run_id: r for r in final_rows(ctx)}
    reaped = [r for r in owned if (f := final.get(r.run_id)) and f.stop_reason == "replica_died"]
    assert reaped, (
        f"none of {victim}'s runs at the kill was reaped: {[final.get(r.run_id) for r in owned]}"
    )
    survivors_runs = [r for r in final.values() if r.replica_id != victim]
    assert survivors_runs and all(r.status == "completed" for r in survivors_runs), [
        r for r in survivors_runs if r.status != "completed"
    ][:5]
    assert replica_row_deleted_after(ctx, victim, window.start_wall) is not None
    # LC-003 (a killed replica's runs that held a slot but had no row yet leak it) is
    # reproduced by test_finding_kill_queued.py; here no_quota_leaks may fail only with
    # its signature, and every other invariant must pass.
    verdicts = run.verdicts(allow_vacuous=[NO_CANCELS])
    known = [v for v in verdicts if v.invariant == "no_quota_leaks" and not v.ok]
    for v in known:
        assert_lc003_signature(v, ctx, window)
    if not known:
        assert sum(q.active_count for q in convergence.final.quotas) == 0
    chaos_verdicts([v for v in verdicts if v not in known], known=known)
    assert effect_missing is None, f"the kill's effect was never proven: {effect_missing}"


#: A request in flight to the victim when it died answers within this of the kill.
KILL_ANSWER_WINDOW_S = 5.0


def assert_lc003_signature(verdict: Verdict, ctx: Any, kill: Any) -> None:
    """The quota failure is LC-003's: each user left holding slots at quiescence had a
    start that died with the victim before the client learned a run id (a codeless 5xx
    from nginx, or a stream broken before its ``agent`` frame) and has no row for it;
    and no sample ever fell below the runs surely holding a slot."""
    ev = verdict.evidence
    below = [b for b in ev.get("out_of_bounds") or [] if "below" in str(b.get("why"))]
    assert not below, f"no_quota_leaks failed below its lower bound, not as LC-003: {below[:3]}"
    leftover = ev.get("quiescence") or []
    assert leftover, f"no_quota_leaks failed, not at quiescence: {ev}"
    for item in leftover:
        user = item["user_id"]
        died_with_the_victim = [
            c
            for c in ctx.client_runs
            if c.user_id == user
            and c.run_id is None
            and (c.maybe_admitted or c.outcome == "info")
            and c.end is not None
            and kill.start <= c.end <= kill.start + KILL_ANSWER_WINDOW_S
            and ctx.row_for(c) is None
        ]
        assert len(died_with_the_victim) >= item["active_count"] - item["running_runs"], (
            f"{user} holds {item['active_count']} slots at quiescence, but only "
            f"{len(died_with_the_victim)} of its starts died with the victim: not LC-003"
        )


#: The SIGTERM lands at a moment drawn from this range (s) after the victim owns MIN_OWNED
#: runs: early in their ~10 s, so that some outlast the 5 s drain (LC-002's case).
STOP_AFTER_S = (0.5, 2.0)
#: The freeze lands at a moment drawn from this range (s) after the victim owns its runs.
FREEZE_AFTER_S = (1.0, 4.0)


async def graceful_stop_under_load(
    cluster: Any, history: History, prefix: str, seed: int
) -> tuple[ScenarioRun, str, Any]:
    """SIGTERM of a seeded victim owning runs, under load, healed; then converge.  Asserts
    what the stop must cause whatever the runs' length: the row gone within the bound, a
    SIGTERM that sufficed (no SIGKILL), the effect proven.  Returns the run, the victim
    and the convergence."""
    async with scenario_run(cluster, history, prefix) as run:
        # Effect proven when the survivors stop listing it: its own row deletion.
        schedule = replica_fault_schedule(
            seed, cluster.replica_ids, FAULT_STOP, STOP_AFTER_S, STEP_SLACK_S
        )
        victim, _, ran = await run_replica_fault(
            run, cluster, history, prefix, schedule, lambda v: stop_replica(cluster, v)
        )
        convergence = await run.converge()

    ctx = run.context()
    window = only_window(history, FAULT_STOP, victim)
    deleted = replica_row_deleted_after(ctx, victim, window.start_wall)
    assert deleted is not None and deleted <= GRACEFUL_ROW_BOUND_S, (
        f"{victim}'s row deleted {deleted}s after SIGTERM (bound {GRACEFUL_ROW_BOUND_S}s)"
    )
    # The effect record's container state (the window's data is overwritten by the heal's).
    effect = next(r for r in history.records if r.type == "fault" and r.data["phase"] == "effect")
    assert effect.data["container"]["exit_code"] != 137, "SIGTERM was not enough: SIGKILLed"
    assert not ran.tolerated, f"the stop's effect was never proven: {ran.tolerated}"
    return run, victim, convergence


async def test_graceful_stop_replica_owning_runs(
    chaos_cluster_for: Callable[..., Awaitable[Any]],
    chaos_history: History,
    chaos_prefix: str,
    chaos_seed: int,
    chaos_verdicts: AssertVerdicts,
) -> None:
    cluster = await chaos_cluster_for(CRASH_SPEC)
    run, victim, convergence = await graceful_stop_under_load(
        cluster, chaos_history, chaos_prefix, chaos_seed
    )
    # The in-flight runs' ends are judged against the table by stop_reason_fits_cause.
    # LC-002 (runs longer than the 5 s drain are abandoned: zombies, slots held) is
    # reproduced by test_finding_graceful_stop.py; here every other invariant must pass,
    # and the two it breaks may fail only with that finding's signature.
    verdicts = run.verdicts(allow_vacuous=[NO_CANCELS, NO_KILL_NO_CANCEL])
    known = [v for v in verdicts if v.invariant in LC002_INVARIANTS and not v.ok]
    stops = last_stops(chaos_history.fault_windows())
    assert list(stops) == [victim], stops
    for v in known:
        assert_lc002_signature(v, stops, convergence.final, run.context().params)
    chaos_verdicts([v for v in verdicts if v not in known], known=known)


async def test_graceful_stop_with_every_run_inside_the_drain(
    chaos_cluster_for: Callable[..., Awaitable[Any]],
    chaos_history: History,
    chaos_prefix: str,
    chaos_seed: int,
    chaos_verdicts: AssertVerdicts,
) -> None:
    """SIGTERM of a replica whose runs all last ~2 s, well inside its 5 s drain: the stop
    must let them finish, so every invariant passes with nothing excused (LC-002 is about
    runs longer than the drain).  A drain cut short (planted defect 08: the timeout read
    in milliseconds) abandons these runs, and no_zombies / no_quota_leaks fail."""
    cluster = await chaos_cluster_for(SMOKE_SPEC)
    run, _, _ = await graceful_stop_under_load(cluster, chaos_history, chaos_prefix, chaos_seed)
    chaos_verdicts(run.verdicts(allow_vacuous=[NO_CANCELS, NO_KILL_NO_CANCEL]))


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_freeze_replica_past_the_stale_threshold(
    chaos_cluster_for: Callable[..., Awaitable[Any]],
    chaos_history: History,
    chaos_prefix: str,
    chaos_seed: int,
    chaos_verdicts: AssertVerdicts,
) -> None:
    """A frozen replica is alive, but past the stale threshold the survivors reap it.

    The contract lets that happen (the stale threshold is the operator's bet), and
    a deliberate reap of a live owner may break exactly two invariants, argued
    from loomcycle v1.59.0's source:

    * ``one_truth``: the sweeper marks the frozen owner's runs failed /
      ``replica_died`` (replicas_sweeper.go:183-195); thawed, those runs go on and
      their clients get ``done``, while the owner's own FinishRun is guarded by
      ``status='running'`` and changes nothing: a client saw ``done`` for a row
      that says failed, and a replica never killed or stopped was reaped;
    * ``no_quota_leaks``: the sweeper gives the runs' slots back (reapQuotas),
      and the thawed handlers give them back again through ``defer release()``
      (server.go:3848, semaphore.go:338-419): a user's count can drop below the
      runs that surely hold one.

    Both may fail only for the frozen victim's runs and users.  Every other
    invariant (no zombies, a stop reason that fits, terminal rows final,
    nothing lost, no silent regression, bounded recovery, load spread) must
    pass: a failure there is a finding of its own.
    """
    cluster = await chaos_cluster_for(CRASH_SPEC)
    async with scenario_run(cluster, chaos_history, chaos_prefix) as run:

        async def reaped_while_frozen(victim: str) -> None:
            listed = survivors_list(cluster, victim)

            async def gone_from_survivors() -> bool:
                return not await listed()

            try:
                await eventually(
                    gone_from_survivors,
                    what=f"the survivors to reap frozen {victim}",
                    timeout=reap_wait_s(run.params),
                    interval=1.0,
                )
            except WaitTimeout as exc:
                chaos_history.note("freeze_not_reaped", replica=victim, wait=str(exc)[:300])

        schedule = replica_fault_schedule(
            chaos_seed,
            cluster.replica_ids,
            FAULT_PAUSE,
            FREEZE_AFTER_S,
            reap_wait_s(run.params) + STEP_SLACK_S,
            gate="reaped_while_frozen",
        )
        # Unpaused, it heartbeats its row back within one ticker period (the heal's rejoin).
        victim, _, _ = await run_replica_fault(
            run,
            cluster,
            chaos_history,
            chaos_prefix,
            schedule,
            lambda victim: freeze_replica(cluster, victim),
            gates={"reaped_while_frozen": reaped_while_frozen},
        )
        await run.converge()

    assert only_window(chaos_history, FAULT_PAUSE, victim).heal_proven
    verdicts = run.verdicts(allow_vacuous=[NO_CANCELS, NO_KILL_NO_CANCEL])
    ctx = run.context()
    victims_users = {r.user_id for r in final_rows(ctx) if r.replica_id == victim}
    excused = [v for v in verdicts if v.invariant in LIVE_REAP_INVARIANTS and not v.ok]
    for v in excused:
        assert_only_the_victim(v, victim, victims_users)
    chaos_history.note("excused_by_design", verdicts=[v.to_dict() for v in excused])
    chaos_verdicts([v for v in verdicts if v not in excused])


#: What a deliberate reap of a live (frozen) owner may break (see the freeze test).
LIVE_REAP_INVARIANTS = ("one_truth", "no_quota_leaks")


def assert_only_the_victim(verdict: Verdict, victim: str, users: set[str | None]) -> None:
    """Every offender the verdict names is the frozen victim's run or one of its users."""
    text = json.dumps(verdict.evidence, default=str)
    offenders = [
        item
        for key in ("client_db_mismatch", "reaped_live_owner", "out_of_bounds", "quiescence")
        for item in verdict.evidence.get(key) or []
        if isinstance(item, dict)
    ]
    assert offenders, f"{verdict.invariant} failed without offenders to attribute: {text[:500]}"
    for item in offenders:
        replica = item.get("replica_id")
        user = item.get("user_id")
        assert replica in (None, victim) and (user is None or user in users), (
            f"{verdict.invariant} offender not the frozen {victim}'s: {item}"
        )
