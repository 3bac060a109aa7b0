"""Boundary tests of the checkers: each bound at minus and plus one unit of its resolution.

Written against the mutants mutmut left alive (docs/mutation/checks.md): a bound moved
by a second, a ``>=`` turned into ``>``, a cause counted that should not be.  The unit
is ``EPS`` = 10 ms, far below any bound (the smallest is the 1 s clock slack) and far
above float noise at the bench's epoch (1.7e9 s carries ~2e-7 s).  The bench's defaults
are the bounds under test: stale 60 s, ticker 30 s, sweep 5 s, reap margin 10 s,
run-heartbeat stale 180 s, clock slack 1 s, ack timeout 2 s + 1 s, finish window 1 s,
LISTEN recovery 35 s, sample slack 0.5 s, quota grace 5 s.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from chaos.checks import (
    bounded_recovery,
    no_quota_leaks,
    nothing_lost,
    one_truth,
    terminal_is_final,
)
from chaos.checks import stop_reason_fits_cause as fits_cause
from chaos.checks.terminal_table import CONTRACT_WORDS
from chaos.record.vocabulary import AuditRow, RunRow
from chaos.testing.bench import HistoryBench
from chaos.verdict import Status, Verdict

EPS = 0.01
PASS, FAIL = Status.PASS, Status.FAIL


def _fits(s: HistoryBench, *rows: RunRow) -> Verdict:
    s.snapshot(500.0, rows)
    return fits_cause.check(s.context())


def _reaped(s: HistoryBench, rid: str | None, completed: float) -> RunRow:
    return s.row(
        "t1-a",
        rid,
        status="failed",
        stop_reason="replica_died",
        error="owner replica died",
        completed=completed,
    )


# -- the contract's terminal table ---------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "reason", "error", "legal"),
    [
        ("completed", "end_turn", None, True),
        ("completed", "end_turn", "boom", False),  # a completed row carries no error
        ("completed", "", None, False),  # nor an empty stop reason
        ("completed", None, None, False),
        ("cancelled", "client disconnected", None, True),
        ("cancelled", "client disconnected", "x", False),
        ("cancelled", None, None, False),
        ("failed", None, "pq: connection refused", True),  # the run's own failure
        ("failed", None, "", False),
        ("failed", None, None, False),
        ("failed", "replica_died", "owner replica died", True),
        ("failed", "replica_died", "owner replica died: r1", True),  # a prefix
        ("failed", "replica_died", "x owner replica died", False),  # not a prefix
        ("failed", "replica_died", None, False),
        ("failed", "owner_replica_dead", "owner replica heartbeat stale; x", True),
        ("failed", "owner_replica_dead", "owner replica died", False),
        ("failed", "heartbeat_timeout", "heartbeat timeout", True),
        ("failed", "heartbeat_timeout", "owner replica died", False),
        ("failed", "end_turn", "boom", False),  # no writer fails a run with this reason
        ("running", None, None, False),
        ("queued", None, None, False),
    ],
)
def test_terminal_table_rows(
    status: str, reason: str | None, error: str | None, legal: bool
) -> None:
    row = RunRow("r", "t1-a", None, "r1", status, reason, error, 0.0, 1.0)
    assert CONTRACT_WORDS.in_table(row) is legal


# -- stop_reason_fits_cause: which end each cause allows -----------------------------------


@pytest.mark.parametrize(
    ("length", "status"),
    [(30.0 - EPS, FAIL), (30.0, PASS), (30.0 + EPS, PASS)],
)
@pytest.mark.parametrize("fault", ["pause", "link:reset_cut"])
def test_freeze_or_db_cut_allows_replica_died_from_stale_minus_one_ticker(
    fault: str, length: float, status: Status
) -> None:
    """stale 60 s, ticker 30 s: a freeze (or a cut from Postgres) of 30 s may get the owner
    reaped, since its last heartbeat may be a whole ticker older than the fault."""
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=4.0, outcome="info", error="eof")
    s.fault(fault, "r1", start=4.0, end=4.0 + length, link="pg:r1", replica="r1")
    assert _fits(s, _reaped(s, rid, 70.0)).status is status


def test_an_unhealed_freeze_allows_replica_died() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=4.0, outcome="info", error="eof")
    s.fault("pause", "r1", start=4.0)
    assert _fits(s, _reaped(s, rid, 70.0)).ok


@pytest.mark.parametrize("fault", ["kill", "stop", "restart"])
def test_every_death_fault_allows_replica_died(fault: str) -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=4.0, outcome="info", error="eof")
    s.fault(fault, "r1", start=4.0, end=4.5)
    assert _fits(s, _reaped(s, rid, 70.0)).ok


@pytest.mark.parametrize("fault", ["link:latency", "freeze-nothing"])
def test_a_fault_that_cannot_look_dead_does_not_allow_replica_died(fault: str) -> None:
    """An lb link fault or an unknown fault name never makes the owner look dead."""
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=4.0, outcome="info", error="eof")
    s.fault(fault, "r1", start=4.0, link="lb:r1", replica="r1")
    assert _fits(s, _reaped(s, rid, 70.0)).status is FAIL


@pytest.mark.parametrize(
    ("beat", "status"),
    [(221.0 - EPS, PASS), (221.0, PASS), (221.0 + EPS, FAIL)],
)
def test_heartbeat_timeout_from_stale_minus_clock_slack(beat: float, status: Status) -> None:
    """Stale after 180 s, less 1 s of clock slack: a run failed at 400 whose last beat was
    at 221 (179 s before) may have been swept; one that beat 10 ms later may not."""
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=None)
    row = s.row(
        "t1-a",
        rid,
        status="failed",
        stop_reason="heartbeat_timeout",
        error="heartbeat timeout",
        completed=400.0,
        heartbeat=beat,
    )
    assert _fits(s, row).status is status


@pytest.mark.parametrize(("started", "status"), [(221.0, PASS), (221.0 + EPS, FAIL)])
def test_heartbeat_falls_back_to_started_at(started: float, status: Status) -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=None)
    row = s.row(
        "t1-a",
        rid,
        status="failed",
        stop_reason="heartbeat_timeout",
        error="heartbeat timeout",
        started=started,
        completed=400.0,
    )
    assert _fits(s, replace(row, last_heartbeat_at=None)).status is status


@pytest.mark.parametrize(
    ("old_status", "status"),
    [("running", PASS), ("failed", FAIL)],
)
def test_heartbeat_from_the_audit_log_counts_only_while_running(
    old_status: str, status: Status
) -> None:
    """The last beat the run had while running (from the audit log) is the one that counts;
    an audit row of an already ended run says nothing about its heartbeat."""
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=None) or ""
    row = s.row(
        "t1-a",
        rid,
        status="failed",
        stop_reason="heartbeat_timeout",
        error="heartbeat timeout",
        completed=400.0,
        heartbeat=390.0,
    )
    old = {"status": old_status, "last_heartbeat_at": s.wall(100.0)}
    s.audit([AuditRow(1, "runs", "update", rid, old, {"status": "failed"}, s.wall(400.0))])
    assert _fits(s, row).status is status


@pytest.mark.parametrize(
    ("fault_start", "status"),
    [(3.0 + 1.0 - EPS, PASS), (3.0 + 1.0, PASS), (3.0 + 1.0 + EPS, FAIL)],
)
def test_a_fault_counts_until_the_runs_end_plus_clock_slack(
    fault_start: float, status: Status
) -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=3.0, events=["session", "agent", "error"], error="db")
    s.fault("restart", "postgres", start=fault_start, end=fault_start + 5.0)
    row = s.row("t1-a", rid, status="failed", error="pq: connection refused", completed=3.0)
    assert _fits(s, row).status is status


@pytest.mark.parametrize(
    ("fault_end", "status"),
    [(10.0 - 1.0 - EPS, FAIL), (10.0 - 1.0, PASS), (10.0 - 1.0 + EPS, PASS)],
)
def test_a_fault_counts_from_the_runs_start_minus_clock_slack(
    fault_end: float, status: Status
) -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=10.0, end=13.0, events=["session", "agent", "error"], error="db")
    s.fault("restart", "postgres", start=2.0, end=fault_end)
    row = s.row(
        "t1-a", rid, status="failed", error="pq: connection refused", started=10.0, completed=13.0
    )
    assert _fits(s, row).status is status


def test_a_fault_on_a_run_with_unknown_times_counts() -> None:
    """No started_at / completed_at: the run may have spanned any fault."""
    s = HistoryBench()
    rid = s.run("t1-a", start=10.0, end=13.0, events=["session", "agent", "error"], error="db")
    s.fault("restart", "postgres", start=2.0, end=3.0)
    row = s.row("t1-a", rid, status="failed", error="pq: connection refused", completed=13.0)
    assert _fits(s, replace(row, started_at=None)).ok


@pytest.mark.parametrize(
    ("kill_at", "status"),
    [(1.0, PASS), (1.0 + EPS, FAIL), (19.0 - EPS, FAIL), (19.0, PASS)],
)
def test_completed_is_illegal_only_after_a_kill_inside_the_run(
    kill_at: float, status: Status
) -> None:
    """Started 1, completed 20, clock slack 1: a kill strictly after the start and more than
    the slack before the end rules out "ran to the end"."""
    s = HistoryBench()
    rid = s.run("t1-a", start=1.0, end=20.0)
    s.fault("kill", "r1", start=kill_at, end=kill_at + 0.5)
    assert _fits(s, s.row("t1-a", rid, started=1.0, completed=20.0)).status is status


@pytest.mark.parametrize("fault", ["stop", "restart"])
def test_a_stop_or_restart_inside_the_run_also_rules_out_completed(fault: str) -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=1.0, end=20.0)
    s.fault(fault, "r1", start=5.0, end=6.0)
    assert _fits(s, s.row("t1-a", rid, started=1.0, completed=20.0)).status is FAIL


def test_a_pause_inside_the_run_does_not_rule_out_completed() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=1.0, end=20.0)
    s.fault("pause", "r1", start=5.0, end=6.0)
    assert _fits(s, s.row("t1-a", rid, started=1.0, completed=20.0)).ok


@pytest.mark.parametrize(
    ("done_at", "status"),
    [(4.0 - EPS, PASS), (4.0, PASS), (4.0 + EPS, FAIL)],
)
def test_acked_cancel_allows_completed_up_to_the_finish_window(
    done_at: float, status: Status
) -> None:
    """Ack returned at 3.0, finish window 1 s: done at 4.0 was already under way."""
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=done_at)
    s.cancel("t1-a", start=2.9, end=3.0)
    assert _fits(s, s.row("t1-a", rid, completed=done_at)).status is status


def test_a_finish_window_needs_the_client_to_have_seen_done() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=3.5, outcome="info", error="eof")
    s.cancel("t1-a", start=2.9, end=3.0)
    assert _fits(s, s.row("t1-a", rid, completed=3.5)).status is FAIL


def test_an_acked_cancel_is_the_only_cause_even_with_other_faults() -> None:
    """After an ack the owner fired the cancel: a kill on the owner no longer explains
    replica_died."""
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=4.0, outcome="info", error="eof")
    s.cancel("t1-a", start=3.0, end=3.05)
    s.fault("kill", "r1", start=3.5)
    assert _fits(s, _reaped(s, rid, 70.0)).status is FAIL


def test_an_acked_cancel_for_another_run_of_the_agent_is_no_cause() -> None:
    """The ack belongs to the agent's run the client knows; a second row of that agent id
    (not the client's run) is judged by the ordinary causes."""
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=2.0)
    s.cancel("t1-a", start=1.0, end=1.05)
    other = s.row("t1-a", "r_other", completed=2.0)
    v = _fits(s, s.row("t1-a", rid, status="cancelled", stop_reason="chaos", completed=1.1), other)
    assert v.ok


@pytest.mark.parametrize(
    ("classification", "status"),
    [("already_terminal", FAIL), ("running_elsewhere", PASS), ("owner_unreachable", PASS)],
)
def test_a_cancel_answered_already_terminal_is_no_cause(
    classification: str, status: Status
) -> None:
    """A cancel that found the run already ended did nothing: it cannot explain a
    cancelled row; an unacknowledged cancel that did reach the run can."""
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=3.0, outcome="info", error="eof")
    s.cancel("t1-a", start=2.0, end=2.1, classification=classification, cancelled=False)
    row = s.row("t1-a", rid, status="cancelled", stop_reason="chaos", completed=2.05)
    assert _fits(s, row).status is status


def test_a_cancel_without_a_reason_allows_cancelled_by_api_only() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=3.0, outcome="info", error="eof")
    s.cancel("t1-a", start=2.0, end=2.1, reason=None, classification="running_elsewhere")
    ok = s.row("t1-a", rid, status="cancelled", stop_reason="cancelled by api", completed=2.05)
    assert _fits(s, ok).ok
    s2 = HistoryBench()
    rid2 = s2.run("t1-a", start=0.0, end=3.0, outcome="info", error="eof")
    s2.cancel("t1-a", start=2.0, end=2.1, reason=None, classification="running_elsewhere")
    bad = s2.row("t1-a", rid2, status="cancelled", stop_reason="chaos", completed=2.05)
    assert _fits(s2, bad).status is FAIL


def test_owner_dead_cancel_alone_allows_owner_replica_dead() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=3.0, outcome="info", error="eof")
    s.cancel("t1-a", start=60.0, end=61.0, classification="owner_dead", cancelled=True)
    row = s.row(
        "t1-a",
        rid,
        status="failed",
        stop_reason="owner_replica_dead",
        error="owner replica heartbeat stale",
        completed=61.0,
    )
    assert _fits(s, row).ok


@pytest.mark.parametrize(
    ("end", "status"),
    [("failed", PASS), ("client", PASS), ("reaped", FAIL)],
)
def test_a_graceful_stop_allows_the_runs_own_ends_but_not_a_reap_with_cancel(
    end: str, status: Status
) -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=3.0, events=["session", "agent", "error"], error="x")
    s.fault("stop", "r1", start=2.0, end=2.5)
    rows = {
        "failed": s.row("t1-a", rid, status="failed", error="context canceled", completed=2.2),
        "client": s.row(
            "t1-a", rid, status="cancelled", stop_reason="parent run cancelled", completed=2.2
        ),
        "reaped": s.row(
            "t1-a",
            rid,
            status="failed",
            stop_reason="owner_replica_dead",
            error="owner replica heartbeat stale",
            completed=70.0,
        ),
    }
    assert _fits(s, rows[end]).status is status


def test_a_kill_with_a_cancel_allows_owner_replica_dead() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=3.0, outcome="info", error="eof")
    s.fault("kill", "r1", start=2.0)
    s.cancel("t1-a", start=30.0, end=30.1, classification="running_elsewhere", cancelled=False)
    row = s.row(
        "t1-a",
        rid,
        status="failed",
        stop_reason="owner_replica_dead",
        error="owner replica heartbeat stale",
        completed=70.0,
    )
    assert _fits(s, row).ok


@pytest.mark.parametrize(("link", "status"), [("pg:r1", PASS), ("lb:r1", FAIL)])
def test_only_a_database_link_cut_allows_the_runs_own_failure(link: str, status: Status) -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=3.0, events=["session", "agent", "error"], error="db")
    s.fault(
        "link:reset_cut", f"{link.replace(':', '-')}", start=1.0, end=2.0, link=link, replica="r1"
    )
    row = s.row("t1-a", rid, status="failed", error="pq: connection refused", completed=3.0)
    assert _fits(s, row).status is status


def test_a_409_collision_row_needs_the_409_and_a_row_the_client_was_not_told() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=2.0)
    s.run("t1-a", start=0.5, end=0.6, outcome="fail", status=409, code="backpressure")
    collision = s.row("t1-a", "r_coll", status="failed", error="agent id in use", completed=0.6)
    assert _fits(s, s.row("t1-a", rid, completed=2.0), collision).status is FAIL


def test_a_client_cut_allows_only_the_client_gone_ends() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=2.0, cut=True)
    gone = s.row("t1-a", rid, status="cancelled", stop_reason="client disconnected", completed=2.1)
    assert _fits(s, gone).ok
    s2 = HistoryBench()
    rid2 = s2.run("t1-a", start=0.0, end=2.0, cut=True)
    failed = s2.row("t1-a", rid2, status="failed", error="boom", completed=2.1)
    assert _fits(s2, failed).status is FAIL


def test_a_row_of_a_client_without_run_id_is_judged_with_that_client() -> None:
    """A stream cut before the ``agent`` event: the row is matched by agent id, so the
    cut still explains client disconnected."""
    s = HistoryBench()
    s.run("t1-a", start=0.0, end=0.5, outcome="info", run_id=None, error="eof")
    row = s.row("t1-a", "r_db", status="cancelled", stop_reason="client disconnected", completed=1)
    assert _fits(s, row).ok


def test_failing_rows_list_evidence_up_to_the_limit_then_only_ids() -> None:
    s = HistoryBench()
    rows = []
    for i in range(3):
        rid = s.run(f"t1-{i}", start=0.0, end=2.0)
        rows.append(s.row(f"t1-{i}", rid, status="cancelled", stop_reason="chaos", completed=2.0))
    s.fault("restart", "postgres", start=50.0, end=51.0)
    s.snapshot(500.0, rows)
    v = fits_cause.check(s.context(replace(s.params, evidence_limit=2)))
    assert v.status is FAIL and v.evidence["offender_count"] == 3
    assert len(v.evidence["offenders"]) == 2
    assert v.evidence["offenders"][0]["why"] == "fits none of the causes the history shows"
    assert v.evidence["offenders"][0]["causes"] == ["ran to the end"]
    assert v.evidence["ends"] == {"cancelled/chaos": 3}
    assert v.summary == "3 of 3 terminal rows do not fit their cause"
    assert [w.name for w in v.fault_windows] == ["restart"]


# -- terminal_is_final: every final field, in both sources ---------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", "failed"),
        ("stop_reason", "max_iterations"),
        ("error", "x"),
        ("completed_at", 9.0),
    ],
)
def test_an_audit_change_of_any_final_field_fails(field: str, value: object) -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=2.0) or ""
    s.snapshot(3.0, [s.row("t1-a", rid, completed=2.0)])
    old = {"status": "completed", "stop_reason": "end_turn", "error": None, "completed_at": 2.0}
    s.audit([AuditRow(1, "runs", "update", rid, old, {**old, field: value}, s.wall(9.0))])
    v = terminal_is_final.check(s.context())
    assert v.status is FAIL and v.evidence["offenders"][0]["changed"] == [field]


def test_an_audit_update_of_a_terminal_row_that_keeps_its_final_fields_passes() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=2.0) or ""
    old = {"status": "completed", "stop_reason": "end_turn", "completed_at": 2.0, "x": 1}
    s.audit([AuditRow(1, "runs", "update", rid, old, {**old, "x": 2}, s.wall(9.0))])
    s.snapshot(10.0, [s.row("t1-a", rid, completed=2.0)])
    v = terminal_is_final.check(s.context())
    assert v.status is PASS and v.evidence["audited_terminal_runs"] == 1


def test_an_audit_insert_of_a_terminal_row_is_no_change() -> None:
    """Only an update can change an ended row; an insert or delete row is not one."""
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=2.0) or ""
    old = {"status": "completed", "completed_at": 2.0}
    s.audit([AuditRow(1, "runs", "delete", rid, old, None, s.wall(9.0))])
    s.snapshot(10.0, [s.row("t1-a", rid, completed=2.0)])
    assert terminal_is_final.check(s.context()).status is Status.VACUOUS


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", "failed"),
        ("stop_reason", "max_iterations"),
        ("error", "x"),
        ("completed_at", 9.0),
    ],
)
def test_a_snapshot_change_of_any_final_field_fails(field: str, value: object) -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=2.0)
    first = s.row("t1-a", rid, completed=2.0)
    changed = {field: s.wall(value) if field == "completed_at" else value}  # type: ignore[arg-type]
    s.snapshot(3.0, [first])
    s.snapshot(10.0, [replace(first, **changed)])
    v = terminal_is_final.check(s.context())
    assert v.status is FAIL
    bad = v.evidence["offenders"][0]
    assert bad["source"] == "snapshot" and bad["first_terminal_mono"] == 3.0 and bad["mono"] == 10.0


def test_a_running_row_seen_twice_is_no_reobservation() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=None)
    s.snapshot(3.0, [s.row("t1-a", rid, status="running")])
    s.snapshot(4.0, [s.row("t1-a", rid, status="running")])
    s.snapshot(5.0, [s.row("t1-a", rid, completed=4.5)])
    assert terminal_is_final.check(s.context()).status is Status.VACUOUS


def test_a_changed_row_of_another_test_is_not_judged() -> None:
    s = HistoryBench()
    other = s.row("zz-other", "r_z", completed=2.0)
    s.snapshot(3.0, [other])
    s.snapshot(4.0, [replace(other, status="failed")])
    assert terminal_is_final.check(s.context()).status is Status.VACUOUS


def test_completed_at_rule_in_the_audit_log() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=2.0) or ""
    s.audit(
        [AuditRow(1, "runs", "insert", rid, None, {"status": "running", "completed_at": 1.0}, 1.0)]
    )
    v = terminal_is_final.check(s.context())
    assert v.status is FAIL and v.evidence["offenders"][0]["seq"] == 1


# -- nothing_lost: the lost and the phantoms -----------------------------------------------


def _lost_and_phantoms(s: HistoryBench) -> tuple[int, int]:
    v = nothing_lost.check(s.context())
    if v.status is PASS:
        return 0, 0
    return v.evidence["lost_count"], v.evidence["phantom_count"]


@pytest.mark.parametrize(
    ("outcome", "status", "code", "phantoms"),
    [
        ("info", None, None, 0),  # stream cut before the agent event: the row may exist
        ("fail", 502, None, 0),  # the load balancer's answer: maybe admitted
        ("fail", 500, None, 0),
        ("fail", 499, None, 1),  # a 4xx without a code was not admitted
        ("fail", 502, "backpressure", 1),  # the target's own coded refusal wrote no row
        ("fail", 409, "agent_id_in_use", 0),  # a collision writes its own failed row
    ],
)
def test_a_row_the_driver_was_not_told_of(
    outcome: str, status: int | None, code: str | None, phantoms: int
) -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=2.0)
    s.run("t1-b", start=0.0, end=0.3, outcome=outcome, run_id=None, status=status, code=code)  # type: ignore[arg-type]
    reaped = s.row("t1-b", "r_b", status="failed", error="x", completed=60.0)
    s.snapshot(70.0, [s.row("t1-a", rid, completed=2.0), reaped])
    assert _lost_and_phantoms(s) == (0, phantoms)


def test_a_second_row_for_an_agent_the_driver_knows_one_run_of_is_a_phantom() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=2.0)
    s.snapshot(3.0, [s.row("t1-a", rid, completed=2.0), s.row("t1-a", "r_x", completed=2.0)])
    v = nothing_lost.check(s.context())
    assert v.status is FAIL
    assert v.evidence["phantoms"][0]["driver_run_ids"] == [rid]
    assert v.evidence["phantoms"][0]["why"] == "a run id the driver was never told"


@pytest.mark.parametrize(
    ("rows", "lost"),
    [
        (0, 1),  # accepted (agent event, no run id kept) and no row at all: lost
        (1, 0),  # one row of that agent id: it is the run
        (2, 0),  # two rows: one of them is, the agent id is not lost
    ],
)
def test_an_accepted_run_without_run_id_is_found_by_agent_id(rows: int, lost: int) -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=2.0)
    s.run("t1-b", start=0.0, end=1.0, outcome="ok", run_id=None)
    db = [s.row("t1-a", rid, completed=2.0)]
    db += [s.row("t1-b", f"r_b{i}", completed=1.0) for i in range(rows)]
    s.snapshot(3.0, db)
    assert _lost_and_phantoms(s)[0] == lost


def test_a_lost_run_of_another_test_is_not_counted() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=2.0)
    s.run("zz-b", start=0.0, end=1.0)
    s.snapshot(3.0, [s.row("t1-a", rid, completed=2.0)])
    v = nothing_lost.check(s.context())
    assert v.status is PASS and v.evidence == {"accepted": 1, "db_runs": 1}


def test_a_run_the_user_id_puts_in_scope_counts() -> None:
    s = HistoryBench()
    rid = s.run("x-a", start=0.0, end=2.0, user_id="t1-u")
    s.snapshot(3.0, [])
    v = nothing_lost.check(s.context())
    assert v.status is FAIL and v.evidence["lost"][0]["run_id"] == rid


def test_nothing_lost_lists_evidence_up_to_the_limit() -> None:
    s = HistoryBench()
    for i in range(3):
        s.run(f"t1-{i}", start=0.0, end=2.0)
    s.snapshot(3.0, [s.row("t1-g1", "r_g1", completed=1.0), s.row("t1-g2", "r_g2", completed=1.0)])
    v = nothing_lost.check(s.context(replace(s.params, evidence_limit=1)))
    assert v.status is FAIL
    assert (v.evidence["lost_count"], v.evidence["phantom_count"]) == (3, 2)
    assert (len(v.evidence["lost"]), len(v.evidence["phantoms"])) == (1, 1)
    assert (
        v.summary
        == "3 accepted runs missing from the database, 2 database runs the driver never saw"
    )
    assert v.evidence["lost"][0] | {"history": None} == {
        "agent_id": "t1-0",
        "run_id": "r_0001",
        "outcome": "ok",
        "history": None,
    }


# -- bounded_recovery: the reap, row-deletion and ack bounds -------------------------------


def _reap_verdict(s: HistoryBench, reaped_at: float) -> Verdict:
    rid = s.run("t1-a", start=0.0, end=5.0, outcome="info", error="eof")
    s.fault("kill", "r1", start=5.0)
    s.audit([_replica_deleted(s, 6.0)])
    s.snapshot(200.0, [_reaped(s, rid, reaped_at)], replicas=("r2", "r3"))
    return bounded_recovery.check(s.context())


def _replica_deleted(s: HistoryBench, at: float) -> AuditRow:
    return AuditRow(1, "replicas", "delete", "r1", {"replica_id": "r1"}, None, s.wall(at))


@pytest.mark.parametrize(
    ("took", "status"),
    [(75.0 - EPS, PASS), (75.0, PASS), (75.0 + EPS, FAIL)],
)
def test_reap_bound_is_stale_plus_sweep_plus_margin(took: float, status: Status) -> None:
    v = _reap_verdict(HistoryBench(), 5.0 + took)
    assert v.status is status, v
    assert v.evidence["reap_bound_s"] == 75.0


@pytest.mark.parametrize(
    ("deleted_after", "status"),
    [(75.0, PASS), (75.0 + EPS, FAIL)],
)
def test_replica_row_deletion_bound(deleted_after: float, status: Status) -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=5.0, outcome="info", error="eof")
    s.fault("kill", "r1", start=5.0)
    s.audit([_replica_deleted(s, 5.0 + deleted_after)])
    s.snapshot(200.0, [_reaped(s, rid, 60.0)], replicas=("r2", "r3"))
    v = bounded_recovery.check(s.context())
    assert v.status is status, v


@pytest.mark.parametrize(
    ("deleted_at", "counted"),
    [(5.0 - 1.0 - EPS, False), (5.0 - 1.0, True)],
)
def test_a_deletion_counts_from_the_kill_minus_clock_slack(
    deleted_at: float, counted: bool
) -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=5.0, outcome="info", error="eof")
    s.fault("kill", "r1", start=5.0)
    s.audit([_replica_deleted(s, deleted_at)])
    s.snapshot(200.0, [_reaped(s, rid, 60.0)], replicas=("r2", "r3"))
    v = bounded_recovery.check(s.context())
    deleted = v.evidence["replica_row_deleted_s"]
    # Without the audit row the first snapshot without the row (at 200) is the deletion.
    assert deleted["max"] == (round(deleted_at - 5.0, 3) if counted else 195.0)


@pytest.mark.parametrize(
    ("final_at", "status"),
    [(5.0 + 75.0, PASS), (5.0 + 75.0 + EPS, FAIL)],
)
def test_a_run_still_running_fails_only_past_the_reap_bound(
    final_at: float, status: Status
) -> None:
    """Before the bound a final snapshot cannot judge it (unjudged; the row deletion, seen
    in that snapshot, is judged); after it, it fails."""
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=5.0, outcome="info", error="eof")
    s.fault("kill", "r1", start=5.0)
    s.snapshot(final_at, [s.row("t1-a", rid, status="running")], replicas=("r2", "r3"))
    v = bounded_recovery.check(s.context())
    assert v.status is status, v
    assert v.evidence["unjudged"] == (1 if status is PASS else 0)


@pytest.mark.parametrize(
    ("final_at", "status"),
    [(5.0 + 75.0, Status.VACUOUS), (5.0 + 75.0 + EPS, FAIL)],
)
def test_a_replica_row_still_present_fails_only_past_the_reap_bound(
    final_at: float, status: Status
) -> None:
    s = HistoryBench()
    s.fault("kill", "r1", start=5.0)
    s.snapshot(final_at, [])
    v = bounded_recovery.check(s.context())
    assert v.status is status, v
    assert v.evidence["unjudged"] == (1 if status is Status.VACUOUS else 0)


@pytest.mark.parametrize(
    ("started", "owned"),
    [(5.0, True), (5.0 + EPS, False)],
)
def test_a_kill_owns_the_runs_started_at_or_before_it(started: float, owned: bool) -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=started, end=started + 1.0, outcome="info", error="eof")
    s.fault("kill", "r1", start=5.0)
    row = _reaped(s, rid, 200.0)
    s.snapshot(300.0, [replace(row, started_at=s.wall(started))], replicas=("r2", "r3"))
    v = bounded_recovery.check(s.context())
    assert v.evidence["reap_s"]["n"] == (1 if owned else 0)


@pytest.mark.parametrize(
    ("ended", "reason", "owned"),
    [
        (5.0 + 1.0, "end_turn", False),  # ended on its own within the clock slack
        (5.0 + 1.0 + EPS, "end_turn", True),  # ended after the kill: the reaper ended it
        (5.0 + 1.0, "replica_died", True),  # a reap reason is always the kill's
    ],
)
def test_a_kill_owns_the_runs_not_ended_on_their_own_first(
    ended: float, reason: str, owned: bool
) -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=5.0, outcome="info", error="eof")
    s.fault("kill", "r1", start=5.0)
    status = "completed" if reason == "end_turn" else "failed"
    error = None if reason == "end_turn" else "owner replica died"
    row = s.row("t1-a", rid, status=status, stop_reason=reason, error=error, completed=ended)
    s.snapshot(300.0, [row], replicas=("r2", "r3"))
    v = bounded_recovery.check(s.context())
    assert v.evidence["reap_s"]["n"] == (1 if owned else 0)


def test_a_restarted_replica_row_has_no_deletion_to_time() -> None:
    from chaos.record.vocabulary import ReplicaRow

    s = HistoryBench()
    s.fault("kill", "r1", start=5.0, end=6.0)
    restarted = ReplicaRow("r1", s.wall(6.0), s.wall(100.0))
    s.snapshot(100.0, [], replicas=(restarted, "r2"))
    v = bounded_recovery.check(s.context())
    assert v.status is Status.VACUOUS and v.evidence["unjudged"] == 0


@pytest.mark.parametrize(
    ("latency", "status"),
    [(3.0 - EPS, PASS), (3.0, PASS), (3.0 + EPS, FAIL)],
)
def test_cancel_ack_bound_is_timeout_plus_margin(latency: float, status: Status) -> None:
    s = HistoryBench()
    s.run("t1-a", start=0.0, end=50.0)
    s.cancel("t1-a", start=40.0, end=40.0 + latency)
    s.snapshot(60.0, [])
    v = bounded_recovery.check(s.context())
    assert v.status is status, v
    assert v.evidence["ack_bound_s"] == 3.0


@pytest.mark.parametrize(
    ("fault_end", "judged"),
    [(40.0 - 35.0 - EPS, True), (40.0 - 35.0, False)],
)
def test_a_cancel_is_excused_for_listen_recovery_after_a_fault(
    fault_end: float, judged: bool
) -> None:
    """LISTEN links may take 35 s to come back after a fault on the owner."""
    s = HistoryBench()
    s.run("t1-a", start=0.0, end=50.0)
    s.fault("pause", "r1", start=1.0, end=fault_end)
    s.cancel("t1-a", start=40.0, end=40.0 + 5.0)
    s.snapshot(60.0, [])
    v = bounded_recovery.check(s.context())
    assert v.status is (FAIL if judged else Status.VACUOUS), v


@pytest.mark.parametrize(("faulted", "status"), [("r3", FAIL), ("r2", Status.VACUOUS)])
def test_a_fault_on_the_replica_asked_excuses_a_cancel(faulted: str, status: Status) -> None:
    s = HistoryBench()
    s.run("t1-a", start=0.0, end=50.0)
    s.fault("pause", faulted, start=38.0, end=39.0)
    s.cancel("t1-a", start=40.0, end=45.0, via="r2")
    s.snapshot(60.0, [])
    assert bounded_recovery.check(s.context()).status is status


def test_owner_unreachable_from_a_healthy_owner_fails() -> None:
    s = HistoryBench()
    s.run("t1-a", start=0.0, end=50.0)
    s.cancel("t1-a", start=40.0, end=40.5, classification="owner_unreachable", cancelled=False)
    s.snapshot(60.0, [])
    v = bounded_recovery.check(s.context())
    assert v.status is FAIL
    assert v.evidence["offenders"][0]["why"] == (
        "owner_replica_unreachable while the owner was healthy"
    )


def test_a_cancel_with_no_response_or_no_owner_is_not_timed() -> None:
    s = HistoryBench()
    s.run("t1-a", start=0.0, end=50.0)
    s.cancel("t1-a", start=40.0, end=49.0, outcome="info")
    s.cancel("t1-zz", start=40.0, end=49.0)
    s.snapshot(60.0, [])
    assert bounded_recovery.check(s.context()).status is Status.VACUOUS


@pytest.mark.parametrize(("samples", "status"), [(19, PASS), (20, FAIL)])
def test_ack_p99_bound_is_judged_only_with_enough_samples(samples: int, status: Status) -> None:
    s = HistoryBench()
    for i in range(samples):
        s.run(f"t1-{i}", start=0.0, end=50.0)
        s.cancel(f"t1-{i}", start=40.0, end=40.5)
    s.snapshot(60.0, [])
    v = bounded_recovery.check(s.context(replace(s.params, ack_p99_bound_s=0.5 - EPS)))
    assert v.status is status, v


# -- one_truth: a reap needs a death of the owner inside the run ---------------------------


@pytest.mark.parametrize(
    ("kill_at", "status"),
    [
        (10.0 - 1.0 - EPS, FAIL),
        (10.0 - 1.0, PASS),
        (70.0 + 1.0, PASS),
        (70.0 + 1.0 + EPS, FAIL),
    ],
)
def test_a_reap_needs_a_kill_from_start_to_end_within_clock_slack(
    kill_at: float, status: Status
) -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=10.0, end=15.0, outcome="info", error="eof")
    s.fault("kill", "r1", start=kill_at, end=kill_at + 0.5)
    row = s.row(
        "t1-a",
        rid,
        status="failed",
        stop_reason="owner_replica_dead",
        error="owner replica heartbeat stale",
        started=10.0,
        completed=70.0,
    )
    s.snapshot(120.0, [row])
    assert one_truth.check(s.context()).status is status


def test_a_reap_with_unknown_times_accepts_any_kill_of_the_owner() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=10.0, end=15.0, outcome="info", error="eof")
    s.fault("restart", "r1", start=500.0, end=501.0)
    row = _reaped(s, rid, 70.0)
    s.snapshot(600.0, [replace(row, started_at=None, completed_at=None)])
    assert one_truth.check(s.context()).ok


def test_a_done_with_another_stop_reason_is_a_mismatch() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=2.0, stop_reason="max_iterations")
    s.snapshot(3.0, [s.row("t1-a", rid, completed=2.0)])
    v = one_truth.check(s.context())
    assert v.status is FAIL
    assert v.evidence["client_db_mismatch"][0]["client_saw"] == "done (max_iterations)"


def test_an_error_stream_that_ended_failed_agrees() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=2.0, events=["session", "agent", "error"], error="boom")
    s.snapshot(3.0, [s.row("t1-a", rid, status="failed", error="boom", completed=2.0)])
    v = one_truth.check(s.context())
    assert v.status is PASS and v.evidence == {"client_ends": 1, "reaped": 0}


# -- no_quota_leaks: sample slack and give-back grace --------------------------------------


def _quota(
    sample_at: float, count: int, *, runs: int = 1, cap: int = 0, frames: bool = True
) -> Status:
    """``runs`` runs of one user, started and admitted at 1.0 (no stream frame when not
    ``frames``), client done at 10.0, and one quota sample; quiescent at 200."""
    s = HistoryBench()
    rows = []
    for i in range(runs):
        rid = s.run(f"t1-{i}", start=1.0, end=10.0, user_id="t1-u", events=None if frames else [])
        rows.append(s.row(f"t1-{i}", rid, user_id="t1-u", completed=10.0))
    s.snapshot(sample_at, [], quotas={"t1-u": count})
    s.snapshot(200.0, rows, quotas={})
    return no_quota_leaks.check(s.context(replace(s.params, per_user_cap=cap))).status


@pytest.mark.parametrize(
    ("sample_at", "status"),
    [(1.0 + 0.5 - EPS, PASS), (1.0 + 0.5, FAIL), (10.0 - 0.5, FAIL), (10.0 - 0.5 + EPS, PASS)],
)
def test_a_slot_is_surely_held_from_admission_plus_slack_to_end_minus_slack(
    sample_at: float, status: Status
) -> None:
    """Two admitted runs and a count of 1: too low only while both surely held a slot."""
    assert _quota(sample_at, 1, runs=2) is status


def test_a_run_without_a_stream_frame_is_never_surely_holding() -> None:
    assert _quota(5.0, 1, runs=2, frames=False) is PASS


@pytest.mark.parametrize(
    ("sample_at", "status"),
    [(1.0 - 0.5 - EPS, FAIL), (1.0 - 0.5, PASS), (10.0 + 5.0, PASS), (10.0 + 5.0 + EPS, FAIL)],
)
def test_a_slot_may_be_held_from_start_minus_slack_to_end_plus_grace(
    sample_at: float, status: Status
) -> None:
    assert _quota(sample_at, 1) is status


@pytest.mark.parametrize(("cap", "count", "status"), [(2, 2, PASS), (2, 3, FAIL), (0, 3, PASS)])
def test_a_quota_count_above_the_cap_fails(cap: int, count: int, status: Status) -> None:
    """Three open runs that never showed a frame: 0..3 slots is within bounds, so only
    the cap (0: none) can fail the sample."""
    assert _quota(5.0, count, runs=3, cap=cap, frames=False) is status


# -- second pass: causes the first pass left untested ----------------------------------


@pytest.mark.parametrize(
    ("status", "reason", "error", "ok"),
    [
        ("completed", "end_turn", None, True),  # ran to the end; no end time to check
        ("failed", None, "pq: connection refused", True),  # the outage overlaps it
        ("failed", "heartbeat_timeout", "heartbeat timeout", False),  # staleness unknown
    ],
)
def test_a_terminal_row_without_completed_at_is_judged_without_crashing(
    status: str, reason: str | None, error: str | None, ok: bool
) -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=3.0, events=["session", "agent", "error"], error="db")
    s.fault("restart", "postgres", start=1.0, end=2.0)
    s.fault("kill", "r1", start=2.0, end=2.5)
    row = s.row("t1-a", rid, status=status, stop_reason=reason, error=error, completed=None)
    assert _fits(s, row).ok is ok


def test_a_cancel_after_an_already_terminal_one_is_still_a_cause() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=3.0, outcome="info", error="eof")
    s.cancel("t1-a", start=1.0, end=1.1, classification="already_terminal", cancelled=False)
    s.cancel("t1-a", start=2.0, end=2.1, classification="running_elsewhere", cancelled=False)
    row = s.row("t1-a", rid, status="cancelled", stop_reason="chaos", completed=2.05)
    assert _fits(s, row).ok


def test_a_fault_outside_the_run_does_not_hide_a_later_one_inside_it() -> None:
    s = HistoryBench()
    s.fault("pause", "r1", start=50.0, end=51.0)
    rid = s.run("t1-a", start=200.0, end=210.0)
    s.fault("stop", "r1", start=205.0, end=206.0)
    row = s.row(
        "t1-a",
        rid,
        status="cancelled",
        stop_reason="client disconnected",
        started=200.0,
        completed=205.5,
    )
    assert _fits(s, row).ok


def test_ran_to_the_end_means_completed() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=2.0)
    row = s.row("t1-a", rid, status="cancelled", stop_reason="end_turn", completed=2.0)
    assert _fits(s, row).status is FAIL


def test_an_acked_cancel_binds_the_agents_only_row_even_without_its_run_id() -> None:
    """The client never learned the run id; the agent's one row is its run, so the ack
    makes cancelled the only legal end, even though the stream was cut."""
    s = HistoryBench()
    s.run("t1-a", start=0.0, end=0.5, outcome="info", run_id=None, error="eof")
    s.cancel("t1-a", start=0.2, end=0.3)
    row = s.row("t1-a", "r_db", status="cancelled", stop_reason="client disconnected", completed=1)
    assert _fits(s, row).status is FAIL


def test_a_failing_collision_row_lists_the_409_among_its_causes() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=2.0)
    s.run("t1-a", start=0.5, end=0.6, outcome="fail", status=409, code="agent_id_in_use")
    odd = s.row("t1-a", "r_coll", status="cancelled", stop_reason="zzz", completed=0.6)
    v = _fits(s, s.row("t1-a", rid, completed=2.0), odd)
    assert "409 agent_id_in_use collision" in v.evidence["offenders"][0]["causes"]


def test_rows_past_the_evidence_limit_add_no_fault_windows() -> None:
    s = HistoryBench()
    rows = []
    for i, replica in enumerate(("r1", "r2", "r3")):
        rid = s.run(f"t1-{i}", start=0.0, end=2.0, replica_id=replica)
        rows.append(
            s.row(
                f"t1-{i}",
                rid,
                replica_id=replica,
                status="cancelled",
                stop_reason="x",
                completed=2.0,
            )
        )
        s.fault("pause", replica, start=100.0 + i, end=101.0 + i)
    s.snapshot(500.0, rows)
    v = fits_cause.check(s.context(replace(s.params, evidence_limit=2)))
    assert [w.target for w in v.fault_windows] == ["r1", "r2"]
