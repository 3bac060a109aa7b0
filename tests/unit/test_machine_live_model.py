"""The live machine's model: replica states, run deadlines and its per-step invariant.

Each check of :meth:`LiveModel.problems` has a failing and a passing case.
"""

from __future__ import annotations

import pytest

from chaos.machine.live.model import ACK_END_S, LiveModel, replica_for
from chaos.record.vocabulary import QuotaRow, ReplicaRow, RunRow, Snapshot

REPLICAS = ("r1", "r2", "r3")
REAP = 75.0


def model() -> LiveModel:
    m = LiveModel(REPLICAS, per_user_cap=4, reap_bound_s=REAP)
    m.started("p-a1", "p-u0", "lb")
    m.started("p-a2", "p-u0", "r2")
    return m


def row(
    agent: str, status: str = "running", replica: str = "r1", stop: str | None = None
) -> RunRow:
    return RunRow(
        run_id=f"run-{agent}",
        agent_id=agent,
        user_id="p-u0",
        replica_id=replica,
        status=status,
        stop_reason=stop,
        error=None,
        started_at=1.0,
        completed_at=None,
    )


def snap(*rows: RunRow, quotas: tuple[QuotaRow, ...] = ()) -> Snapshot:
    return Snapshot(mono=0.0, wall=0.0, runs=rows, quotas=quotas)


# -- replicas ------------------------------------------------------------------------------
def test_one_replica_out_at_a_time() -> None:
    m = model()
    assert m.may_take_down("r1")
    m.stopped("r1", 0.0)
    assert not m.may_take_down("r2")
    assert m.down() == ["r1"] and m.up() == ["r2", "r3"]


def test_a_killed_replica_restarts_only_once_reaped() -> None:
    m = model()
    m.killed("r1", 0.0, [])
    assert not m.may_restart("r1")
    with pytest.raises(ValueError, match="not restartable"):
        m.restarted("r1", 1.0)
    m.reaped("r1", 70.0)
    m.restarted("r1", 71.0)
    assert m.status("r1") == "up"


def test_reaped_needs_killed() -> None:
    with pytest.raises(ValueError, match="not killed"):
        model().reaped("r1", 0.0)


def test_a_run_starts_once() -> None:
    with pytest.raises(ValueError, match="twice"):
        model().started("p-a1", "p-u0", "lb")


def test_pick_wraps_over_the_runs_started() -> None:
    m = model()
    picked = m.pick(3)
    assert picked is not None and picked.agent_id == "p-a2"
    assert LiveModel(REPLICAS, 4, REAP).pick(0) is None


# -- deadlines ------------------------------------------------------------------------------
def test_a_killed_owners_run_running_past_the_reap_bound_is_a_problem() -> None:
    m = model()
    m.killed("r1", 10.0, ["p-a1"])
    found = m.problems(snap(row("p-a1")), now=10.0 + REAP + 1.0)
    assert len(found) == 1 and "past its deadline" in found[0] and "killed" in found[0]


def test_a_killed_owners_run_within_the_bound_or_ended_is_fine() -> None:
    m = model()
    m.killed("r1", 10.0, ["p-a1"])
    assert m.problems(snap(row("p-a1")), now=10.0 + REAP - 1.0) == []
    ended = row("p-a1", "failed", stop="replica_died")
    assert m.problems(snap(ended), now=10.0 + REAP + 50.0) == []


def test_an_acknowledged_cancel_must_end_its_run() -> None:
    m = model()
    m.cancel_acknowledged("p-a2", 5.0)
    assert m.problems(snap(row("p-a2")), now=5.0 + ACK_END_S - 0.1) == []
    late = m.problems(snap(row("p-a2")), now=5.0 + ACK_END_S + 0.1)
    assert late and "cancel was acknowledged" in late[0]


def test_the_earlier_deadline_wins() -> None:
    m = model()
    m.killed("r1", 0.0, ["p-a1"])
    m.cancel_acknowledged("p-a1", 1.0)
    m.must_end("p-a1", 500.0, "later")
    assert m.runs["p-a1"].must_end_by == 1.0 + ACK_END_S


def test_runs_of_other_examples_are_not_judged() -> None:
    m = model()
    m.must_end("other-a1", 0.0, "not ours")
    assert m.problems(snap(row("other-a1")), now=1000.0) == []


# -- quota -----------------------------------------------------------------------------------
def test_a_user_above_the_cap_is_a_problem() -> None:
    found = model().problems(snap(quotas=(QuotaRow("p-u0", 5),)), now=0.0)
    assert found == ["user p-u0 holds 5 slots, above the cap of 4"]


def test_a_user_at_the_cap_or_another_examples_user_is_fine() -> None:
    m = model()
    assert m.problems(snap(quotas=(QuotaRow("p-u0", 4), QuotaRow("other-u0", 9))), now=0.0) == []


# -- terminal rows are final -----------------------------------------------------------------
def test_a_terminal_row_that_changes_is_a_problem() -> None:
    m = model()
    assert m.problems(snap(row("p-a1", "completed", stop="end_turn")), now=0.0) == []
    found = m.problems(snap(row("p-a1", "cancelled", stop="x")), now=1.0)
    assert found and "a terminal row changed" in found[0]


def test_a_terminal_row_that_stays_is_fine() -> None:
    m = model()
    done = row("p-a1", "completed", stop="end_turn")
    assert m.problems(snap(row("p-a1")), now=0.0) == []
    assert m.problems(snap(done), now=1.0) == []
    assert m.problems(snap(done), now=2.0) == []


# -- which replica a rule dials ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("choice", "owner", "up", "expected"),
    [
        ("owner", "r2", ["r1", "r2", "r3"], "r2"),
        ("non_owner", "r1", ["r1", "r2", "r3"], "r2"),
        ("non_owner", "r2", ["r2"], "r2"),  # nobody else is up: the owner it is
        ("r3", None, ["r1", "r2", "r3"], "r3"),
        ("r2", None, ["r1", "r3"], "r3"),  # r2 is out: the next up one after it
        ("r3", None, ["r1", "r2"], "r1"),  # wraps around
        ("owner", "r2", ["r1", "r3"], "r1"),  # the owner is out
        ("owner", None, ["r3"], "r3"),
    ],
)
def test_replica_for(choice: str, owner: str | None, up: list[str], expected: str) -> None:
    assert replica_for(choice, owner, up, REPLICAS) == expected


def test_replica_for_needs_one_up() -> None:
    with pytest.raises(ValueError, match="no replica is up"):
        replica_for("r1", None, [], REPLICAS)


# -- the sweeper's lock -----------------------------------------------------------------------
def replica_rows(*ids: str) -> tuple[ReplicaRow, ...]:
    return tuple(ReplicaRow(rid, 0.0, 0.0) for rid in ids)


def test_a_held_lock_suspends_the_reap_deadline_and_release_restarts_it() -> None:
    m = model()
    m.killed("r1", 10.0, ["p-a1"])
    m.sweeper_held(20.0, snap(row("p-a1")))
    assert m.runs["p-a1"].must_end_by is None
    assert m.problems(snap(row("p-a1")), now=10.0 + REAP + 100.0) == []
    m.sweeper_released(200.0)
    assert m.runs["p-a1"].must_end_by == 200.0 + m.release_bound_s
    late = m.problems(snap(row("p-a1")), now=200.0 + m.release_bound_s + 0.1)
    assert late and "killed" in late[0]


def test_a_kill_while_held_has_no_deadline_until_the_release() -> None:
    m = model()
    m.sweeper_held(5.0, snap())
    m.killed("r1", 10.0, ["p-a1"])
    assert m.runs["p-a1"].must_end_by is None
    m.sweeper_released(12.0)  # released early: the kill's own bound is the later one
    assert m.runs["p-a1"].must_end_by == 10.0 + REAP


def test_an_acknowledged_cancel_keeps_its_deadline_while_held() -> None:
    m = model()
    m.killed("r1", 0.0, ["p-a1"])
    m.cancel_acknowledged("p-a1", 1.0)
    m.sweeper_held(2.0, snap(row("p-a1")))
    assert m.runs["p-a1"].must_end_by == 1.0 + ACK_END_S


def test_a_reap_while_held_is_a_problem() -> None:
    m = model()
    m.killed("r1", 0.0, ["p-a1"])
    m.sweeper_held(1.0, Snapshot(0.0, 0.0, runs=(row("p-a1"),), replicas=replica_rows("r1")))
    reaped = row("p-a1", "failed", stop="replica_died")
    found = m.problems(Snapshot(0.0, 0.0, runs=(reaped,), replicas=()), now=2.0)
    assert len(found) == 2, found
    assert "while the sweeper's lock was held" in found[0]
    assert "row was deleted" in found[1]


def test_a_run_ended_otherwise_while_held_or_reaped_before_is_fine() -> None:
    m = model()
    m.killed("r1", 0.0, ["p-a1", "p-a2"])
    before = row("p-a2", "failed", stop="replica_died")
    m.sweeper_held(1.0, Snapshot(0.0, 0.0, runs=(row("p-a1"), before)))
    cancelled = row("p-a1", "cancelled", stop="x")
    assert m.problems(snap(cancelled, before), now=2.0) == []


def test_the_lock_is_held_once_and_released_once() -> None:
    m = model()
    with pytest.raises(ValueError, match="not held"):
        m.sweeper_released(0.0)
    m.sweeper_held(0.0, snap())
    with pytest.raises(ValueError, match="already held"):
        m.sweeper_held(1.0, snap())
    m.killed("r1", 1.0, [])
    with pytest.raises(ValueError, match="lock is held"):
        m.reaped("r1", 2.0)


# -- replica rows and link cuts ----------------------------------------------------------------
def test_an_up_replica_without_its_row_is_a_problem_when_judged() -> None:
    m = LiveModel(REPLICAS, 4, REAP, judge_replica_rows=True)
    ok = Snapshot(0.0, 0.0, replicas=replica_rows("r1", "r2", "r3"))
    assert m.problems(ok, now=0.0) == []
    gone = Snapshot(0.0, 0.0, replicas=replica_rows("r1", "r3"))
    assert m.problems(gone, now=0.0) == [
        "r2 is up but has no row in replicas (reaped while alive?)"
    ]
    m.stopped("r2", 1.0)
    assert m.problems(gone, now=1.0) == []
    assert model().problems(snap(), now=0.0) == []  # not judged by default


def test_only_an_up_replica_is_cut() -> None:
    m = model()
    m.link_cut("r1", 1.0, 4.0)
    assert [(c.replica_id, c.began, c.ended) for c in m.cuts] == [("r1", 1.0, 4.0)]
    m.frozen("r2", 5.0)
    with pytest.raises(ValueError, match="only an up one"):
        m.link_cut("r2", 5.0, 6.0)


def test_a_replica_killed_under_the_lock_must_keep_its_row_and_runs() -> None:
    m = model()
    m.sweeper_held(1.0, snap())
    m.killed("r1", 2.0, ["p-a1"])
    reaped = row("p-a1", "failed", stop="replica_died")
    found = m.problems(Snapshot(0.0, 0.0, runs=(reaped,), replicas=()), now=3.0)
    assert len(found) == 2 and "lock was held" in found[0] and "row was deleted" in found[1]


# -- starts settling ---------------------------------------------------------------------------
def test_a_start_is_unsettled_until_its_row_comes() -> None:
    m = model()
    assert m.unsettled(snap(), ["p-a1", "p-a2"], ended=[]) == ["p-a1", "p-a2"]
    assert m.unsettled(snap(row("p-a1")), ["p-a1", "p-a2"], ended=[]) == ["p-a2"]
    assert m.unsettled(snap(row("p-a1"), row("p-a2")), ["p-a1", "p-a2"], ended=[]) == []


def test_a_start_whose_call_ended_is_settled_without_a_row() -> None:
    m = model()
    assert m.unsettled(snap(), ["p-a1", "p-a2"], ended=["p-a2"]) == ["p-a1"]


def test_a_user_at_the_cap_settles_the_rest_of_its_starts() -> None:
    m = model()  # cap 4
    for n in range(3, 9):
        m.started(f"p-a{n}", "p-u0", "lb")
    agents = [f"p-a{n}" for n in range(3, 9)]
    three = [row(f"p-a{n}") for n in range(3, 6)]
    # Three live rows: below the cap, the others may still be admitted.
    assert m.unsettled(snap(*three), agents, ended=[]) == ["p-a6", "p-a7", "p-a8"]
    # A fourth live row of the same user (any of its runs): at the cap, nothing to wait for.
    assert m.unsettled(snap(*three, row("p-a1")), agents, ended=[]) == []
    # A terminal row holds no slot.
    done = row("p-a1", status="completed")
    assert m.unsettled(snap(*three, done), agents, ended=[]) == ["p-a6", "p-a7", "p-a8"]
