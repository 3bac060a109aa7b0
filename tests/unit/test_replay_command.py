"""``loomchaos replay``: what it reads from an artifact folder, and its one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaos.errors import SetupError
from chaos.replay import build_meta, plan_from, summary, try_outcome
from chaos.seeds import Replay

NODE = "tests/chaos/test_scenario_crash.py::test_kill_replica_owning_runs"


def _artifact(tmp_path: Path, meta: dict[str, object]) -> Path:
    (tmp_path / "history.jsonl").write_text(
        json.dumps({"loomchaos_history": 1, "seed": 5, "meta": meta}) + "\n"
    )
    return tmp_path


def test_the_plan_replays_the_seed_test_and_build(tmp_path: Path) -> None:
    build = {"LOOMCHAOS_LOOMCYCLE_IMAGE": "loomchaos/loomcycle:v1.58.0"}
    meta = {**Replay(42, NODE).to_meta(), "build": build}
    plan = plan_from(_artifact(tmp_path, meta))
    assert plan.replay == Replay(42, NODE)
    assert plan.build == build
    argv = plan.argv(tmp_path / "out")
    assert argv[3:7] == [NODE, "-m", "chaos", "--chaos-seed=42"]
    assert f"--chaos-artifacts={tmp_path / 'out'}" in argv


def test_a_history_without_a_test_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(SetupError, match="names no test and seed"):
        plan_from(_artifact(tmp_path, {}))


def test_a_missing_or_foreign_file_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(SetupError, match="no history to replay"):
        plan_from(tmp_path)
    (tmp_path / "history.jsonl").write_text("not json\n")
    with pytest.raises(SetupError, match="does not start with a history header"):
        plan_from(tmp_path)


def test_only_the_build_overrides_in_force_are_recorded() -> None:
    env = {"LOOMCHAOS_LOOMCYCLE_BIN": "/x/loomcycle", "LOOMCHAOS_LOOMCYCLE_IMAGE": "", "HOME": "/"}
    assert build_meta(env) == {"LOOMCHAOS_LOOMCYCLE_BIN": "/x/loomcycle"}


def _junit(tmp_path: Path, case_body: str) -> Path:
    path = tmp_path / "junit.xml"
    path.write_text(
        '<testsuites><testsuite name="pytest">'
        f'<testcase classname="tests.chaos.test_x" name="test_y" time="1.0">{case_body}</testcase>'
        "</testsuite></testsuites>"
    )
    return path


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("", "passed"),
        ('<failure message="no_zombies">x</failure>', "failed"),
        ('<error message="fixture">x</error>', "error"),
        ('<skipped type="pytest.xfail" message="finding LC-003"/>', "xfailed"),
        ('<skipped type="pytest.skip" message="no engine">x</skipped>', "skipped"),
    ],
)
def test_a_tries_outcome_is_read_from_its_junit(tmp_path: Path, body: str, expected: str) -> None:
    assert try_outcome(0, _junit(tmp_path, body)) == expected


def test_a_try_without_a_result_says_its_exit_code(tmp_path: Path) -> None:
    assert try_outcome(3, tmp_path / "absent.xml") == "exit 3"
    (tmp_path / "cut.xml").write_text("<testsuites><testsu")
    assert try_outcome(2, tmp_path / "cut.xml") == "exit 2"


def test_the_hit_rate_counts_failures_and_xfails_not_passes() -> None:
    line = summary(["xfailed", "passed", "failed", "exit 3", "xfailed"])
    assert line == "replay: reproduced in 3 of 5 (exit 3 1, failed 1, passed 1, xfailed 2)"
    assert summary(["passed"]).startswith("replay: reproduced in 0 of 1")
