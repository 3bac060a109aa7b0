"""stop_reason_fits_cause: each row of the cause table, legal and illegal."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from chaos.checks import stop_reason_fits_cause as check_mod
from chaos.record.vocabulary import AuditRow, RunRow
from chaos.testing.bench import HistoryBench
from chaos.verdict import Status, Verdict


def _judge(s: HistoryBench, *rows: RunRow, **params: object) -> Verdict:
    s.snapshot(500.0, rows)
    return check_mod.check(s.context(replace(s.params, **params)))  # type: ignore[arg-type]


def _failed(s: HistoryBench, rid: str | None, reason: str, error: str, end: float) -> RunRow:
    return s.row("t1-a", rid, status="failed", stop_reason=reason, error=error, completed=end)


def test_ran_to_the_end_passes_and_reports_the_ends() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=2.0)
    v = _judge(s, s.row("t1-a", rid, completed=2.0))
    assert v.status is Status.PASS and v.evidence["ends"] == {"completed/end_turn": 1}


def test_no_terminal_row_is_vacuous() -> None:
    s = HistoryBench()
    s.run("t1-a", start=0.0, end=None, run_id="r_a")
    s.snapshot(1.0, [s.row("t1-a", "r_a", status="running")])
    s.live_probe(1.5, s.row("t1-a", "r_a", status="running"))
    assert check_mod.check(s.context()).status is Status.VACUOUS


def test_an_end_with_no_cause_fails_with_row_and_history() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=2.0)
    v = _judge(
        s, s.row("t1-a", rid, status="cancelled", stop_reason="client disconnected", completed=2.0)
    )
    assert v.status is Status.FAIL
    bad = v.evidence["offenders"][0]
    assert bad["run_id"] == rid and bad["stop_reason"] == "client disconnected"
    assert "ran to the end" in bad["causes"]
    assert [h["type"] for h in bad["history"]] == ["invoke", "ok"]


def test_a_row_outside_the_terminal_table_fails() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=5.0, outcome="info", error="eof")
    s.fault("kill", "r1", start=5.0)
    v = _judge(s, _failed(s, rid, "replica_died", "boom", 60.0))
    assert v.status is Status.FAIL
    assert "terminal table" in v.evidence["offenders"][0]["why"]


@pytest.mark.parametrize(
    ("reason", "row_reason", "status"),
    [
        ("please stop", "please stop", Status.PASS),
        (None, "cancelled by api", Status.PASS),
        ("please stop", "client disconnected", Status.FAIL),
    ],
)
def test_acknowledged_cancel_allows_only_the_callers_reason(
    reason: str | None, row_reason: str, status: Status
) -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=3.1, events=["session", "agent", "error"], stop_reason=None)
    s.cancel("t1-a", start=3.0, end=3.05, reason=reason)
    v = _judge(s, s.row("t1-a", rid, status="cancelled", stop_reason=row_reason, completed=3.02))
    assert v.status is status, v


def test_acked_cancel_of_a_run_that_still_had_work_left_but_completed_fails() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=6.0)  # done 3 s after the ack: it had work left
    s.cancel("t1-a", start=3.0, end=3.05)
    v = _judge(s, s.row("t1-a", rid, completed=6.0))
    assert v.status is Status.FAIL
    assert "acked while its finish was under way" not in v.evidence["offenders"][0]["causes"]


@pytest.mark.parametrize(
    ("done_at", "status"),
    [(2.9, Status.PASS), (3.1, Status.PASS), (4.04, Status.PASS), (4.1, Status.FAIL)],
)
def test_acked_cancel_may_end_completed_only_when_done_came_within_the_finish_window(
    done_at: float, status: Status
) -> None:
    # loomcycle sends done, then decides the status once and deregisters the cancel
    # entry after its writes: a cancel in that gap is acked and changes nothing.
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=done_at)
    s.cancel("t1-a", start=3.0, end=3.05)
    v = _judge(s, s.row("t1-a", rid, completed=done_at), cancel_finish_window_s=1.0)
    assert v.status is status, v


def test_owner_killed_allows_replica_died_but_not_a_later_completion() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=5.0, outcome="info", error="eof")
    s.fault("kill", "r1", start=5.0)
    assert _judge(s, _failed(s, rid, "replica_died", "owner replica died", 62.0)).ok
    s2 = HistoryBench()
    rid2 = s2.run("t1-a", start=0.0, end=5.0, outcome="info", error="eof")
    s2.fault("kill", "r1", start=5.0)
    v = _judge(s2, s2.row("t1-a", rid2, completed=20.0))
    assert v.status is Status.FAIL
    assert "ran to the end" not in v.evidence["offenders"][0]["causes"]
    assert [w.name for w in v.fault_windows] == ["kill"]


def test_replica_died_without_any_owner_fault_fails() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=5.0, outcome="info", error="eof")
    assert (
        _judge(s, _failed(s, rid, "replica_died", "owner replica died", 62.0)).status is Status.FAIL
    )


@pytest.mark.parametrize(("pause_s", "status"), [(10.0, Status.FAIL), (35.0, Status.PASS)])
def test_freeze_must_outlast_stale_minus_one_heartbeat(pause_s: float, status: Status) -> None:
    """stale 60 s, heartbeat 30 s: a freeze of 30 s or more may get the owner reaped."""
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=5.0, outcome="info", error="eof")
    s.fault("pause", "r1", start=5.0, end=5.0 + pause_s)
    v = _judge(s, _failed(s, rid, "replica_died", "owner replica died", 65.0))
    assert v.status is status, v


def test_owner_replica_dead_needs_a_cancel_on_a_dead_owner() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=5.0, outcome="info", error="eof")
    s.fault("kill", "r1", start=5.0)
    row = _failed(s, rid, "owner_replica_dead", "owner replica heartbeat stale; x", 70.0)
    assert _judge(s, row).status is Status.FAIL
    s.cancel(
        "t1-a",
        start=69.0,
        end=70.0,
        classification="owner_dead",
        response_reason="owner_dead_marked_failed",
    )
    assert _judge(s, row).ok


def test_client_cut_allows_client_disconnected() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=2.0, outcome="info", cut=True, error="closed by suite")
    row = s.row("t1-a", rid, status="cancelled", stop_reason="client disconnected", completed=2.1)
    assert _judge(s, row).ok


def test_lb_link_cut_allows_client_disconnected_even_if_the_client_saw_done() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=2.0)
    s.fault("link:reset_cut", "lb-r1", start=1.0, end=1.5, link="lb:r1", replica="r1")
    row = s.row("t1-a", rid, status="cancelled", stop_reason="client disconnected", completed=1.2)
    assert _judge(s, row).ok


@pytest.mark.parametrize(("injected", "status"), [(False, Status.FAIL), (True, Status.PASS)])
def test_provider_error_is_legal_only_when_injected(injected: bool, status: Status) -> None:
    s = HistoryBench()
    rid = s.run(
        "t1-a",
        start=0.0,
        end=1.0,
        events=["session", "agent", "error"],
        stop_reason=None,
        error="mock: injected 429",
    )
    row = s.row("t1-a", rid, status="failed", error="mock: injected 429", completed=1.0)
    assert _judge(s, row, provider_errors_injected=injected).status is status


def test_agent_id_collision_explains_a_failed_row() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=2.0)
    s.run("t1-a", start=0.5, end=0.6, outcome="fail", status=409, code="agent_id_in_use")
    collision = s.row("t1-a", "r_coll", status="failed", error="agent id in use", completed=0.6)
    assert _judge(s, s.row("t1-a", rid, completed=2.0), collision).ok


@pytest.mark.parametrize(("heartbeat", "status"), [(300.0, Status.FAIL), (100.0, Status.PASS)])
def test_heartbeat_timeout_needs_a_stale_heartbeat(heartbeat: float, status: Status) -> None:
    """Stale after 180 s: a run failed at 400 must have last beaten at or before 220."""
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=None)
    row = s.row(
        "t1-a",
        rid,
        status="failed",
        stop_reason="heartbeat_timeout",
        error="heartbeat timeout",
        completed=400.0,
        heartbeat=heartbeat,
    )
    assert _judge(s, row).status is status


def test_postgres_outage_allows_the_runs_own_failure() -> None:
    s = HistoryBench()
    rid = s.run(
        "t1-a",
        start=0.0,
        end=3.0,
        events=["session", "agent", "error"],
        stop_reason=None,
        error="db",
    )
    row = s.row("t1-a", rid, status="failed", error="pq: connection refused", completed=3.0)
    assert _judge(s, row).status is Status.FAIL
    s.fault("restart", "postgres", start=1.0, end=4.0)
    assert _judge(s, row).ok


@pytest.mark.parametrize(("beat", "status"), [(300.0, Status.FAIL), (100.0, Status.PASS)])
def test_heartbeat_from_the_audit_log_as_iso_text(beat: float, status: Status) -> None:
    """The audit log stores to_jsonb rows: timestamps are ISO strings, not epochs."""
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=None) or ""
    row = s.row(
        "t1-a",
        rid,
        status="failed",
        stop_reason="heartbeat_timeout",
        error="heartbeat timeout",
        completed=400.0,
        heartbeat=10.0,
    )
    iso = datetime.fromtimestamp(s.wall(beat), tz=UTC).isoformat()
    s.audit(
        [
            AuditRow(
                1,
                "runs",
                "update",
                rid,
                {"status": "running", "last_heartbeat_at": iso},
                {"status": "failed"},
                s.wall(400.0),
            )
        ]
    )
    assert _judge(s, row).status is status


@pytest.mark.parametrize(
    ("completed", "status"),
    [
        (2.0 + 5.0 + 1.0 - 0.01, Status.PASS),  # inside the drain (+ clock slack): ran to its end
        (2.0 + 5.0 + 1.0 + 0.01, Status.FAIL),  # after the drain: the process was gone
    ],
)
def test_a_graceful_stop_lets_runs_that_end_inside_its_drain_complete(
    completed: float, status: Status
) -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=completed)
    s.fault("stop", "r1", start=2.0)
    v = _judge(s, s.row("t1-a", rid, completed=completed))
    assert v.status is status, v.evidence


def test_a_kill_allows_no_drain() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=3.0)
    s.fault("kill", "r1", start=2.0)
    assert _judge(s, s.row("t1-a", rid, completed=3.5)).status is Status.FAIL
