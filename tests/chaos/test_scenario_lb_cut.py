"""Issue 10, scenario 5: the load balancer cut from one replica under load, then healed.

nginx reaches replica ``rN`` only through Toxiproxy proxy ``lb_rN``
(``chaos/cluster/nginx.conf.template``); the cut disables that proxy
(:class:`~chaos.faults.ResetCut`, proven through the proxy's own port): every
connection through it is closed and new ones are refused.  The replica itself
stays up, keeps its Postgres link and its heartbeat, so nothing may be reaped.

What the cut must cause, read from the target (loomcycle v1.59.0) and the LB:

* the victim's in-flight runs: their SSE streams ran through the cut proxy, so
  nginx loses its upstream and breaks the client's stream, and the replica sees
  its request's connection closed.  A non-interactive run's context derives
  from the request's (``internal/api/http/server.go:3939-3943``), so the run
  ends ``cancelled / client disconnected`` (``server.go:7267-7273``), unless it
  had already finished; stop_reason_fits_cause accepts that end only for a run
  whose owner had an ``lb`` link fault during the run;
* new runs: nginx's connect to ``lb_rN`` is refused before the request is sent,
  so nginx passes the POST to the next upstream (``proxy_next_upstream error``,
  nginx's default) and marks the victim failed for ``fail_timeout`` (10 s): no
  run started during the cut lands on the victim;
* after the heal nginx tries the victim again once ``fail_timeout`` passed, and
  new runs reach it (load spread).

Then every invariant, none excused.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest
from test_scenario_crash import (
    OWNED_WAIT_S,
    STEP_SLACK_S,
    background_load,
    victim_owning_runs,
)

from chaos.faults import injected
from chaos.record.history import History
from chaos.record.vocabulary import RunRow
from chaos.scenario.evidence import final_rows, only_window, owned_running
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
    Step,
    Until,
    run_schedule,
)
from chaos.sut.loomcycle.ports import scenario_run
from chaos.sut.loomcycle.specs import CRASH_SPEC
from chaos.testing.outside_sabotage import link_cut
from chaos.verdict import Verdict

pytestmark = [pytest.mark.chaos, pytest.mark.asyncio(loop_scope="session")]

#: The fault's history name (:class:`~chaos.faults.ResetCut` on an ``lb`` link).
LB_CUT = "link:reset_cut"
#: The cut lands at a moment drawn from this range (s) after the victim owns its runs.
CUT_AFTER_S = (1.0, 3.0)
#: Runs started during the cut that must land on the other replicas before the heal.
NEW_DURING_CUT = 6
#: The cut is held this long (drawn, s) after the others took those runs: the victim's
#: runs end at once (their streams break), so without a hold the cut would last less
#: than a second, shorter than nginx's view of a failed upstream.
HOLD_CUT_S = (5.0, 8.0)
#: nginx's default ``fail_timeout`` (10 s) before it tries a failed upstream again, plus
#: a 10 s run of the load to free a per-user slot, plus slack.
SERVES_AGAIN_S = 60.0
#: The others take new runs as the cut victim's runs end and free their users' slots.
OTHERS_TAKE_S = 60.0
#: 120 runs of ~10 s, 24 at once: about a minute of load, outlasting the cut and the
#: victim's return to rotation.
RUNS, USERS = 120, 6
LOAD_DRAIN_S = 300.0
#: This scenario sends no cancel, so there is no cancel answer to classify.
NO_CANCELS = "cancel_classification"
#: bounded_recovery times reaps after kills and cancel acks; a link cut causes neither.
NO_KILL_NO_CANCEL = "bounded_recovery"


def lb_cut_schedule(seed: int, replicas: Sequence[str]) -> Schedule:
    """Load; once a seeded victim owns running runs, cut nginx from it; wait until new
    runs landed elsewhere; heal; wait until the victim serves new runs; quiesce."""
    return Schedule.build(
        seed,
        [
            Choose("victim", replicas),
            Load(),
            Until("victim_owns_runs", target=Chosen("victim"), timeout_s=OWNED_WAIT_S + 30),
            At(CUT_AFTER_S, Fault(LB_CUT, Chosen("victim"), timeout_s=STEP_SLACK_S)),
            Until("others_take_new_runs", target=Chosen("victim"), timeout_s=OTHERS_TAKE_S + 10),
            At(HOLD_CUT_S, Heal(timeout_s=STEP_SLACK_S)),
            Until("victim_serves_again", target=Chosen("victim"), timeout_s=SERVES_AGAIN_S + 10),
            Quiesce(timeout_s=LOAD_DRAIN_S),
        ],
    )


def started_between(rows: Sequence[RunRow], lo: float, hi: float) -> list[RunRow]:
    """Rows whose ``started_at`` (DB clock, epoch s) lies in [lo, hi]."""
    return [r for r in rows if r.started_at is not None and lo <= r.started_at <= hi]


def phase_wall(history: History, name: str, target: str, phase: str) -> float:
    """Wall time of the one ``phase`` record of fault ``name`` on ``target``."""
    [rec] = [
        r
        for r in history.records
        if r.type == "fault" and r.op == name and r.key == target and r.data.get("phase") == phase
    ]
    return rec.wall


async def test_lb_cut_from_one_replica_under_load(
    chaos_cluster_for: Callable[..., Awaitable[Any]],
    chaos_history: History,
    chaos_prefix: str,
    chaos_seed: int,
    chaos_verdicts: Callable[[Sequence[Verdict]], None],
) -> None:
    cluster = await chaos_cluster_for(CRASH_SPEC)
    schedule = lb_cut_schedule(chaos_seed, cluster.replica_ids)
    victim = schedule.bindings["victim"]
    link = f"lb:{victim}"
    owned: list[RunRow] = []
    marks: dict[str, float] = {}

    async with scenario_run(cluster, chaos_history, chaos_prefix) as run:

        async def load(step: Step) -> Opened:
            return background_load(cluster, chaos_history, chaos_prefix, "lbcut")

        async def victim_owns_runs(step: Step) -> None:
            await victim_owning_runs(run, victim)

        async def cut(step: Step) -> Opened:
            owned.extend(owned_running(await run.sample(), victim))
            return injected(link_cut(cluster, "lb", victim), chaos_history)

        async def others_take_new_runs(step: Step) -> None:
            marks["cut_proven"] = since = time.time()
            await run.wait_for(
                lambda s: (
                    len([r for r in started_between(s.runs, since, 2e9) if r.replica_id != victim])
                    >= NEW_DURING_CUT
                ),
                what=f"{NEW_DURING_CUT} runs started on the others while {link} is cut",
                timeout=OTHERS_TAKE_S,
            )

        async def victim_serves_again(step: Step) -> None:
            marks["healed"] = since = time.time()
            await run.wait_for(
                lambda s: [
                    r for r in started_between(s.runs, since, 2e9) if r.replica_id == victim
                ],
                what=f"a run started through the load balancer on {victim} after the heal",
                timeout=SERVES_AGAIN_S,
            )

        actions: dict[str, Any] = {
            "load": load,
            "victim_owns_runs": victim_owns_runs,
            LB_CUT: cut,
            "others_take_new_runs": others_take_new_runs,
            "victim_serves_again": victim_serves_again,
        }
        await run_schedule(schedule, actions, history=chaos_history)
        await run.converge()

    window = only_window(chaos_history, LB_CUT, link)
    assert window.effect_proven and window.heal_proven, window
    assert window.data.get("replica") == victim, window.data
    ctx = run.context()
    rows = final_rows(ctx)
    # The victim had runs in flight through the cut link.
    assert owned, f"{victim} owned no running run when {link} was cut"
    # Nothing reaped: the victim never stopped heartbeating (its Postgres link is intact).
    assert not [r for r in rows if r.stop_reason == ctx.params.terminal.replica_died]
    # No run started while the link was cut landed on the victim, and the others took some
    # (the database and the suite read the same host clock: no slack widens the window).
    cut_from = phase_wall(chaos_history, LB_CUT, link, "effect")
    cut_to = phase_wall(chaos_history, LB_CUT, link, "heal")
    during = started_between(rows, cut_from, cut_to)
    assert len(during) >= NEW_DURING_CUT, (len(during), cut_from, cut_to)
    assert all(r.replica_id != victim for r in during), [
        r for r in during if r.replica_id == victim
    ]
    # After the heal the load balancer sends runs to the victim again.
    back = [r for r in started_between(rows, marks["healed"], 2e9) if r.replica_id == victim]
    assert back, f"no run reached {victim} after the heal"
    # Every run in flight on the victim at the cut ended as the cut allows: its client's
    # stream broke (cancelled / client disconnected) or it had finished (completed).
    final = {r.run_id: r for r in rows}
    ends = {r.run_id: (final[r.run_id].status, final[r.run_id].stop_reason) for r in owned}
    allowed = {
        ("cancelled", ctx.params.terminal.client_disconnected),
        *(("completed", reason) for reason in ctx.params.completed_stop_reasons),
    }
    assert set(ends.values()) <= allowed, ends
    broken = [e for e in ends.values() if e[0] == "cancelled"]
    assert broken, f"the cut broke none of {victim}'s streams: {ends}"
    chaos_history.note("lb_cut_owned_ends", victim=victim, ends=ends)
    chaos_verdicts(run.verdicts(allow_vacuous=[NO_CANCELS, NO_KILL_NO_CANCEL]))
