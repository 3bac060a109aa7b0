from __future__ import annotations

from pathlib import Path

import pytest

from chaos.cli import main
from chaos.report.junit import summarize_junit

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="3">
<properties><property name="chaos_seed" value="99"/></properties>
<testcase classname="tests.chaos.test_x" name="test_kill" time="12.5">
  <properties><property name="chaos_verdicts"
   value='[{"invariant":"no_zombies","status":"fail","summary":"r_1 still running"}]'/>
  </properties>
  <failure message="no_zombies failed&#10;more">trace</failure>
</testcase>
<testcase classname="tests.chaos.test_x" name="test_ok" time="1.0"/>
<testcase classname="tests.chaos.test_x" name="test_skip" time="0">
  <skipped message="loomcycle unavailable"/></testcase>
</testsuite></testsuites>
"""


def test_summary_lists_failures_first_with_their_verdicts_and_the_seed(tmp_path: Path) -> None:
    path = tmp_path / "j.xml"
    path.write_text(JUNIT)
    text = summarize_junit(path)
    lines = text.splitlines()
    assert "test_kill" in lines[1] and "failed" in lines[1]
    assert any("fail" in ln and "no_zombies: r_1 still running" in ln for ln in lines)
    assert lines[-1] == "totals: 1 failed, 1 passed, 1 skipped; seed 99"


def test_summary_of_a_missing_report_says_so(tmp_path: Path) -> None:
    assert "no JUnit report" in summarize_junit(tmp_path / "none.xml")


def test_unknown_option_is_one_line_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "--bogus"])
    assert info.value.code == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_check_of_a_missing_path_is_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("loomchaos: ")
