"""bounded_recovery, load_spread and cancel_classification."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chaos.checks import bounded_recovery, cancel_classification, load_spread
from chaos.record.vocabulary import AuditRow
from chaos.testing.bench import HistoryBench
from chaos.verdict import Status

# -- bounded_recovery: reaps (bound = stale 60 + sweep 5 + margin 10 = 75 s) ----------------


def _killed(reaped_after: float, *, row_deleted_after: float | None = None) -> HistoryBench:
    s = HistoryBench()
    rid = s.run("t1-a", start=90.0, end=100.0, outcome="info", error="eof") or ""
    s.fault("kill", "r1", start=100.0)
    end = 100.0 + reaped_after
    deleted = end if row_deleted_after is None else 100.0 + row_deleted_after
    s.snapshot(
        300.0,
        [
            s.row(
                "t1-a",
                rid,
                status="failed",
                stop_reason="replica_died",
                error="owner replica died",
                started=90.0,
                completed=end,
            )
        ],
        replicas=("r2", "r3"),
    )
    s.audit([AuditRow(1, "replicas", "delete", "r1", {"id": "r1"}, None, s.wall(deleted))])
    return s


@pytest.mark.parametrize(("after", "status"), [(74.0, Status.PASS), (76.0, Status.FAIL)])
def test_reap_bound_edge(after: float, status: Status) -> None:
    v = bounded_recovery.check(_killed(after, row_deleted_after=60.0).context())
    assert v.status is status, v
    assert v.evidence["reap_s"]["n"] == 1 and v.evidence["reap_s"]["max"] == after
    if status is Status.FAIL:
        assert v.evidence["offenders"][0]["reaped_after_s"] == after
        assert [w.name for w in v.fault_windows] == ["kill"]


def test_replica_row_deleted_too_late_fails() -> None:
    v = bounded_recovery.check(_killed(60.0, row_deleted_after=80.0).context())
    assert v.status is Status.FAIL
    assert v.evidence["offenders"][0]["replica_row"] == "r1"


def test_a_run_never_reaped_fails_once_the_bound_has_passed() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=90.0, end=100.0, outcome="info", error="eof")
    s.fault("kill", "r1", start=100.0)
    s.snapshot(300.0, [s.row("t1-a", rid, status="running", started=90.0)])
    v = bounded_recovery.check(s.context())
    assert v.status is Status.FAIL
    whys = [o.get("why", "") for o in v.evidence["offenders"]]
    assert any("not reaped" in w for w in whys) and any("row still present" in w for w in whys)


def test_a_final_snapshot_inside_the_bound_cannot_judge() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=90.0, end=100.0, outcome="info", error="eof")
    s.fault("kill", "r1", start=100.0)
    s.snapshot(130.0, [s.row("t1-a", rid, status="running", started=90.0)])
    v = bounded_recovery.check(s.context())
    assert v.status is Status.VACUOUS and v.evidence["unjudged"] == 2


# -- bounded_recovery: cancels (ack bound = 2 s timeout + 1 s margin) ---------------------


def _cancel(
    latency: float,
    classification: str = "acknowledged",
    fault_at: float | None = None,
    count: int = 1,
) -> HistoryBench:
    s = HistoryBench()
    rows = []
    for i in range(count):
        agent = f"t1-a{i}"
        rid = s.run(
            agent,
            start=100.0,
            end=100.0 + latency + 0.1,
            replica_id="r1",
            events=["session", "agent", "error"],
            stop_reason=None,
        )
        s.cancel(
            agent,
            start=100.0,
            end=100.0 + latency,
            via="r2",
            classification=classification,
            cancelled=classification == "acknowledged",
            response_reason=None if classification != "acknowledged" else "same",
        )
        rows.append(s.row(agent, rid, status="cancelled", stop_reason="chaos", completed=100.1))
    if fault_at is not None:
        s.fault("pause", "r1", start=fault_at, end=fault_at + 5.0)
    s.snapshot(200.0, rows)
    return s


@pytest.mark.parametrize(("latency", "status"), [(2.9, Status.PASS), (3.1, Status.FAIL)])
def test_cancel_ack_latency_edge(latency: float, status: Status) -> None:
    v = bounded_recovery.check(_cancel(latency).context())
    assert v.status is status, v
    if status is Status.FAIL:
        assert v.evidence["offenders"][0]["latency_s"] == latency


def test_owner_unreachable_from_a_healthy_owner_fails() -> None:
    v = bounded_recovery.check(_cancel(2.0, "owner_unreachable").context())
    assert v.status is Status.FAIL
    bad = v.evidence["offenders"][0]
    assert bad["owner"] == "r1" and bad["via"] == "r2" and "healthy" in bad["why"]


def test_owner_unreachable_after_a_recent_fault_is_not_judged() -> None:
    """The pause healed 25 s before the cancel: LISTEN may still be reconnecting (35 s)."""
    v = bounded_recovery.check(_cancel(2.0, "owner_unreachable", fault_at=70.0).context())
    assert v.status is Status.VACUOUS
    v = bounded_recovery.check(_cancel(2.0, "owner_unreachable", fault_at=50.0).context())
    assert v.status is Status.FAIL


@pytest.mark.parametrize(("count", "status"), [(19, Status.PASS), (20, Status.FAIL)])
def test_p99_is_judged_only_over_enough_samples(count: int, status: Status) -> None:
    s = _cancel(1.0, count=count)
    v = bounded_recovery.check(s.context(replace(s.params, ack_p99_bound_s=0.5)))
    assert v.status is status, v
    assert v.evidence["cancel_ack_s"]["p99_judged"] is (count >= 20)


def test_bounded_recovery_is_vacuous_with_nothing_to_time() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=1.0)
    s.snapshot(2.0, [s.row("t1-a", rid, completed=1.0)])
    assert bounded_recovery.check(s.context()).status is Status.VACUOUS


# -- load_spread ---------------------------------------------------------------------------


def _spread(owners: list[str], cancel_vias: tuple[str, ...] = ()) -> HistoryBench:
    s = HistoryBench()
    rows = []
    for i, owner in enumerate(owners):
        rid = s.run(f"t1-a{i}", start=0.0, end=1.0, replica_id=owner, circuit="c1")
        rows.append(s.row(f"t1-a{i}", rid, replica_id=owner, completed=1.0))
    for i, via in enumerate(cancel_vias):
        s.cancel(
            f"t1-a{i}",
            start=0.5,
            end=0.6,
            via=via,
            classification="already_terminal",
            cancelled=False,
            response_reason=None,
            status="completed",
        )
    s.snapshot(2.0, rows)
    return s


def test_load_spread_reports_counts_and_shares() -> None:
    v = load_spread.check(_spread(["r1", "r1", "r2"], ("r2", "r3")).context())
    assert v.status is Status.PASS
    assert v.evidence["runs_per_replica"] == {"r1": 2, "r2": 1}
    assert v.evidence["replicas_without_runs"] == ["r3"]
    assert v.evidence["cross_replica_cancel_share"] == 1.0
    assert v.evidence["cross_replica_circuit_share"] == 1.0


@pytest.mark.parametrize(("bound", "status"), [(0.6, Status.FAIL), (0.7, Status.PASS)])
def test_load_spread_fails_only_against_a_given_bound(bound: float, status: Status) -> None:
    s = _spread(["r1", "r1", "r2"])
    v = load_spread.check(s.context(replace(s.params, max_replica_share=bound)))
    assert v.status is status


def test_load_spread_min_cross_replica_cancel_share() -> None:
    s = _spread(["r1", "r2"], ("r1", "r2"))
    v = load_spread.check(s.context(replace(s.params, min_cross_replica_cancel_share=0.5)))
    assert v.status is Status.FAIL and "cancels share 0.0" in v.summary


def test_load_spread_vacuous_without_owners() -> None:
    s = HistoryBench()
    s.run("t1-a", start=0.0, end=1.0, replica_id=None)
    assert load_spread.check(s.context()).status is Status.VACUOUS


# -- cancel_classification -----------------------------------------------------------------


def test_known_classes_and_races_pass_and_are_counted() -> None:
    s = HistoryBench()
    s.cancel("t1-a", start=0.0, end=0.1)
    s.cancel(
        "t1-b",
        start=0.0,
        end=0.1,
        classification="already_terminal",
        cancelled=False,
        response_reason=None,
        status="completed",
    )
    s.cancel("t1-c", start=0.0, end=None)
    v = cancel_classification.check(s.context())
    assert v.status is Status.PASS
    assert v.evidence["classes"] == {"acknowledged": 1, "already_terminal": 1, "(no completion)": 1}


@pytest.mark.parametrize(
    ("classification", "cancelled", "outcome", "why"),
    [
        ("unknown", False, "ok", "classified unknown"),
        (None, True, "ok", "not classified"),
        ("weird", True, "ok", "not one of"),
        ("acknowledged", False, "ok", "cancelled=False"),
        ("unknown", None, "fail", "HTTP error"),
    ],
)
def test_unknown_or_inconsistent_classification_fails(
    classification: str | None, cancelled: bool | None, outcome: str, why: str
) -> None:
    s = HistoryBench()
    s.cancel(
        "t1-a",
        start=0.0,
        end=0.1,
        classification=classification,
        cancelled=cancelled,
        outcome=outcome,  # type: ignore[arg-type]
    )
    v = cancel_classification.check(s.context())
    assert v.status is Status.FAIL
    assert v.evidence["offenders"][0]["agent_id"] == "t1-a"
    assert why in v.evidence["offenders"][0]["why"]


def test_cancel_classification_vacuous_without_cancels() -> None:
    assert cancel_classification.check(HistoryBench().context()).status is Status.VACUOUS


# -- cancel_classification: 404 unknown_agent_id --------------------------------------------
def _not_found(sent_at: float) -> HistoryBench:
    """A cancel of t1-a sent at ``sent_at`` answered 404 unknown_agent_id (a fail record)."""
    s = HistoryBench()
    s.cancel(
        "t1-a",
        start=sent_at,
        end=sent_at + 0.01,
        classification="not_found",
        cancelled=None,
        outcome="fail",
    )
    return s


def test_not_found_before_the_run_exists_is_understood() -> None:
    s = _not_found(sent_at=10.0)
    # The run is admitted later (its start was waiting for a slot): rows from 20 s on.
    s.snapshot(20.0, [s.row("t1-a", "r_1", status="running", started=19.0)])
    s.audit([AuditRow(1, "runs", "insert", "r_1", None, {"agent_id": "t1-a"}, s.wall(19.0))])
    v = cancel_classification.check(s.context())
    assert v.status is Status.PASS and v.evidence["classes"] == {"(fail)": 1}


def test_not_found_for_a_run_a_snapshot_showed_before_fails() -> None:
    s = HistoryBench()
    s.snapshot(5.0, [s.row("t1-a", "r_1", status="running", started=4.0)])
    s.cancel(
        "t1-a", start=10.0, end=10.01, classification="not_found", cancelled=None, outcome="fail"
    )
    v = cancel_classification.check(s.context())
    assert v.status is Status.FAIL
    assert "existed 5.0s before the cancel" in v.evidence["offenders"][0]["why"]


def test_not_found_for_a_run_the_audit_log_inserted_before_fails() -> None:
    s = _not_found(sent_at=10.0)
    s.audit([AuditRow(1, "runs", "insert", "r_1", None, {"agent_id": "t1-a"}, s.wall(7.0))])
    v = cancel_classification.check(s.context())
    assert v.status is Status.FAIL and "existed 3.0s" in v.evidence["offenders"][0]["why"]
    # Within the clock slack (1 s) of the cancel: the lookup may have come first.
    s = _not_found(sent_at=10.0)
    s.audit([AuditRow(1, "runs", "insert", "r_1", None, {"agent_id": "t1-a"}, s.wall(9.5))])
    assert cancel_classification.check(s.context()).status is Status.PASS


def test_not_found_with_a_200_answer_fails() -> None:
    s = HistoryBench()
    s.cancel("t1-a", start=0.0, end=0.1, classification="not_found", cancelled=False)
    v = cancel_classification.check(s.context())
    assert v.status is Status.FAIL and "200 answer" in v.evidence["offenders"][0]["why"]
