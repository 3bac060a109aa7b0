"""LC-002's signature: a failing verdict is excused only when its evidence has the
finding's shape (runs abandoned by a graceful stop), over one stop or several."""

from __future__ import annotations

import pytest

from chaos.checks.params import CheckParams
from chaos.record.history import FaultWindow
from chaos.record.vocabulary import FAULT_KILL, FAULT_STOP, QuotaRow, RunRow, Snapshot
from chaos.sut.loomcycle.signatures import assert_lc002_signature, last_stops
from chaos.verdict import Verdict

PARAMS = CheckParams()
STOP_AT = 1000.0


def row(run_id: str, replica: str, started: float, status: str = "running", **kw: str) -> RunRow:
    return RunRow(
        run_id, "a", f"u-{run_id}", replica, status, kw.get("stop_reason"), None, started, None
    )


def window(name: str, target: str, at: float) -> FaultWindow:
    return FaultWindow(name, target, at, at + 1, at, at + 1, True, True)


ZOMBIES = Verdict.failed("no_zombies", "2 runs still running")
LEAK = Verdict.failed("no_quota_leaks", "slots held")


def snapshot(*runs: RunRow, held: tuple[str, ...] = ()) -> Snapshot:
    return Snapshot(0.0, 0.0, runs=runs, quotas=tuple(QuotaRow(u, 1) for u in held))


def test_runs_left_by_the_stopped_replica_are_lc002() -> None:
    final = snapshot(row("r1", "n1", STOP_AT - 8), row("r2", "n1", STOP_AT - 1), held=("u-r1",))
    assert_lc002_signature(ZOMBIES, {"n1": STOP_AT}, final, PARAMS)
    assert_lc002_signature(LEAK, {"n1": STOP_AT}, final, PARAMS)


def test_a_run_left_running_on_a_replica_never_stopped_is_not() -> None:
    final = snapshot(row("r1", "n1", STOP_AT - 8), row("r2", "n2", STOP_AT - 8))
    with pytest.raises(AssertionError, match="not as LC-002"):
        assert_lc002_signature(ZOMBIES, {"n1": STOP_AT}, final, PARAMS)


def test_a_run_started_after_the_stop_is_not() -> None:
    # Started on the replica's next life: the stop cannot have abandoned it.
    final = snapshot(row("r1", "n1", STOP_AT + PARAMS.clock_slack_s + 5))
    with pytest.raises(AssertionError, match="not as LC-002"):
        assert_lc002_signature(ZOMBIES, {"n1": STOP_AT}, final, PARAMS)


def test_nothing_running_is_not_lc002() -> None:
    with pytest.raises(AssertionError, match="not as LC-002"):
        assert_lc002_signature(ZOMBIES, {"n1": STOP_AT}, snapshot(), PARAMS)


def test_a_slot_held_by_another_user_or_a_count_out_of_bounds_is_not() -> None:
    final = snapshot(row("r1", "n1", STOP_AT - 8), held=("u-r1", "u-other"))
    with pytest.raises(AssertionError):
        assert_lc002_signature(LEAK, {"n1": STOP_AT}, final, PARAMS)
    below = Verdict.failed("no_quota_leaks", "count below", out_of_bounds=["u-r1"])
    with pytest.raises(AssertionError):
        assert_lc002_signature(below, {"n1": STOP_AT}, snapshot(row("r1", "n1", 1.0)), PARAMS)


def test_a_slot_of_a_run_the_heartbeat_sweeper_marked_is_lc002() -> None:
    marked = row("r2", "n1", STOP_AT - 9, "failed", stop_reason=PARAMS.terminal.heartbeat_timeout)
    final = snapshot(row("r1", "n1", STOP_AT - 8), marked, held=("u-r2",))
    assert_lc002_signature(LEAK, {"n1": STOP_AT}, final, PARAMS)


def test_several_stops_each_judged_by_its_own_replicas_last_stop() -> None:
    stops = last_stops(
        [
            window(FAULT_STOP, "n1", 100.0),
            window(FAULT_KILL, "n2", 150.0),
            window(FAULT_STOP, "n1", 300.0),
            window(FAULT_STOP, "n3", 200.0),
        ]
    )
    assert stops == {"n1": 300.0, "n3": 200.0}
    final = snapshot(row("r1", "n1", 250.0), row("r2", "n3", 150.0))
    assert_lc002_signature(ZOMBIES, stops, final, PARAMS)
    with pytest.raises(AssertionError, match="not as LC-002"):
        assert_lc002_signature(ZOMBIES, stops, snapshot(row("r3", "n3", 250.0)), PARAMS)
