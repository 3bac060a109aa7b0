from __future__ import annotations

from pathlib import Path

import pytest

from chaos.record.history import FaultWindow
from chaos.seeds import Replay, TestSeed
from chaos.verdict import (
    InvariantViolation,
    Status,
    Verdict,
    assert_verdicts,
    render_failure,
    verdict_table,
)

WINDOW = FaultWindow("kill", "r2", 10.0, 25.0, 1e9, 1e9 + 15, True, True)


def test_failures_render_first_with_evidence_seed_and_artifacts() -> None:
    verdicts = [
        Verdict.passed("no_zombies", "0 running runs after convergence"),
        Verdict.failed(
            "no_quota_leaks", "user u1 holds 2 slots at quiescence", [WINDOW], users={"u1": 2}
        ),
    ]
    seed = TestSeed(Replay(42, "tests/chaos/test_x.py::test_y"))
    text = render_failure(verdicts, seed=seed, artifacts=Path("artifacts/x"))
    table_lines = text.splitlines()
    assert table_lines[2].startswith("no_quota_leaks") and "fail" in table_lines[2]
    assert '"u1": 2' in text
    assert "fault window: kill@r2 [10.0 .. +15.0s]" in text
    assert f"seed: session 42, test {int(seed)} " in text
    assert "(replay: pytest 'tests/chaos/test_x.py::test_y' -m chaos --chaos-seed=42)" in text
    assert f"--chaos-seed={int(seed)}" not in text
    assert "artifacts: artifacts/x" in text


def test_vacuous_fails_unless_allowed() -> None:
    v = Verdict.vacuous("bounded_recovery", "the killed replica owned no run")
    assert not v.ok
    assert v.allowing_vacuous().ok
    assert "vacuous*" in verdict_table([v.allowing_vacuous()])
    with pytest.raises(InvariantViolation) as info:
        assert_verdicts([v], seed=1)
    assert info.value.verdicts == [v]


def test_all_passing_verdicts_pass() -> None:
    assert_verdicts([Verdict.passed("a", "ok"), Verdict.passed("b", "ok")], seed=1)


def test_no_verdicts_at_all_is_not_a_pass() -> None:
    with pytest.raises(InvariantViolation, match="no invariant was checked"):
        assert_verdicts([], seed=3)


def test_to_dict_is_json_friendly() -> None:
    d = Verdict.failed("x", "bad", [WINDOW], rows=[{"id": 1}]).to_dict()
    assert d["status"] == Status.FAIL.value and d["ok"] is False
    assert d["fault_windows"] == ["kill@r2 [10.0 .. +15.0s]"]


def test_a_bare_seed_is_not_printed_as_a_replay() -> None:
    """A number that knows no session (a History built by hand) must not claim that
    --chaos-seed replays it."""
    text = render_failure([Verdict.failed("a", "broken")], seed=42)
    assert "seed: test 42" in text and "(replay:" not in text


def test_invariant_violation_carries_the_replay() -> None:
    replay = Replay(7, "tests/chaos/test_x.py::test_z", chaos=True)
    with pytest.raises(InvariantViolation, match="--chaos-seed=7"):
        assert_verdicts([Verdict.failed("a", "broken")], seed=replay)
