"""The checkers' shared readers and the branches mutmut found untested.

Each test names the behaviour it holds; docs/mutation/checks.md lists the mutants it
kills.  Times follow the bench: mono seconds, database walls at ``WALL0 + mono``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from chaos.checks import (
    bounded_recovery,
    cancel_classification,
    load_spread,
    no_quota_leaks,
    no_silent_regressions,
    no_zombies,
    one_truth,
    terminal_is_final,
)
from chaos.checks.evidence import as_epoch, quantile
from chaos.checks.facts import _opt_int
from chaos.checks.offline import check_path
from chaos.checks.params import CheckParams, params_from_history, record_params
from chaos.checks.terminal_table import TerminalWords
from chaos.errors import SetupError
from chaos.record.vocabulary import AuditRow, ReplicaRow
from chaos.testing.bench import HistoryBench
from chaos.verdict import Status

PASS, FAIL, VACUOUS = Status.PASS, Status.FAIL, Status.VACUOUS

# -- evidence helpers ------------------------------------------------------------------


def test_quantile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert quantile(values, 0.99) == 99.0 and quantile(values, 0.5) == 50.0
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0 and quantile([7.0], 0.99) == 7.0
    with pytest.raises(ValueError, match=r"^quantile of no values$"):
        quantile([], 0.5)


def test_as_epoch_and_opt_int_refuse_booleans() -> None:
    assert as_epoch(True) is None and as_epoch(None) is None and as_epoch("x") is None
    assert as_epoch(3) == 3.0
    assert _opt_int(True) is None and _opt_int("5") is None and _opt_int(5) == 5


# -- how a client's run is read -----------------------------------------------------------


def _ended(end: str | None, outcome: str = "ok", **data: object) -> HistoryBench:
    s = HistoryBench()
    inv = s.at(0.0).history.invoke("start_run", "w0", "t1-a", user_id=None, via="r2")
    fields: dict[str, object] = {"run_id": "r_a", "replica_id": "r1", **data}
    if end is not None:
        fields["end"] = end
    s.at(2.0).history.complete(inv, outcome, **fields)  # type: ignore[arg-type]
    return s


@pytest.mark.parametrize(
    ("end", "outcome", "data", "done", "error"),
    [
        ("done", "ok", {"events": [{"type": "error"}]}, True, False),
        ("error", "ok", {"stop_reason": "end_turn", "events": [{"type": "done"}]}, False, True),
        ("done", "info", {}, False, False),
        ("error", "info", {}, False, False),
        (None, "ok", {"stop_reason": "end_turn"}, True, False),  # done known by its reason
        (None, "ok", {"events": [{"type": "done"}]}, True, False),
        (None, "ok", {"error": "boom"}, False, True),  # no done: the error ended it
        (None, "ok", {"stop_reason": "end_turn", "error": "late"}, True, False),
        (None, "ok", {}, False, False),
    ],
)
def test_how_the_stream_ended(
    end: str | None, outcome: str, data: dict[str, object], done: bool, error: bool
) -> None:
    run = _ended(end, outcome, **data).context().client_runs[0]
    assert (run.got_done, run.got_error) == (done, error)
    assert run.done_stop_reason == (data.get("stop_reason") if done else None)
    assert run.via == "r2" and run.invoke_index == 0 and run.cut is False


def test_a_code_and_status_count_only_on_a_refused_start() -> None:
    ok = _ended("done", "ok", code="x", status=500).context().client_runs[0]
    assert ok.code is None and ok.http_status is None
    refused = _ended(None, "fail", code="x", status=500).context().client_runs[0]
    assert refused.code == "x" and refused.http_status == 500


def test_a_cancel_call_keeps_the_response() -> None:
    s = HistoryBench()
    s.cancel("t1-a", start=1.0, end=1.2, cancelled=None, status="running")
    inv = s.at(2.0).history.invoke("cancel", "canceller", None, via="r1", reason=None)
    s.at(2.1).history.complete(inv, "ok", cancelled=False)
    first, second = s.context().cancels
    assert first.cancelled is None and first.response_status == "running"
    assert first.invoke_index == 0 and second.agent_id == ""


def test_a_run_of_no_agent_id_and_scope_by_prefix() -> None:
    s = HistoryBench()
    inv = s.at(0.0).history.invoke("start_run", "w0", None, user_id=None)
    s.at(1.0).history.complete(inv, "ok", run_id="r_x")
    ctx = s.context(replace(s.params, test_prefix="X"))
    assert ctx.client_runs[0].agent_id == "" and not ctx.in_scope(None)


def test_row_for_matches_by_run_id_else_by_the_one_row_of_the_agent() -> None:
    s = HistoryBench()
    s.run("t1-a", start=0.0, end=1.0, run_id="r_gone")
    s.run("t1-b", start=0.0, end=1.0, outcome="info", run_id=None, error="eof")
    s.run("t1-c", start=0.0, end=1.0, outcome="info", run_id=None, error="eof")
    rows = [
        s.row("t1-a", "r_other", completed=1.0),
        s.row("t1-b", "r_b", completed=1.0),
        s.row("t1-c", "r_c1", completed=1.0),
        s.row("t1-c", "r_c2", completed=1.0),
    ]
    s.snapshot(2.0, rows)
    ctx = s.context()
    a, b, c = ctx.client_runs
    assert ctx.row_for(a) is None and ctx.row_for(c) is None
    assert ctx.row_for(b) == rows[1]


def test_terminal_transition_from_audit_then_completed_at_then_snapshot() -> None:
    s = HistoryBench()
    s.audit(
        [
            AuditRow(1, "runs", "delete", "r_a", None, {"status": "failed"}, s.wall(1.0)),
            AuditRow(2, "runs", "update", "r_a", {}, {"status": "running"}, s.wall(2.0)),
            AuditRow(3, "runs", "update", "r_a", {}, None, s.wall(2.5)),
            AuditRow(4, "runs", "insert", "r_a", None, {"status": "failed"}, s.wall(3.0)),
        ]
    )
    s.snapshot(4.0, [s.row("t1-b", "r_b", status="failed", error="x", completed=None)])
    s.snapshot(5.0, [s.row("t1-c", "r_c", completed=4.5), s.row("t1-d", "r_d", status="running")])
    ctx = s.context()
    assert ctx.terminal_transition_wall("r_a") == (s.wall(3.0), "audit")
    assert ctx.terminal_transition_wall("r_b") == (s.wall(4.0), "snapshot")
    assert ctx.terminal_transition_wall("r_c") == (s.wall(4.5), "completed_at")
    assert ctx.terminal_transition_wall("r_d") is None


# -- no_zombies --------------------------------------------------------------------------


def _zombie_why(probe_replica: str, live: bool, replicas: tuple[str, ...]) -> str:
    s = HistoryBench()
    s.run("t1-a", start=0.0, end=None, run_id="r_a")
    row = s.row("t1-a", "r_a", status="running", replica_id="r2")
    s.snapshot(10.0, [row], replicas=replicas)
    s.live_probe(10.0, row, live=live, replica_id=probe_replica)
    v = no_zombies.check(s.context())
    return "" if v.status is PASS else str(v.evidence["zombies"][0]["why"])


def test_a_zombie_says_why() -> None:
    assert _zombie_why("r2", True, ("r1", "r2")) == ""  # a probe at the snapshot counts
    assert _zombie_why("r3", True, ("r2",)) == "the probe names 'r3', not the owner 'r2'"
    assert _zombie_why("r2", False, ("r2",)) == "the owner does not serve it (live=false)"
    assert _zombie_why("r2", True, ("r1",)) == (
        "the owner has no replicas row in the final snapshot"
    )


def test_live_runs_listed_up_to_the_evidence_limit() -> None:
    s = HistoryBench()
    rows = [s.row(f"t1-{i}", f"r_{i}", status="running") for i in range(3)]
    s.snapshot(10.0, rows)
    for row in rows:
        s.live_probe(10.5, row)
    v = no_zombies.check(s.context(replace(s.params, evidence_limit=2)))
    assert v.status is PASS and v.evidence["running_and_live"] == ["r_0", "r_1"]


# -- no_quota_leaks ----------------------------------------------------------------------


def _quota_bench() -> HistoryBench:
    s = HistoryBench()
    s.run("t1-a", start=1.0, end=10.0, user_id="t1-u", admitted=1.0)
    return s


def test_a_user_surely_holding_a_slot_without_a_quota_row_is_judged_at_zero() -> None:
    s = _quota_bench()
    s.snapshot(5.0, [], quotas={"t1-v": 1})
    s.run("t1-b", start=4.0, end=6.0, user_id="t1-v")
    s.snapshot(200.0, [], quotas={})
    v = no_quota_leaks.check(s.context())
    assert v.status is FAIL
    bad = v.evidence["out_of_bounds"][0]
    assert (bad["user_id"], bad["active_count"], bad["lower"]) == ("t1-u", 0, 1)


def test_all_zero_counts_are_vacuous_and_unscoped_runs_are_not_counted() -> None:
    s = _quota_bench()
    s.snapshot(5.0, [], quotas={"t1-u": 0})
    assert no_quota_leaks.check(s.context()).status is VACUOUS
    s2 = HistoryBench()
    s2.run("zz-a", start=1.0, end=10.0, user_id="zz-u", admitted=1.0)
    s2.run("t1-n", start=1.0, end=10.0, user_id=None, admitted=1.0)
    s2.run("t1-b", start=1.0, end=10.0, user_id="t1-v", admitted=1.0)
    s2.snapshot(5.0, [], quotas={"t1-v": 1})
    s2.snapshot(200.0, [], quotas={})
    assert no_quota_leaks.check(s2.context()).status is PASS


def test_a_run_admitted_for_exactly_two_slacks_surely_held_its_slot_at_the_midpoint() -> None:
    s = HistoryBench()
    s.run("t1-a", start=1.0, end=2.0, user_id="t1-u", admitted=1.0)
    s.snapshot(1.2, [], quotas={"t1-u": 1})
    s.snapshot(1.5, [], quotas={"t1-u": 0})
    s.snapshot(200.0, [], quotas={})
    v = no_quota_leaks.check(s.context())
    assert v.status is FAIL and v.evidence["out_of_bounds"][0]["sample_mono"] == 1.5


def test_quiescence_counts_missing_rows_as_zero() -> None:
    s = _quota_bench()
    s.snapshot(5.0, [], quotas={"t1-u": 1})
    s.run("t1-b", start=20.0, end=None, user_id="t1-w", run_id="r_b")
    s.snapshot(200.0, [s.row("t1-b", "r_b", user_id="t1-w", status="running")], quotas={})
    v = no_quota_leaks.check(s.context())
    assert v.status is FAIL
    assert v.evidence["quiescence"] == [
        {"user_id": "t1-w", "active_count": 0, "running_runs": 1, "final_snapshot_mono": 200.0}
    ]


def test_runs_near_a_failing_sample_span_the_grace_both_ways() -> None:
    s = HistoryBench()
    s.run("t1-early", start=0.0, end=45.0, user_id="t1-u", admitted=0.0)
    s.run("t1-late", start=55.0, end=60.0, user_id="t1-u")
    s.run("t1-out", start=55.01, end=60.0, user_id="t1-u")
    s.run("t1-gone", start=0.0, end=44.99, user_id="t1-u")
    for i in range(12):
        s.run(f"t1-n{i:02}", start=49.0, end=51.0, user_id="t1-u", admitted=49.0)
    s.snapshot(50.0, [], quotas={"t1-u": 99})
    s.snapshot(200.0, [], quotas={})
    v = no_quota_leaks.check(s.context())
    near = v.evidence["out_of_bounds"][0]["runs_near"]
    assert near[:2] == ["t1-early", "t1-late"] and len(near) == 10


# -- no_silent_regressions -------------------------------------------------------------


def _circuit(s: HistoryBench, cid: str, user: str | None, rows: bool = True) -> list[object]:
    out = []
    for role in ("r", "e", "v"):
        agent = f"t1-{role}-{cid}-{user}"
        rid = s.run(agent, start=0.0, end=3.0, circuit=cid, user_id=user)
        if rows:
            out.append(s.row(agent, rid, user_id=user, completed=3.0))
    return out


def test_bad_circuits_are_listed_by_circuit_then_user() -> None:
    s = HistoryBench()
    rows = _circuit(s, "c2", None) + _circuit(s, "c1", "t1-b") + _circuit(s, "c1", "A")
    rows += _circuit(s, "c1", None)
    s.snapshot(5.0, rows)  # type: ignore[arg-type]
    v = no_silent_regressions.check(s.context())
    order = [(c["circuit"], c["user_id"]) for c in v.evidence["circuits"]]
    assert order == [("c1", None), ("c1", "A"), ("c1", "t1-b"), ("c2", None)]


def test_an_unfinished_circuit_does_not_stop_the_others_being_judged() -> None:
    s = HistoryBench()
    partial = _circuit(s, "c1", None)[:2]
    s.snapshot(5.0, partial + _circuit(s, "c2", None))  # type: ignore[operator]
    v = no_silent_regressions.check(s.context())
    assert v.status is FAIL and [c["circuit"] for c in v.evidence["circuits"]] == ["c2"]


@pytest.mark.parametrize(
    ("score", "status"),
    [("0.5", PASS), ("0.99", PASS), ("0.49", FAIL), ("0.991", FAIL), ("1.5", FAIL)],
)
def test_a_scored_output_as_json_text_is_judged_inclusively(score: str, status: Status) -> None:
    s = HistoryBench()
    s.snapshot(5.0, _circuit(s, "c1", None))  # type: ignore[arg-type]
    s.circuit_outputs(
        "c1",
        {
            "c1-research": "a",
            "c1-research-edited": "b",
            "c1-research-scored": f'{{"score": {score}}}',
        },
    )
    assert no_silent_regressions.check(s.context()).status is status


def test_no_score_range_means_any_score() -> None:
    s = HistoryBench()
    s.snapshot(5.0, _circuit(s, "c1", None))  # type: ignore[arg-type]
    s.circuit_outputs(
        "c1", {"c1-research": "a", "c1-research-edited": "b", "c1-research-scored": {"score": 7}}
    )
    v = no_silent_regressions.check(s.context(replace(s.params, circuit_score_range=None)))
    assert v.status is PASS


def test_unverifiable_runs_are_counted_and_do_not_stop_the_others() -> None:
    s = HistoryBench()
    rows = []
    for i in range(2):
        rid = s.run(f"t1-u{i}", start=0.0, end=1.0, outcome="info", error="eof")
        rows.append(s.row(f"t1-u{i}", rid, completed=1.0))
    rid = s.run("t1-ok", start=0.0, end=1.0)
    rows.append(s.row("t1-ok", rid, completed=1.0))
    s.snapshot(2.0, rows)
    v = no_silent_regressions.check(s.context())
    assert v.status is PASS and (v.evidence["verified"], v.evidence["unverifiable"]) == (1, 2)
    s.snapshot(3.0, rows[:2])
    v = no_silent_regressions.check(s.context())
    assert v.invariant == "no_silent_regressions" and v.summary == (
        "2 completed runs but none could be verified "
        "(no client saw its stream end, no events table read)"
    )


# -- one_truth, bounded_recovery, load_spread, cancel_classification ---------------------


def test_a_client_without_a_row_does_not_stop_the_comparison() -> None:
    s = HistoryBench()
    s.run("t1-a", start=0.0, end=1.0)
    rid = s.run("t1-b", start=0.0, end=1.0)
    s.snapshot(2.0, [s.row("t1-b", rid, status="failed", error="x", completed=1.0)])
    assert one_truth.check(s.context()).status is FAIL


def test_a_cancel_is_timed_against_the_owner_the_database_names() -> None:
    """The client was told r2, the row says r1: a pause of r2 does not excuse a slow ack."""
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=50.0, replica_id="r2")
    s.fault("pause", "r2", start=38.0, end=39.0)
    s.cancel("t1-a", start=40.0, end=45.0, via="r3")
    s.snapshot(60.0, [s.row("t1-a", rid, replica_id="r1", completed=50.0)])
    assert bounded_recovery.check(s.context()).status is FAIL


def test_cancels_after_an_unjudged_one_are_still_judged() -> None:
    s = HistoryBench()
    s.run("t1-a", start=0.0, end=50.0)
    s.cancel("t1-zz", start=30.0, end=31.0)  # no owner known
    s.cancel("t1-a", start=35.0, end=None)  # no answer
    s.fault("pause", "r3", start=36.0, end=37.0)
    s.cancel("t1-a", start=38.0, end=38.1, via="r3")  # excused by the fault on r3
    s.cancel("t1-a", start=40.0, end=45.0, via="r2")
    s.snapshot(60.0, [])
    v = bounded_recovery.check(s.context())
    assert v.status is FAIL and v.evidence["offenders"][0]["latency_s"] == 5.0


@pytest.mark.parametrize(("p99", "status"), [(0.5, PASS), (0.5 - 0.01, FAIL)])
def test_ack_p99_equal_to_its_bound_passes(p99: float, status: Status) -> None:
    s = HistoryBench()
    for i in range(20):
        s.run(f"t1-{i}", start=0.0, end=50.0)
        s.cancel(f"t1-{i}", start=40.0, end=40.5)
    s.snapshot(60.0, [])
    assert (
        bounded_recovery.check(s.context(replace(s.params, ack_p99_bound_s=p99))).status is status
    )


def test_unjudged_reaps_add_up_over_runs_and_kills() -> None:
    s = HistoryBench()
    for agent in ("t1-a", "t1-b"):
        s.run(agent, start=0.0, end=5.0, outcome="info", error="eof")
    s.run("t1-c", start=0.0, end=5.0, outcome="info", error="eof", replica_id="r2")
    s.fault("kill", "r1", start=5.0)
    s.fault("kill", "r2", start=5.0)
    rows = [s.row(a, f"r_000{i + 1}", status="running") for i, a in enumerate(("t1-a", "t1-b"))]
    rows.append(s.row("t1-c", "r_0003", status="running", replica_id="r2"))
    s.snapshot(20.0, rows, replicas=("r3",))
    assert bounded_recovery.check(s.context()).evidence["unjudged"] == 3


def test_a_row_the_final_snapshot_shows_running_is_not_reaped_whatever_the_audit_says() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=5.0, outcome="info", error="eof") or ""
    s.fault("kill", "r1", start=5.0)
    s.audit([AuditRow(1, "runs", "update", rid, {}, {"status": "failed"}, s.wall(30.0))])
    s.snapshot(200.0, [s.row("t1-a", rid, status="running")], replicas=("r2",))
    v = bounded_recovery.check(s.context())
    assert v.status is FAIL and v.evidence["reap_s"] == {"n": 0}


@pytest.mark.parametrize(
    ("replica", "deleted_s"),
    [
        (ReplicaRow("r1", None, None), 45.0),  # no start time: the old process, still there
        (ReplicaRow("r1", 5.0, None), 45.0),  # started at the kill itself: the old process
    ],
)
def test_a_replica_row_deletion_is_timed_by_the_first_snapshot_without_it(
    replica: ReplicaRow, deleted_s: float
) -> None:
    s = HistoryBench()
    s.snapshot(1.0, [], replicas=("r1",))
    s.fault("kill", "r1", start=5.0)
    started = None if replica.started_at is None else s.wall(replica.started_at)
    s.snapshot(5.0, [], replicas=(replace(replica, started_at=started),))
    s.snapshot(50.0, [], replicas=("r2",))
    v = bounded_recovery.check(s.context())
    assert v.evidence["replica_row_deleted_s"]["max"] == deleted_s


def test_a_replica_row_started_at_the_kill_is_still_the_killed_process() -> None:
    s = HistoryBench()
    s.fault("kill", "r1", start=5.0)
    s.snapshot(100.0, [], replicas=(ReplicaRow("r1", s.wall(5.0), None),))
    v = bounded_recovery.check(s.context())
    assert v.status is FAIL and v.evidence["offenders"][0]["replica_row"] == "r1"


def test_load_spread_bounds_are_inclusive_and_a_missing_share_fails() -> None:
    s = HistoryBench()
    s.run("t1-a", start=0.0, end=1.0, replica_id="r1")
    s.run("t1-b", start=0.0, end=1.0, replica_id="r2")
    s.cancel("t1-a", start=0.5, end=0.6, via="r2")
    s.cancel("t1-b", start=0.5, end=0.6, via="r2")
    ok = replace(s.params, max_replica_share=0.5, min_cross_replica_cancel_share=0.5)
    assert load_spread.check(s.context(ok)).status is PASS
    no_circuit = replace(s.params, min_cross_replica_circuit_share=0.1)
    v = load_spread.check(s.context(no_circuit))
    assert v.status is FAIL and v.summary == "cross-replica circuits share None below 0.1"


def test_cancel_classes_count_every_cancel_and_no_cancel_is_vacuous() -> None:
    s = HistoryBench()
    assert cancel_classification.check(s.context()).summary == "no cancel was sent"
    s.cancel("t1-a", start=0.0, end=1.0, outcome="info", classification=None)
    s.cancel("t1-a", start=2.0, end=3.0, outcome="info", classification=None)
    v = cancel_classification.check(s.context())
    assert v.evidence["classes"] == {"(info)": 2}


# -- second pass: the survivors of the first ------------------------------------------


def test_offline_errors_say_what_to_pass_and_params_override(tmp_path: Path) -> None:
    with pytest.raises(SetupError) as err:
        check_path(tmp_path)
    assert str(err.value) == (
        f"{tmp_path} is a directory without history.jsonl: pass the file itself "
        "or a scenario's artifact directory"
    )
    s = HistoryBench()
    s.run("t1-a", start=0.0, end=1.0)
    s.cancel("t1-a", start=0.5, end=0.6, via="r2")
    path = tmp_path / "h.jsonl"
    with path.open("w", encoding="utf-8") as fp:
        s.context().history.dump(fp)
    shares = replace(s.params, min_cross_replica_cancel_share=1.01)
    by_name = {v.invariant: v for v in check_path(path, shares)}
    assert by_name["load_spread"].status is FAIL


def test_a_malformed_note_is_one_line(tmp_path: Path) -> None:
    s = HistoryBench()
    s.history.snapshot("db", [{"run_id": "r_a"}], at_mono=1.0, at_wall=1.0)
    path = tmp_path / "h.jsonl"
    with path.open("w", encoding="utf-8") as fp:
        s.history.dump(fp)
    with pytest.raises(SetupError) as err:
        check_path(path)
    assert str(err.value).startswith(f"{path}: a snapshot, audit or params note is malformed: ")


def test_params_round_trip_keeps_lists_and_the_last_params_note() -> None:
    assert CheckParams(replica_ids=("r1",)).to_dict()["replica_ids"] == ["r1"]
    assert CheckParams.from_dict({"zz_unknown": 1, "per_user_cap": 3}).per_user_cap == 3
    s = HistoryBench()
    record_params(s.history, replace(s.params, per_user_cap=7))
    s.history.note("something_else", per_user_cap=1)
    found = params_from_history(s.history)
    assert found is not None and found.per_user_cap == 7


def test_a_circuits_outputs_read_without_a_user_serve_every_user() -> None:
    s = HistoryBench()
    s.snapshot(5.0, _circuit(s, "c1", "t1-u"))  # type: ignore[arg-type]
    s.circuit_outputs(
        "c1", {"c1-research": "a", "c1-research-edited": "b", "c1-research-scored": "c"}
    )
    assert no_silent_regressions.check(s.context()).status is PASS


def test_a_quota_row_of_zero_at_quiescence_is_fine() -> None:
    s = _quota_bench()
    s.snapshot(5.0, [], quotas={"t1-u": 1})
    s.snapshot(200.0, [], quotas={"t1-u": 0})
    assert no_quota_leaks.check(s.context()).status is PASS


@pytest.mark.parametrize(
    ("fault", "windows"),
    [((39.5, 39.9), []), ((38.0, 41.0), ["pause"]), ((50.0, 90.0), ["pause"])],
)
def test_a_quota_offender_cites_the_faults_of_the_minute_before(
    fault: tuple[float, float], windows: list[str]
) -> None:
    s = HistoryBench()
    s.fault("pause", "r2", start=fault[0], end=fault[1])
    s.run("t1-a", start=99.0, end=101.0, user_id="t1-u")
    s.snapshot(100.12345, [], quotas={"t1-u": 9})
    s.snapshot(200.0, [], quotas={})
    v = no_quota_leaks.check(s.context())
    assert [w.name for w in v.fault_windows] == windows
    assert v.evidence["out_of_bounds"][0]["sample_mono"] == 100.123


def test_a_deletion_seen_by_a_snapshot_at_the_kill_counts() -> None:
    s = HistoryBench()
    s.fault("kill", "r1", start=5.0)
    s.snapshot(5.0, [], replicas=("r2",))
    s.snapshot(200.0, [], replicas=("r2",))
    v = bounded_recovery.check(s.context())
    assert v.evidence["replica_row_deleted_s"]["max"] == 0.0


def test_a_late_deletion_seen_by_a_snapshot_names_its_source() -> None:
    s = HistoryBench()
    s.fault("kill", "r1", start=5.0)
    s.snapshot(100.0, [], replicas=("r2",))
    v = bounded_recovery.check(s.context())
    assert v.evidence["offenders"][0]["source"] == "snapshot"


def test_a_fault_starting_as_the_cancel_returns_excuses_it() -> None:
    s = HistoryBench()
    s.run("t1-a", start=0.0, end=50.0)
    s.fault("pause", "r1", start=45.0, end=46.0)
    s.cancel("t1-a", start=40.0, end=45.0)
    s.snapshot(60.0, [])
    assert bounded_recovery.check(s.context()).status is VACUOUS


def test_a_row_changed_between_snapshots_is_judged_when_its_user_is_the_tests() -> None:
    s = HistoryBench()
    row = s.row("x-a", "r_x", user_id="t1-u", completed=2.0)
    s.snapshot(3.0, [row])
    s.snapshot(4.0, [replace(row, status="failed")])
    assert terminal_is_final.check(s.context()).status is FAIL


def test_a_quota_failure_cites_the_faults_near_its_samples_first() -> None:
    s = HistoryBench()
    s.fault("pause", "r1", start=1.0, end=2.0)
    s.fault("pause", "r2", start=90.0, end=95.0)
    s.run("t1-a", start=99.0, end=101.0, user_id="t1-u")
    s.snapshot(100.0, [], quotas={"t1-u": 9})
    s.snapshot(200.0, [], quotas={"t1-u": 1})
    v = no_quota_leaks.check(s.context())
    assert [w.target for w in v.fault_windows] == ["r2", "r1"]


def test_an_unreadable_history_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: Path, params: object = None) -> None:
        raise PermissionError("no access")

    path = tmp_path / "h.jsonl"
    path.write_text("", encoding="utf-8")
    monkeypatch.setattr("chaos.checks.offline.context_from_path", refuse)
    with pytest.raises(SetupError) as err:
        check_path(path)
    assert str(err.value) == f"cannot read {path}: no access"


def test_a_replica_whose_share_rounds_to_zero_is_not_the_top_one() -> None:
    """Shares are rounded to 4 places: one run in 20 001 is a share of 0.0, which must
    still rank last, or a 99.995 % owner would hide behind it."""
    s = HistoryBench()
    rows = [s.row("t1-a", "r_a", replica_id="r1", completed=1.0)]
    rows += [s.row(f"t1-{i}", f"r_{i}", replica_id="r2", completed=1.0) for i in range(20_000)]
    s.snapshot(2.0, rows)
    v = load_spread.check(s.context(replace(s.params, max_replica_share=0.9)))
    assert v.status is FAIL and v.evidence["share_per_replica"] == {"r1": 0.0, "r2": 1.0}


def test_terminal_words_from_a_mapping_keep_known_words_and_refuse_other_types() -> None:
    words = TerminalWords.from_value({"replica_died": "gone", "zz_newer_suite": "x"})
    assert words.replica_died == "gone" and words.owner_dead == "owner_replica_dead"
    with pytest.raises(TypeError, match=r"^terminal words must be a mapping, got list$"):
        TerminalWords.from_value([])
