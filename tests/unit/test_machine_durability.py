"""The durability invariant and the program parsing, on hand-made histories and notes."""

from __future__ import annotations

import pytest

from chaos.machine import check_durability, failing_program
from chaos.machine.run import _kwargs
from chaos.record.history import History, Outcome
from chaos.verdict import Status


def writes(*outcomes: Outcome | None) -> History:
    """Write ``i+1`` for each outcome (``None``: never completed)."""
    history = History()
    for i, outcome in enumerate(outcomes, start=1):
        invoke = history.invoke("write", "machine", key=str(i))
        if outcome is not None:
            history.complete(invoke, outcome)
    return history


def test_every_acknowledged_value_present_passes() -> None:
    verdict = check_durability(writes("ok", "ok", "info", None).operations("write"), {1, 2, 3})
    assert verdict.status is Status.PASS and verdict.evidence["unknown_outcome"] == 2


def test_a_lost_acknowledged_write_fails_and_names_it() -> None:
    verdict = check_durability(writes("ok", "ok").operations("write"), {1})
    assert verdict.status is Status.FAIL and verdict.evidence["lost"] == [2]


def test_a_failed_write_that_landed_fails() -> None:
    verdict = check_durability(writes("ok", "fail").operations("write"), {1, 2})
    assert verdict.status is Status.FAIL and verdict.evidence["phantom"] == [2]


def test_unknown_outcomes_may_or_may_not_land() -> None:
    ops = writes("ok", "info", "info").operations("write")
    assert check_durability(ops, {1, 2}).ok and check_durability(ops, {1, 3}).ok


def test_nothing_acknowledged_is_vacuous_not_a_pass() -> None:
    verdict = check_durability(writes("fail", "info").operations("write"), set())
    assert verdict.status is Status.VACUOUS and not verdict.ok


def test_program_is_read_from_the_exception_notes() -> None:
    exc = AssertionError("boom")
    exc.add_note("Failing test case: <state machine>")
    for line in ("state = M()", "state.write(n=1)", "state.teardown()"):
        exc.add_note(line)
    assert failing_program(exc) == ["state = M()", "state.write(n=1)", "state.teardown()"]
    assert failing_program(AssertionError()) == []


def test_replay_arguments_are_literals_only() -> None:
    assert _kwargs("") == {}
    assert _kwargs("mode='crash', n=3") == {"mode": "crash", "n": 3}
    with pytest.raises(ValueError):
        _kwargs("__import__('os')")
    with pytest.raises(ValueError):
        _kwargs("n=len('x')")
