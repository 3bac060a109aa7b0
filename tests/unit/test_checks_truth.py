"""terminal_is_final, nothing_lost, one_truth and no_silent_regressions."""

from __future__ import annotations

import pytest

from chaos.checks import no_silent_regressions, nothing_lost, one_truth, terminal_is_final
from chaos.record.vocabulary import AuditRow, RunRow
from chaos.testing.bench import HistoryBench
from chaos.verdict import Status

# -- terminal_is_final -------------------------------------------------------------------


def test_terminal_rows_seen_unchanged_pass() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=2.0)
    s.snapshot(3.0, [s.row("t1-a", rid, completed=2.0)])
    s.snapshot(9.0, [s.row("t1-a", rid, completed=2.0)])
    v = terminal_is_final.check(s.context())
    assert v.status is Status.PASS and v.evidence["snapshot_reobservations"] == 1


def test_a_terminal_row_that_changes_between_snapshots_fails() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=5.0, outcome="info", error="eof")
    s.snapshot(
        3.0,
        [s.row("t1-a", rid, status="cancelled", stop_reason="client disconnected", completed=2.0)],
    )
    s.snapshot(
        90.0,
        [
            s.row(
                "t1-a",
                rid,
                status="failed",
                stop_reason="replica_died",
                error="owner replica died",
                completed=80.0,
            )
        ],
    )
    v = terminal_is_final.check(s.context())
    assert v.status is Status.FAIL
    bad = v.evidence["offenders"][0]
    assert bad["run_id"] == rid and bad["was"][0] == "cancelled" and bad["now"][0] == "failed"
    assert v.evidence["history"][rid][0]["op"] == "start_run"


def test_an_audit_update_of_a_terminal_row_fails() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=2.0) or ""
    s.snapshot(3.0, [s.row("t1-a", rid, completed=2.0)])
    s.audit(
        [
            AuditRow(
                1,
                "runs",
                "update",
                rid,
                {"status": "running", "completed_at": None},
                {"status": "completed", "completed_at": 2.0},
                s.wall(2.0),
            ),
            AuditRow(
                2,
                "runs",
                "update",
                rid,
                {"status": "completed", "completed_at": 2.0},
                {"status": "failed", "completed_at": 2.0},
                s.wall(70.0),
            ),
        ]
    )
    v = terminal_is_final.check(s.context())
    assert v.status is Status.FAIL
    assert v.evidence["offenders"][0]["seq"] == 2
    assert v.evidence["offenders"][0]["changed"] == ["status"]


@pytest.mark.parametrize("status", ["running", "completed"])
def test_completed_at_must_be_set_exactly_when_not_running(status: str) -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=2.0)
    row = s.row("t1-a", rid, status=status, completed=None if status == "completed" else 2.0)
    s.snapshot(3.0, [row])
    s.snapshot(4.0, [s.row("t1-a", rid, completed=2.0)])
    v = terminal_is_final.check(s.context())
    assert v.status is Status.FAIL
    assert "completed_at" in v.evidence["offenders"][0]["why"]


def test_terminal_is_final_is_vacuous_without_a_second_look() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=2.0)
    s.snapshot(3.0, [s.row("t1-a", rid, completed=2.0)])
    assert terminal_is_final.check(s.context()).status is Status.VACUOUS


# -- nothing_lost ----------------------------------------------------------------------


def test_nothing_lost_passes_when_sets_match_and_ignores_other_prefixes() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=2.0)
    s.run("t1-b", start=0.0, end=0.1, outcome="fail", status=429, code="backpressure")
    s.run("t1-c", start=0.0, end=0.2, outcome="info", run_id=None, error="eof before agent")
    s.snapshot(3.0, [s.row("t1-a", rid, completed=2.0), s.row("zz-other", "r_z", completed=1.0)])
    v = nothing_lost.check(s.context())
    assert v.status is Status.PASS and v.evidence == {"accepted": 1, "db_runs": 1}


def test_an_accepted_run_missing_from_the_database_fails() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=2.0)
    lost = s.run("t1-b", start=0.0, end=1.0, outcome="info", error="eof")
    s.snapshot(3.0, [s.row("t1-a", rid, completed=2.0)])
    v = nothing_lost.check(s.context())
    assert v.status is Status.FAIL
    assert v.evidence["lost"][0]["run_id"] == lost and v.evidence["lost_count"] == 1


@pytest.mark.parametrize(
    ("agent", "run_id", "why"),
    [
        ("t1-ghost", "r_ghost", "never started"),
        ("t1-a", "r_other", "never told"),
    ],
)
def test_a_database_run_the_driver_never_saw_fails(agent: str, run_id: str, why: str) -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=2.0)
    s.snapshot(3.0, [s.row("t1-a", rid, completed=2.0), s.row(agent, run_id, completed=2.0)])
    v = nothing_lost.check(s.context())
    assert v.status is Status.FAIL
    assert v.evidence["phantoms"][0]["run_id"] == run_id and why in v.evidence["phantoms"][0]["why"]


@pytest.mark.parametrize(
    ("status", "code", "verdict"),
    [
        (502, None, Status.PASS),  # the LB's answer: the replica died mid-admission
        (500, None, Status.PASS),  # a server error with no code: the row may exist
        (429, "per_user_quota_exhausted", Status.FAIL),  # the target refused: no row
        (503, "runtime_paused", Status.FAIL),  # the target's own coded refusal
    ],
)
def test_a_row_behind_a_codeless_5xx_is_no_phantom(
    status: int, code: str | None, verdict: Status
) -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=2.0)
    s.run("t1-b", start=0.0, end=0.3, outcome="fail", status=status, code=code)
    reaped = s.row(
        "t1-b", "r_b", status="failed", stop_reason="replica_died", error="x", completed=60.0
    )
    s.snapshot(70.0, [s.row("t1-a", rid, completed=2.0), reaped])
    assert nothing_lost.check(s.context()).status is verdict


def test_nothing_lost_is_vacuous_without_snapshot_or_accepted_runs() -> None:
    s = HistoryBench()
    s.run("t1-b", start=0.0, end=0.1, outcome="fail", status=429, code="backpressure")
    assert nothing_lost.check(s.context()).status is Status.VACUOUS
    s.snapshot(1.0)
    assert nothing_lost.check(s.context()).status is Status.VACUOUS


# -- one_truth -------------------------------------------------------------------------


def test_one_truth_passes_on_agreement_and_killed_owner_reaps() -> None:
    s = HistoryBench()
    a = s.run("t1-a", start=0.0, end=2.0)
    b = s.run("t1-b", start=0.0, end=5.0, outcome="info", error="eof", replica_id="r2")
    s.fault("kill", "r2", start=5.0)
    s.snapshot(
        90.0,
        [
            s.row("t1-a", a, completed=2.0),
            s.row(
                "t1-b",
                b,
                status="failed",
                replica_id="r2",
                stop_reason="replica_died",
                error="owner replica died",
                completed=66.0,
            ),
        ],
    )
    v = one_truth.check(s.context())
    assert v.status is Status.PASS and v.evidence == {"client_ends": 1, "reaped": 1}


@pytest.mark.parametrize(("status", "reason"), [("failed", None), ("completed", "max_tokens")])
def test_client_saw_done_but_database_disagrees(status: str, reason: str | None) -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=2.0)
    s.snapshot(
        3.0,
        [
            s.row(
                "t1-a",
                rid,
                status=status,
                stop_reason=reason,
                error="boom" if status == "failed" else None,
                completed=2.0,
            )
        ],
    )
    v = one_truth.check(s.context())
    assert v.status is Status.FAIL
    assert v.evidence["client_db_mismatch"][0]["client_saw"] == "done (end_turn)"


def test_client_saw_error_but_database_says_completed() -> None:
    s = HistoryBench()
    rid = s.run(
        "t1-a",
        start=0.0,
        end=2.0,
        events=["session", "agent", "error"],
        stop_reason=None,
        error="boom",
    )
    s.snapshot(3.0, [s.row("t1-a", rid, completed=2.0)])
    assert one_truth.check(s.context()).status is Status.FAIL


@pytest.mark.parametrize("fault", [None, "pause", "link:reset_cut"])
def test_reaping_a_live_owner_is_split_brain_even_frozen_or_cut(fault: str | None) -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=5.0, outcome="info", error="eof")
    if fault is not None:
        s.fault(fault, "r1", start=5.0, end=100.0, link="pg:r1", replica="r1")
    s.snapshot(
        120.0,
        [
            s.row(
                "t1-a",
                rid,
                status="failed",
                stop_reason="replica_died",
                error="owner replica died",
                completed=70.0,
            )
        ],
    )
    v = one_truth.check(s.context())
    assert v.status is Status.FAIL
    bad = v.evidence["reaped_live_owner"][0]
    assert bad["run_id"] == rid and len(bad["owner_faults"]) == (0 if fault is None else 1)


def test_a_kill_before_the_run_started_does_not_excuse_a_reap() -> None:
    s = HistoryBench()
    s.fault("kill", "r1", start=1.0, end=3.0)
    rid = s.run("t1-a", start=10.0, end=15.0, outcome="info", error="eof")
    s.snapshot(
        120.0,
        [
            s.row(
                "t1-a",
                rid,
                status="failed",
                stop_reason="replica_died",
                error="owner replica died",
                started=10.0,
                completed=80.0,
            )
        ],
    )
    assert one_truth.check(s.context()).status is Status.FAIL


def test_one_truth_is_vacuous_with_nothing_to_compare() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=1.0, outcome="info", cut=True, error="cut")
    s.snapshot(
        3.0,
        [s.row("t1-a", rid, status="cancelled", stop_reason="client disconnected", completed=1.0)],
    )
    assert one_truth.check(s.context()).status is Status.VACUOUS


# -- no_silent_regressions -------------------------------------------------------------


def _circuit(s: HistoryBench, cid: str = "c1") -> list[RunRow]:
    rows = []
    for role in ("researcher", "editor", "evaluator"):
        agent = f"t1-{role}-{cid}"
        rid = s.run(agent, start=0.0, end=3.0, circuit=cid)
        rows.append(s.row(agent, rid, completed=3.0))
    return rows


GOOD = {
    "c1-research": "notes",
    "c1-research-edited": "better notes",
    "c1-research-scored": '{"score": 0.8, "rationale": "ok"}',
}


def test_completed_runs_with_done_and_circuit_outputs_pass() -> None:
    s = HistoryBench()
    s.snapshot(5.0, _circuit(s))
    s.circuit_outputs("c1", GOOD)
    v = no_silent_regressions.check(s.context())
    assert v.status is Status.PASS and v.evidence["circuits"] == 1 and v.evidence["verified"] == 3


@pytest.mark.parametrize(
    ("outputs", "why"),
    [
        (None, "never read back"),
        ({**GOOD, "c1-research-edited": ""}, "missing or empty"),
        ({k: v for k, v in GOOD.items() if k != "c1-research"}, "missing or empty"),
        ({**GOOD, "c1-research-scored": {"score": 1.5}}, "outside"),
    ],
)
def test_a_completed_circuit_without_its_outputs_fails(
    outputs: dict[str, object] | None, why: str
) -> None:
    s = HistoryBench()
    s.snapshot(5.0, _circuit(s))
    if outputs is not None:
        s.circuit_outputs("c1", outputs)
    v = no_silent_regressions.check(s.context())
    assert v.status is Status.FAIL
    assert v.evidence["circuits"][0]["circuit"] == "c1" and why in v.evidence["circuits"][0]["why"]


def test_an_unfinished_circuit_is_not_judged() -> None:
    s = HistoryBench()
    rows = _circuit(s)
    rows[2] = s.row(
        rows[2].agent_id,
        rows[2].run_id,
        status="cancelled",
        stop_reason="client disconnected",
        completed=3.0,
    )
    s.snapshot(5.0, rows)
    assert no_silent_regressions.check(s.context()).status is Status.PASS


def test_a_completed_run_whose_stream_closed_without_done_fails() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=2.0, events=["session", "agent"], stop_reason=None)
    s.snapshot(3.0, [s.row("t1-a", rid, completed=2.0)])
    v = no_silent_regressions.check(s.context())
    assert v.status is Status.FAIL
    assert v.evidence["missing_done"][0]["source"] == "client stream"


def test_the_events_table_is_preferred_when_it_was_read() -> None:
    s = HistoryBench()
    a = s.run("t1-a", start=0.0, end=2.0) or ""
    b = s.run("t1-b", start=0.0, end=2.0) or ""
    s.snapshot(3.0, [s.row("t1-a", a, completed=2.0), s.row("t1-b", b, completed=2.0)])
    s.done_events([a])
    v = no_silent_regressions.check(s.context())
    assert v.status is Status.FAIL
    assert v.evidence["missing_done"][0] | {"history": None} == {
        "run_id": b,
        "agent_id": "t1-b",
        "source": "events table",
        "history": None,
    }


def test_no_silent_regressions_vacuous_cases() -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=2.0, outcome="info", error="eof")
    s.snapshot(
        3.0,
        [s.row("t1-a", rid, status="cancelled", stop_reason="client disconnected", completed=2.0)],
    )
    assert no_silent_regressions.check(s.context()).status is Status.VACUOUS
    s2 = HistoryBench()
    rid2 = s2.run("t1-a", start=0.0, end=2.0, outcome="info", error="eof")
    s2.snapshot(3.0, [s2.row("t1-a", rid2, completed=2.0)])
    v = no_silent_regressions.check(s2.context())
    assert v.status is Status.VACUOUS and v.evidence["unverifiable"] == 1


def test_circuits_are_judged_per_user_and_in_scope_by_user_prefix() -> None:
    """Circuit agent ids end with the wave prefix; the user id carries the test prefix.
    A reused circuit id with a second user is a second circuit."""
    s = HistoryBench()
    rows = []
    for user in ("t1p0w0-u0", "t1p0w1-u0"):
        for role in ("researcher", "editor", "evaluator"):
            agent = f"{role}-c1-{user[:6]}"
            rid = s.run(agent, start=0.0, end=3.0, circuit="c1", user_id=user)
            rows.append(s.row(agent, rid, user_id=user, completed=3.0))
    s.snapshot(5.0, rows)
    s.circuit_outputs("c1", GOOD, user_id="t1p0w0-u0")
    v = no_silent_regressions.check(s.context())
    assert v.status is Status.FAIL and v.evidence["circuit_count"] == 1
    assert v.evidence["circuits"][0]["user_id"] == "t1p0w1-u0"
    s.circuit_outputs("c1", GOOD, user_id="t1p0w1-u0")
    assert no_silent_regressions.check(s.context()).status is Status.PASS
    assert nothing_lost.check(s.context()).evidence["db_runs"] == 6


def test_the_drivers_end_field_decides_done_over_events() -> None:
    """``end`` = "error" means the stream's error event: not a done, whatever else is there."""
    s2 = HistoryBench()
    inv = s2.at(0.0).history.invoke("start_run", "w0", "t1-a", user_id=None, via="lb")
    s2.at(2.0).history.complete(
        inv,
        "ok",
        run_id="r_a",
        replica_id="r1",
        stop_reason=None,
        end="error",
        error="boom",
        events=[{"type": "agent", "mono": 0}],
    )
    s2.snapshot(3.0, [s2.row("t1-a", "r_a", completed=2.0)])
    v = one_truth.check(s2.context())
    assert v.status is Status.FAIL
    assert v.evidence["client_db_mismatch"][0]["client_saw"] == "error (boom)"
