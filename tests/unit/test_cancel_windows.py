"""The cancel windows around a killed owner: where they lie, and how each is judged."""

from __future__ import annotations

import pytest

from chaos.record.vocabulary import RunRow
from chaos.sut.loomcycle.cancel_windows import (
    AFTER_REAP,
    BEFORE_JUDGED_DEAD,
    JUDGED_DEAD_UNREAPED,
    Bounds,
    WindowCancel,
    aim,
    empty_by_configuration,
    invariant,
    judge_window,
    window_bounds,
)
from chaos.verdict import Status

BEAT = 1_000.0


def row(status: str, stop_reason: str | None) -> RunRow:
    return RunRow("r_1", "a1", "u1", "r2", status, stop_reason, None, BEAT, BEAT + 100)


def test_crash_timers_leave_the_judged_dead_window_empty() -> None:
    empty = empty_by_configuration(stale_s=60.0, slack_s=3.0)
    assert set(empty) == {JUDGED_DEAD_UNREAPED}
    assert "vacuous by configuration" in empty[JUDGED_DEAD_UNREAPED]
    assert JUDGED_DEAD_UNREAPED not in window_bounds(BEAT, 60.0, 3.0)


def test_a_stale_threshold_just_above_ninety_seconds_is_still_too_tight() -> None:
    # 90 s + 2 x slack is the least room a cancel can land in.
    assert JUDGED_DEAD_UNREAPED in empty_by_configuration(stale_s=95.0, slack_s=3.0)
    assert empty_by_configuration(stale_s=96.0, slack_s=3.0) == {}


def test_every_window_exists_under_a_long_stale_threshold() -> None:
    assert empty_by_configuration(stale_s=130.0, slack_s=3.0) == {}
    bounds = window_bounds(BEAT, 130.0, 3.0)
    assert bounds[BEFORE_JUDGED_DEAD].closes == BEAT + 87.0
    assert bounds[JUDGED_DEAD_UNREAPED] == Bounds(BEAT + 93.0, BEAT + 127.0)


def test_before_judged_dead_ends_at_the_earlier_of_the_judgement_and_the_reap() -> None:
    assert window_bounds(BEAT, 60.0, 1.0)[BEFORE_JUDGED_DEAD].closes == BEAT + 59.0


def test_aim_stays_inside_the_window_and_leaves_room_for_the_call() -> None:
    bounds = Bounds(100.0, 140.0)
    assert aim(bounds, 0.0, 4.0) == 100.0
    assert aim(bounds, 1.0, 4.0) == 136.0
    assert aim(Bounds(100.0, 102.0), 1.0, 4.0) == 100.0
    with pytest.raises(ValueError):
        aim(bounds, 1.5, 4.0)


def sent(window: str, cls: str, at: float, bounds: Bounds | None) -> WindowCancel:
    return WindowCancel(window, "a1", cls, at, at + 0.1, bounds)


def test_the_judged_dead_window_passes_with_its_class_and_row() -> None:
    bounds = Bounds(BEAT + 93, BEAT + 127)
    v = judge_window(
        sent(JUDGED_DEAD_UNREAPED, "owner_dead", BEAT + 95, bounds),
        row("failed", "owner_replica_dead"),
        None,
    )
    assert v.status is Status.PASS and v.invariant == invariant(JUDGED_DEAD_UNREAPED)


def test_the_judged_dead_window_fails_on_an_unreachable_answer_and_a_reaped_row() -> None:
    # What planted defect 06 does: the cancel path never judges the owner dead.
    bounds = Bounds(BEAT + 93, BEAT + 127)
    v = judge_window(
        sent(JUDGED_DEAD_UNREAPED, "owner_unreachable", BEAT + 95, bounds),
        row("failed", "replica_died"),
        None,
    )
    assert v.status is Status.FAIL
    assert "owner_unreachable" in v.summary and "replica_died" in v.summary


def test_a_cancel_outside_its_window_fails_whatever_it_was_answered() -> None:
    bounds = Bounds(BEAT + 93, BEAT + 127)
    v = judge_window(
        sent(JUDGED_DEAD_UNREAPED, "owner_dead", BEAT + 128, bounds),
        row("failed", "owner_replica_dead"),
        None,
    )
    assert v.status is Status.FAIL and "outside the window" in v.summary


def test_before_and_after_the_judgement_pass_with_the_contracts_answers() -> None:
    early = judge_window(
        sent(BEFORE_JUDGED_DEAD, "owner_unreachable", BEAT + 10, Bounds(float("-inf"), BEAT + 57)),
        row("failed", "replica_died"),
        None,
    )
    late = judge_window(
        sent(AFTER_REAP, "already_terminal", BEAT + 140, None),
        row("failed", "replica_died"),
        None,
    )
    assert early.ok and late.ok


def test_after_the_reap_a_cancel_that_changed_the_row_fails() -> None:
    v = judge_window(
        sent(AFTER_REAP, "acknowledged", BEAT + 140, None), row("cancelled", "x"), None
    )
    assert v.status is Status.FAIL


def test_an_empty_window_is_vacuous_and_allowed_but_a_missing_cancel_fails() -> None:
    reason = "vacuous by configuration: ..."
    empty = judge_window(WindowCancel(JUDGED_DEAD_UNREAPED), None, reason)
    assert empty.status is Status.VACUOUS and empty.ok and empty.summary == reason
    missed = judge_window(WindowCancel(JUDGED_DEAD_UNREAPED, skipped="reaped first"), None, None)
    assert missed.status is Status.FAIL and not missed.ok
