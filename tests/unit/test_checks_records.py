"""Checker evidence stored in the history survives a JSONL round trip, and offline checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.checks import ALL_CHECKS, run_checks
from chaos.checks.context import CheckContext
from chaos.checks.offline import check_path
from chaos.checks.params import CheckParams, params_from_history
from chaos.errors import SetupError
from chaos.record.history import History
from chaos.record.readers import (
    audit_from_history,
    snapshots_from_history,
)
from chaos.record.vocabulary import AuditRow
from chaos.testing.bench import HistoryBench
from chaos.verdict import Status


def _scenario() -> HistoryBench:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=2.0, user_id="t1-u")
    row = s.row("t1-a", rid, user_id="t1-u", started=0.1, completed=1.9)
    s.snapshot(1.0, [s.row("t1-a", rid, status="running", user_id="t1-u")], quotas={"t1-u": 1})
    s.snapshot(5.0, [row])
    s.audit(
        [
            AuditRow(
                1,
                "runs",
                "update",
                rid or "",
                {"status": "running"},
                {"status": "completed"},
                s.wall(1.9),
            )
        ]
    )
    return s


def test_snapshots_audit_and_params_round_trip_through_jsonl(tmp_path: Path) -> None:
    s = _scenario()
    params = CheckParams(per_user_cap=3, replica_ids=("r1", "r2"), test_prefix="t1")
    s.context(params)
    path = s.history.save(tmp_path / "history.jsonl")
    loaded = History.read(path)
    assert snapshots_from_history(loaded) == snapshots_from_history(s.history)
    assert snapshots_from_history(loaded)[0].quotas[0].active_count == 1
    assert audit_from_history(loaded) == audit_from_history(s.history)
    assert params_from_history(loaded) == params


def test_params_missing_means_none_and_unknown_keys_are_ignored() -> None:
    assert params_from_history(History()) is None
    assert CheckParams.from_dict({"per_user_cap": 2, "from_the_future": 1}).per_user_cap == 2


def test_run_checks_returns_one_verdict_per_invariant() -> None:
    verdicts = run_checks(_scenario().context())
    assert [v.invariant for v in verdicts] == list(ALL_CHECKS)
    assert len(verdicts) == 10


def test_run_checks_rejects_unknown_names() -> None:
    with pytest.raises(KeyError, match="unknown invariants"):
        run_checks(_scenario().context(), only=["nope"])


def test_check_path_accepts_a_file_or_an_artifact_directory(tmp_path: Path) -> None:
    s = _scenario()
    s.context()
    s.history.save(tmp_path / "history.jsonl")
    from_file = check_path(tmp_path / "history.jsonl")
    from_dir = check_path(tmp_path)
    assert [v.to_dict() for v in from_file] == [v.to_dict() for v in from_dir]
    online = run_checks(CheckContext.from_history(s.history))
    assert [v.status for v in from_file] == [v.status for v in online]
    assert {v.invariant: v.status for v in from_file}["nothing_lost"] is Status.PASS


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.jsonl", None, "does not exist"),
        ("empty_dir", "dir", "without history.jsonl"),
        (
            "bad.jsonl",
            '{"loomchaos_history": 1}\n{"index": 0, "type": "bogus"}\n',
            "not a loomchaos",
        ),
        ("notjson.jsonl", "this is not json\n", "not a loomchaos"),
    ],
)
def test_check_path_bad_input_is_one_line_setup_error(
    tmp_path: Path, name: str, content: str | None, message: str
) -> None:
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_text(content)
    with pytest.raises(SetupError, match=message) as info:
        check_path(path)
    assert "\n" not in str(info.value)
