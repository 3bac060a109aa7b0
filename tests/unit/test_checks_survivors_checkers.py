"""Checker survivors of the typed-row and streamed-path mutation run (and of the new
``not_found`` class): rows of agents the driver never started, a run id told to another
agent, an acknowledged cancel when its agent has two rows, how many runs the audit log
shows ending, and when a run of a cancelled agent is first known to exist.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from chaos.checks import cancel_classification, nothing_lost, terminal_is_final
from chaos.checks import stop_reason_fits_cause as stop_reason
from chaos.checks.cancel_classification import first_seen
from chaos.checks.grouped import Grouped
from chaos.record.vocabulary import AuditRow
from chaos.testing.bench import HistoryBench
from chaos.verdict import Status


# -- nothing_lost ---------------------------------------------------------------------------
def test_a_run_id_told_to_another_agent_does_not_explain_a_row() -> None:
    """The database holds run r_b under t1-a, an agent id the driver never started, while
    the driver was told r_b for t1-b: a phantom (t1-b's run is found by its run id)."""
    s = HistoryBench()
    s.run("t1-b", start=0.0, end=2.0, run_id="r_b")
    s.snapshot(5.0, [s.row("t1-a", "r_b", completed=2.0)])
    v = nothing_lost.check(s.context())
    assert v.status is Status.FAIL
    assert v.evidence["lost_count"] == 0 and v.evidence["phantom_count"] == 1
    (phantom,) = v.evidence["phantoms"]
    assert phantom["agent_id"] == "t1-a" and phantom["run_id"] == "r_b"
    assert phantom["why"] == "the driver never started this agent id"


# -- stop_reason_fits_cause -----------------------------------------------------------------
def test_a_row_of_an_agent_the_driver_never_started_fits_an_acknowledged_cancel() -> None:
    """nothing_lost reports such a row; this checker still judges it by its causes."""
    s = HistoryBench()
    s.cancel("t1-x", start=3.0, end=3.05, reason="please stop")
    s.snapshot(
        10.0,
        [s.row("t1-x", "r_x", status="cancelled", stop_reason="please stop", completed=3.02)],
    )
    v = stop_reason.check(s.context())
    assert v.status is Status.PASS, v


def test_a_row_of_an_agent_the_driver_never_started_fails_when_no_cause_fits() -> None:
    s = HistoryBench()
    s.snapshot(
        10.0, [s.row("t1-y", "r_y", status="failed", stop_reason=None, error="boom", completed=4)]
    )
    v = stop_reason.check(s.context())
    assert v.status is Status.FAIL
    (bad,) = v.evidence["offenders"]
    assert bad["run_id"] == "r_y" and bad["causes"] == ["ran to the end"]


@pytest.mark.parametrize(("done_at", "status"), [(6.0, Status.FAIL), (3.1, Status.PASS)])
def test_an_ack_binds_the_run_whose_id_the_client_was_told_even_beside_a_second_row(
    done_at: float, status: Status
) -> None:
    """t1-a has two rows (its run and a 409 collision's failed row): the acknowledged cancel
    is still about the run whose id the client was told, so that run may end completed
    only if its done came within the finish window of the ack."""
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=done_at)
    s.run("t1-a", start=0.5, end=0.6, outcome="fail", status=409, code="agent_id_in_use")
    s.cancel("t1-a", start=3.0, end=3.05)
    collision = s.row("t1-a", "r_coll", status="failed", error="agent id in use", completed=0.6)
    s.snapshot(10.0, [s.row("t1-a", rid, completed=done_at), collision])
    v = stop_reason.check(s.context(replace(s.params, cancel_finish_window_s=1.0)))
    assert v.status is status, v
    if status is Status.FAIL:
        assert [b["run_id"] for b in v.evidence["offenders"]] == [rid]


def test_ends_that_print_alike_are_counted_together() -> None:
    """``ends`` is keyed by the printed ``status/stop_reason``: a missing stop reason and
    the text "None" are one key, and the key counts both rows."""
    s = HistoryBench()
    rows = [
        s.row("t1-a", "r_a", status="failed", stop_reason=None, error="boom", completed=2.0),
        s.row("t1-b", "r_b", status="failed", stop_reason="None", error="boom", completed=2.0),
    ]
    s.snapshot(10.0, rows)
    assert stop_reason.check(s.context()).evidence["ends"] == {"failed/None": 2}


# -- terminal_is_final ----------------------------------------------------------------------
def test_the_audit_log_counts_every_run_it_shows_ending() -> None:
    s = HistoryBench()
    running = {"status": "running", "completed_at": None}
    rows = []
    for k, run_id in enumerate(("r_1", "r_2", "r_3")):
        done = {"status": "completed", "completed_at": s.wall(2.0)}
        rows.append(AuditRow(2 * k + 1, "runs", "insert", run_id, None, running, s.wall(1.0)))
        rows.append(AuditRow(2 * k + 2, "runs", "update", run_id, running, done, s.wall(2.0)))
    s.audit(rows)
    v = terminal_is_final.check(s.context())
    assert v.status is Status.PASS and v.evidence["audited_terminal_runs"] == 3


# -- cancel_classification: not_found and first_seen ----------------------------------------
def _not_found(s: HistoryBench, agent: str, sent_at: float) -> None:
    s.cancel(
        agent,
        start=sent_at,
        end=sent_at + 0.01,
        classification="not_found",
        cancelled=None,
        outcome="fail",
    )


def _insert(seq: int, run_id: str, agent: str, at: float) -> AuditRow:
    return AuditRow(seq, "runs", "insert", run_id, None, {"agent_id": agent}, at)


def test_not_found_with_a_200_answer_says_so() -> None:
    s = HistoryBench()
    s.cancel("t1-a", start=0.0, end=0.1, classification="not_found", cancelled=False)
    (bad,) = cancel_classification.check(s.context()).evidence["offenders"]
    assert bad["why"] == "classified not_found with a 200 answer"


@pytest.mark.parametrize(("seen_at", "status"), [(9.0, Status.PASS), (8.99, Status.FAIL)])
def test_not_found_may_come_up_to_the_clock_slack_after_the_run_is_seen(
    seen_at: float, status: Status
) -> None:
    s = HistoryBench()
    s.snapshot(seen_at, [s.row("t1-a", "r_1", status="running", started=seen_at)])
    _not_found(s, "t1-a", sent_at=10.0)  # clock slack 1 s: 9.0 is the bound itself
    assert cancel_classification.check(s.context()).status is status


def test_a_run_is_first_seen_in_the_earliest_snapshot_that_shows_it() -> None:
    s = HistoryBench()
    s.snapshot(2.0, [s.row("t1-a", "r_1", status="running", started=1.0)])
    s.snapshot(9.5, [s.row("t1-a", "r_1", status="running", started=1.0)])
    _not_found(s, "t1-a", sent_at=10.0)
    v = cancel_classification.check(s.context())
    assert v.status is Status.FAIL and "existed 8.0s" in v.evidence["offenders"][0]["why"]


def test_an_agent_is_first_seen_at_its_earliest_insert_wherever_it_is_in_the_log() -> None:
    """A reused agent id has two inserts, and other tables' rows come between: the first
    insert counts (here 7 s before the cancel, where the second is within the slack)."""
    s = HistoryBench()
    s.audit(
        [
            AuditRow(1, "replicas", "update", "r1", {"n": 1}, {"n": 2}, s.wall(0.5)),
            _insert(2, "r_1", "t1-a", s.wall(3.0)),
            _insert(3, "r_2", "t1-a", s.wall(9.5)),
        ]
    )
    _not_found(s, "t1-a", sent_at=10.0)
    v = cancel_classification.check(s.context())
    assert v.status is Status.FAIL and "existed 7.0s" in v.evidence["offenders"][0]["why"]


def test_first_seen_answers_only_for_the_agents_asked_about() -> None:
    s = HistoryBench()
    s.snapshot(2.0, [s.row("t1-a", "r_1", status="running"), s.row("t1-b", "r_2")])
    s.audit([_insert(1, "r_1", "t1-a", s.wall(1.5)), _insert(2, "r_3", "t1-c", s.wall(1.0))])
    ctx = s.context()
    assert first_seen(ctx, {"t1-a"}) == {"t1-a": 1.5}
    assert first_seen(ctx, set()) == {}


# -- grouped --------------------------------------------------------------------------------
def test_grouped_shows_itself_as_its_dict_of_lists() -> None:
    grouped = Grouped([("a", 1), ("b", 2), ("a", 3)], lambda item: item[0])
    assert repr(grouped) == "Grouped({'a': [('a', 1), ('a', 3)], 'b': [('b', 2)]})"
