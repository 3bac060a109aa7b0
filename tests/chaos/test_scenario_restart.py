"""Issue 10, scenarios 7 and 8: replicas restarted under load.

7. A graceful rolling restart of every replica (SIGTERM, back and rejoined, the
   next one), with runs that end inside the 5 s shutdown drain and runs that
   outlast it.  loomcycle v1.59.0 drains the HTTP server for 5 s
   (``cmd/loomcycle/main.go:3310-3331``): a run that ends inside it finishes and
   must end ``completed``; a longer one is abandoned, which is LC-002
   (``docs/findings/LC-002.md``): it may break no_zombies / no_quota_leaks with
   that finding's signature only, every other invariant must pass.

8. A replica SIGKILLed and restarted well within the stale threshold, once
   under the same id and once under a new id, sharing one reap window (two
   victims, evidence attributed by replica id):

   * new id: the old id's ``replicas`` row stops being refreshed, so the
     survivors' sweeper reaps it within stale + sweep
     (``internal/coord/replicas_sweeper.go:141-144``, ``:180-220``): its runs end
     ``failed / replica_died`` and their slots are given back; the new id
     registers on boot (``internal/coord/replica_store.go:169-174``) and serves
     load.  No live replica may lose its row (the trap of planted defect 09:
     the suite gives every replica a hostname that differs from its id).
   * same id: the restarted process's first heartbeat upserts the dead
     incarnation's row (``replica_store.go:47-51``: ``ON CONFLICT (id) DO UPDATE
     SET last_heartbeat_at = now()``, ``started_at`` kept), so the row never goes
     stale and the sweeper, which reaps only stale rows and marks runs failed
     only while reaping (``replicas_sweeper.go:141-144``, ``:182-190``), never
     touches the dead incarnation's runs.  Nothing at boot reconciles the
     replica's own ``running`` rows (``cmd/loomcycle/main.go:2385-2414`` only
     starts the heartbeat).  They stay ``running`` with an owner that does not
     serve them until the per-run heartbeat sweeper (``heartbeat_stale``,
     180 s here) marks them ``failed / heartbeat_timeout``
     (``internal/store/postgres/postgres.go:1736-1760``), which gives no quota
     slot back.  So past the documented reap bound no_zombies and
     bounded_recovery fail for exactly the dead incarnation's runs and row
     (see :func:`assert_same_id_signature`); every other invariant must pass.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
from test_scenario_crash import (
    GRACEFUL_ROW_BOUND_S,
    KILL_ANSWER_WINDOW_S,
    MIN_OWNED,
    NO_CANCELS,
    NO_KILL_NO_CANCEL,
    OWNED_WAIT_S,
    STEP_SLACK_S,
    in_force,
)

from chaos.checks.context import CheckContext
from chaos.faults import injected
from chaos.faults.replica import REJOIN_TIMEOUT_S, kill_rejoin
from chaos.record.history import FaultWindow, History
from chaos.record.vocabulary import FAULT_KILL, FAULT_STOP, RunRow, Snapshot
from chaos.scenario import stop_replica
from chaos.scenario.evidence import (
    final_rows,
    only_window,
    owned_running,
    replica_row_deleted_after,
)
from chaos.scenario.steps import load_requests
from chaos.schedule import (
    After,
    At,
    Choose,
    Chosen,
    Fault,
    Heal,
    Item,
    Load,
    Opened,
    Quiesce,
    Schedule,
    Step,
    Until,
    run_schedule,
)
from chaos.sut.loomcycle.ports import scenario_run, started_runs
from chaos.sut.loomcycle.settings import with_settings
from chaos.sut.loomcycle.signatures import LC002_INVARIANTS, assert_lc002_signature
from chaos.sut.loomcycle.specs import CRASH_SPEC
from chaos.verdict import AssertVerdicts, Verdict

pytestmark = [pytest.mark.chaos, pytest.mark.asyncio(loop_scope="session")]

USERS = 6
#: The load drains at quiescence (runs of ~10 s, 24 at once).
LOAD_DRAIN_S = 300.0
#: CRASH_SPEC's runs: mock latency 10 s plus a jitter in [0, 1 s) (the mock adds a
#: uniform [0, jitter) draw, internal/providers/mock/driver.go:262-269), plus the
#: run's own bookkeeping: measured 10.0 to 11.2 s from ``started_at`` to ``completed_at``.
RUN_MIN_S, RUN_MAX_S = 10.0, 11.5
#: The 5 s HTTP drain of a graceful stop (cmd/loomcycle/main.go:3329-3331).
DRAIN_S = 5.0


def load_of(
    cluster: Any, history: History, prefix: str, label: str, runs: int
) -> AbstractAsyncContextManager[Any]:
    """``runs`` runs of USERS users through the LB while the block runs (awaited on exit)."""
    reqs = load_requests(prefix, label, runs, USERS)
    return started_runs(cluster, history, reqs, poll_timeout_s=15.0)


# ----------------------------------------------------------------------------- 7


#: The rolling restart's load: ~10 s runs, 24 at once, for about 80 s, outlasting three
#: stop / restart / rejoin cycles (~15 s each) and the gates between them.
ROLLING_RUNS = 192
#: A run this old (s) at the SIGTERM ends inside the drain (RUN_MAX_S - DRAIN_S, plus the
#: clock slack between the database and the suite); one this young outlasts it.
ENDS_INSIDE_AGE_S = RUN_MAX_S - DRAIN_S + 1.0
OUTLASTS_AGE_S = RUN_MIN_S - DRAIN_S - 1.0
#: Each stop waits for the victim to own a run of the kind its gate names.
GATE_S = 60.0
#: The SIGTERM follows its gate at a moment drawn from this range (s).
STOP_AFTER_S = (0.0, 0.3)


def ages(snap: Snapshot, replica: str, now: float) -> list[float]:
    return [now - r.started_at for r in owned_running(snap, replica) if r.started_at is not None]


def owns_ending_run(replica: str) -> Callable[[Snapshot], bool]:
    """The replica owns a run old enough to end inside a drain that starts now, and
    MIN_OWNED runs in all."""

    def holds(snap: Snapshot) -> bool:
        seen = ages(snap, replica, time.time())
        young_enough = RUN_MIN_S - 0.5
        return len(seen) >= MIN_OWNED and any(ENDS_INSIDE_AGE_S <= a < young_enough for a in seen)

    return holds


def owns_fresh_run(replica: str) -> Callable[[Snapshot], bool]:
    """The replica owns a run young enough to outlast a drain that starts now."""

    def holds(snap: Snapshot) -> bool:
        seen = ages(snap, replica, time.time())
        return len(seen) >= MIN_OWNED and any(a <= OUTLASTS_AGE_S - 1.0 for a in seen)

    return holds


#: Gate per position in the rolling order: an ending run first, a fresh one second, so
#: both kinds surely meet a drain; the third stop takes whatever it owns.
ROLLING_GATES = ("owns_ending_run", "owns_fresh_run", "owns_runs")


def rolling_schedule(seed: int, replicas: Sequence[str]) -> Schedule:
    """Load; for each replica in turn: wait for its gate, SIGTERM, restart, rejoin."""
    items: list[Item] = [Load()]
    for n, rid in enumerate(replicas):
        gate = ROLLING_GATES[min(n, len(ROLLING_GATES) - 1)]
        items += [
            Until(gate, target=rid, timeout_s=GATE_S + 10),
            At(STOP_AFTER_S, Fault(FAULT_STOP, rid, timeout_s=STEP_SLACK_S)),
            Heal(timeout_s=2 * REJOIN_TIMEOUT_S + STEP_SLACK_S),
        ]
    items.append(Quiesce(timeout_s=LOAD_DRAIN_S))
    return Schedule.build(seed, items)


def drain_classes(
    rows: Sequence[RunRow], stops: dict[str, float], slack: float
) -> tuple[list[RunRow], list[RunRow]]:
    """The stopped replicas' runs running at their SIGTERM: those that surely end inside
    the drain, and those that surely outlast it (the ambiguous middle is left out)."""
    inside: list[RunRow] = []
    outlast: list[RunRow] = []
    for row in rows:
        stop = stops.get(row.replica_id or "")
        if stop is None or row.started_at is None or row.started_at > stop:
            continue
        if row.completed_at is not None and row.completed_at < stop - slack:
            continue  # ended before its owner was stopped
        if row.started_at + RUN_MAX_S <= stop + DRAIN_S - slack:
            inside.append(row)
        elif row.started_at + RUN_MIN_S >= stop + DRAIN_S + slack:
            outlast.append(row)
    return inside, outlast


async def test_rolling_restart_of_every_replica_under_load(
    chaos_cluster_for: Callable[..., Awaitable[Any]],
    chaos_history: History,
    chaos_prefix: str,
    chaos_seed: int,
    chaos_verdicts: AssertVerdicts,
) -> None:
    cluster = await chaos_cluster_for(CRASH_SPEC)
    schedule = rolling_schedule(chaos_seed, cluster.replica_ids)
    async with scenario_run(cluster, chaos_history, chaos_prefix) as run:

        def gate(make: Callable[[str], Callable[[Snapshot], bool]], what: str) -> Any:
            async def action(step: Step) -> None:
                rid = step.target or ""
                await run.wait_for(make(rid), what=f"{rid} to own {what}", timeout=GATE_S)

            return action

        async def load(step: Step) -> Opened:
            return load_of(cluster, chaos_history, chaos_prefix, "rolling", ROLLING_RUNS)

        async def stop(step: Step) -> Opened:
            rid = step.target or ""
            return in_force(cluster, rid, await stop_replica(cluster, rid), chaos_history)

        actions: dict[str, Any] = {
            "load": load,
            FAULT_STOP: stop,
            "owns_ending_run": gate(owns_ending_run, "a run that ends inside the drain"),
            "owns_fresh_run": gate(owns_fresh_run, "a run that outlasts the drain"),
            "owns_runs": gate(
                lambda rid: lambda s: len(owned_running(s, rid)) >= MIN_OWNED,
                f"{MIN_OWNED} running runs",
            ),
        }
        ran = await run_schedule(schedule, actions, history=chaos_history)
        convergence = await run.converge()

    assert not ran.tolerated, ran.tolerated
    ctx = run.context()
    slack = ctx.params.clock_slack_s
    stops: dict[str, float] = {}
    for rid in cluster.replica_ids:
        window = only_window(chaos_history, FAULT_STOP, rid)
        assert window.effect_proven and window.heal_proven, window
        stops[rid] = window.start_wall
        deleted = replica_row_deleted_after(ctx, rid, window.start_wall)
        assert deleted is not None and deleted <= GRACEFUL_ROW_BOUND_S, (
            f"{rid}'s row deleted {deleted}s after SIGTERM (bound {GRACEFUL_ROW_BOUND_S}s)"
        )
    effects = [
        r
        for r in chaos_history.records
        if r.type == "fault" and r.op == FAULT_STOP and r.data.get("phase") == "effect"
    ]
    assert len(effects) == len(cluster.replica_ids)
    assert all(r.data["container"]["exit_code"] != 137 for r in effects), "SIGKILLed"
    # Runs that end inside the drain finish completed; both kinds met a drain.
    rows = final_rows(ctx)
    inside, outlast = drain_classes(rows, stops, slack)
    assert inside, "no run met a drain it could finish in"
    assert outlast, "no run met a drain it outlasts"
    reasons = set(ctx.params.completed_stop_reasons)
    not_done = [r for r in inside if not (r.status == "completed" and r.stop_reason in reasons)]
    assert not not_done, f"runs that end inside the drain did not complete: {not_done[:5]}"
    chaos_history.note(
        "rolling_drain_classes",
        inside=[r.run_id for r in inside],
        outlast={r.run_id: r.status for r in outlast},
    )
    verdicts = run.verdicts(allow_vacuous=[NO_CANCELS, NO_KILL_NO_CANCEL])
    known = [v for v in verdicts if v.invariant in LC002_INVARIANTS and not v.ok]
    for v in known:
        assert_lc002_signature(v, stops, convergence.final, ctx.params)
    chaos_verdicts([v for v in verdicts if v not in known], known=known)


# ----------------------------------------------------------------------------- 8


#: Its own cluster: the dead incarnation's runs of a same-id restart stay ``running``
#: until the per-run heartbeat sweeper (180 s), longer than a reset waits for the
#: cluster to be idle, and their users' slots are never given back.
REJOIN_SPEC = with_settings(CRASH_SPEC, destructive=True)
#: 120 runs of ~10 s, 24 at once (~50 s): the load outlasts the kills and the new id's first runs.
REJOIN_RUNS = 120
#: The kills land at a moment drawn from this range (s) after both victims own runs.
KILL_AFTER_S = (1.0, 3.0)
#: The restarts follow the kills this long after (s): well within the 60 s stale threshold.
RESTART_AFTER_S = (1.0, 3.0)
#: nginx's fail_timeout (10 s) after the victim's failures, a boot, a freed slot: generous.
NEW_ID_SERVES_S = 90.0
SAME, RENAMED = "kill_same_id", "kill_new_id"
#: What the same-id restart breaks (see the module docstring); every other invariant passes.
SAME_ID_INVARIANTS = ("no_zombies", "bounded_recovery", "no_quota_leaks")


def new_id_of(node: str) -> str:
    return f"{node}-new"


def victims_of(pair: str) -> tuple[str, str]:
    same, renamed = pair.split(">")
    return same, renamed


def rejoin_schedule(seed: int, replicas: Sequence[str]) -> Schedule:
    """Load; once both seeded victims own runs, SIGKILL both; restart one under its id
    and one under a new id; wait until the new id serves runs; quiesce."""
    pairs = [f"{a}>{b}" for a in replicas for b in replicas if a != b]
    return Schedule.build(
        seed,
        [
            Choose("victims", pairs),
            Load(),
            Until("both_own_runs", target=Chosen("victims"), timeout_s=OWNED_WAIT_S + 30),
            At(KILL_AFTER_S, Fault(SAME, Chosen("victims"), timeout_s=STEP_SLACK_S)),
            After(0.0, Fault(RENAMED, Chosen("victims"), timeout_s=STEP_SLACK_S)),
            After(RESTART_AFTER_S, Heal(SAME, timeout_s=REJOIN_TIMEOUT_S + STEP_SLACK_S)),
            Heal(RENAMED, timeout_s=REJOIN_TIMEOUT_S + STEP_SLACK_S),
            Until("new_id_serves", target=Chosen("victims"), timeout_s=NEW_ID_SERVES_S + 10),
            Quiesce(timeout_s=LOAD_DRAIN_S),
        ],
    )


def died_with(ctx: CheckContext, user: str, kills: Sequence[FaultWindow]) -> int:
    """The user's starts that died with a killed replica before learning a run id and
    left no row (LC-003's case: a slot taken, no row for the sweeper to count)."""
    return sum(
        1
        for c in ctx.client_runs
        if c.user_id == user
        and c.run_id is None
        and (c.maybe_admitted or c.outcome == "info")
        and c.end is not None
        and any(k.start <= c.end <= k.start + KILL_ANSWER_WINDOW_S for k in kills)
        and ctx.row_for(c) is None
    )


def assert_same_id_signature(
    verdict: Verdict,
    same: str,
    kill: FaultWindow,
    kills: Sequence[FaultWindow],
    ctx: CheckContext,
) -> None:
    """The failure is LC-006's (docs/findings/LC-006.md): only runs the dead incarnation of ``same``
    owned at its kill are left running (its live successor does not serve them), only
    that kill's runs and row are unreaped, and quota is held only for those runs (or
    for LC-003's slot-but-no-row starts that died with a killed replica)."""
    slack = ctx.params.clock_slack_s
    dead_incarnation = {
        r.run_id
        for r in final_rows(ctx)
        if r.replica_id == same
        and r.status == "running"
        and r.started_at is not None
        and r.started_at <= kill.start_wall + slack
    }
    ev = verdict.evidence
    if verdict.invariant == "no_zombies":
        zombies = ev.get("zombies") or []
        assert zombies and ev.get("zombie_count") == len(dead_incarnation), ev
        assert {z["run_id"] for z in zombies} <= dead_incarnation, zombies[:5]
        assert same in (ev.get("live_replicas") or []), ev.get("live_replicas")
    elif verdict.invariant == "bounded_recovery":
        offenders = ev.get("offenders") or []
        assert offenders and all(o.get("kill") == kill.describe() for o in offenders), offenders
        runs = [o["run_id"] for o in offenders if "run_id" in o]
        assert set(runs) <= dead_incarnation, runs
    else:  # no_quota_leaks
        below = [b for b in ev.get("out_of_bounds") or [] if "below" in str(b.get("why"))]
        assert not below, f"no_quota_leaks failed below its lower bound: {below[:3]}"
        running = Counter(
            r.user_id for r in final_rows(ctx) if r.run_id in dead_incarnation and r.user_id
        )
        for item in ev.get("quiescence") or []:
            user = item["user_id"]
            extra = item["active_count"] - item["running_runs"]
            assert extra <= died_with(ctx, user, kills), (item, running.get(user))
        for item in ev.get("out_of_bounds") or []:
            assert running.get(item["user_id"]), item


async def test_killed_replica_rejoins_under_same_and_new_id(
    chaos_cluster_for: Callable[..., Awaitable[Any]],
    chaos_history: History,
    chaos_prefix: str,
    chaos_seed: int,
    chaos_verdicts: AssertVerdicts,
) -> None:
    cluster = await chaos_cluster_for(REJOIN_SPEC)
    schedule = rejoin_schedule(chaos_seed, cluster.replica_ids)
    same, renamed = victims_of(schedule.bindings["victims"])
    new_id = new_id_of(renamed)
    owned: dict[str, list[RunRow]] = {}

    async with scenario_run(cluster, chaos_history, chaos_prefix) as run:

        async def load(step: Step) -> Opened:
            return load_of(cluster, chaos_history, chaos_prefix, "rejoin", REJOIN_RUNS)

        async def both_own_runs(step: Step) -> None:
            await run.wait_for(
                lambda s: all(len(owned_running(s, v)) >= MIN_OWNED for v in (same, renamed)),
                what=f"{same} and {renamed} to own {MIN_OWNED} running runs each",
                timeout=OWNED_WAIT_S,
            )

        def kill(victim: str, as_id: str) -> Callable[[Step], Awaitable[Opened]]:
            async def action(step: Step) -> Opened:
                owned[victim] = owned_running(await run.sample(), victim)
                return injected(await kill_rejoin(cluster, victim, as_id), chaos_history)

            return action

        async def new_id_serves(step: Step) -> None:
            await run.wait_for(
                lambda s: [r for r in s.runs if r.replica_id == new_id],
                what=f"a run through the load balancer on {renamed}'s successor {new_id}",
                timeout=NEW_ID_SERVES_S,
            )

        actions: dict[str, Any] = {
            "load": load,
            "both_own_runs": both_own_runs,
            SAME: kill(same, same),
            RENAMED: kill(renamed, new_id),
            "new_id_serves": new_id_serves,
        }
        await run_schedule(schedule, actions, history=chaos_history)
        await run.converge()

    ctx = run.context()
    params = ctx.params
    bound = params.reap_bound_s + params.reap_margin_s
    slack = params.clock_slack_s
    kill_same = only_window(chaos_history, FAULT_KILL, same)
    kill_renamed = only_window(chaos_history, FAULT_KILL, renamed)
    assert kill_same.heal_proven and kill_same.data["rejoin_as"] == same, kill_same
    assert kill_renamed.heal_proven and kill_renamed.data["rejoin_as"] == new_id, kill_renamed
    assert owned.get(same) and owned.get(renamed), owned
    snap = ctx.final_snapshot
    assert snap is not None
    final = {r.run_id: r for r in final_rows(ctx)}
    listed = {r.replica_id for r in snap.replicas}
    survivor = next(r for r in cluster.replica_ids if r not in (same, renamed))

    # 8(b): the old id is reaped within the bound and its runs marked replica_died; the
    # new id serves load; no live replica (the survivor, the same-id one, the new id)
    # ever loses its row.
    deleted = replica_row_deleted_after(ctx, renamed, kill_renamed.start_wall)
    assert deleted is not None and deleted <= bound, (renamed, deleted, bound)
    reaped = [r for r in owned[renamed] if final[r.run_id].stop_reason == "replica_died"]
    assert reaped, [final[r.run_id] for r in owned[renamed]]
    assert listed == {same, survivor, new_id}, listed
    assert [r for r in final.values() if r.replica_id == new_id], f"{new_id} served no run"
    for rid, since in ((survivor, kill_same.start_wall), (same, kill_same.start_wall)):
        assert replica_row_deleted_after(ctx, rid, since) is None, f"{rid}'s row was deleted"
    assert not [a for a in ctx.audit_rows("replicas", new_id) if a.action == "delete"]
    served_after = [
        r
        for r in final.values()
        if r.replica_id in (survivor, new_id)
        or (r.replica_id == same and (r.started_at or 0) > kill_same.start_wall + slack)
    ]
    assert served_after and all(r.status == "completed" for r in served_after), [
        r for r in served_after if r.status != "completed"
    ][:5]

    # 8(a): the dead incarnation's runs are still running past the reap bound, owned by
    # the restarted replica (which does not serve them), and its row was never reaped.
    assert snap.wall - kill_same.start_wall > bound, "judged before the reap bound"
    left = [r for r in owned[same] if final[r.run_id].status == "running"]
    assert left, [final[r.run_id] for r in owned[same]]
    assert replica_row_deleted_after(ctx, same, kill_same.start_wall) is None

    verdicts = run.verdicts(allow_vacuous=[NO_CANCELS])
    known = [v for v in verdicts if v.invariant in SAME_ID_INVARIANTS and not v.ok]
    assert {v.invariant for v in known} >= {"no_zombies", "bounded_recovery"}, known
    for v in known:
        assert_same_id_signature(v, same, kill_same, [kill_same, kill_renamed], ctx)
    chaos_verdicts([v for v in verdicts if v not in known], known=known)
