"""The sabotage matrix's table writer, on hand-made JUnit XML (no Docker)."""

from __future__ import annotations

import json
from pathlib import Path
from xml.sax.saxutils import quoteattr

import pytest

from chaos.testing.sabotage_table import PROPERTY, render, row_record, rows_from_junit


def _row(invariant: str, detected: bool, ttd: float | None) -> str:
    return row_record(
        invariant=invariant,
        sabotage="a run's done event deleted",
        detected=detected,
        time_to_detect_s=ttd,
        struck_to_converged_s=3.25,
        allowed_side_effects=["one_truth"],
        side_effects_failed=["one_truth"] if detected else [],
        control_matches=True,
    )


def _junit(tmp_path: Path, values: list[str]) -> Path:
    cases = "".join(
        f'<testcase name="t{i}"><properties><property name="{PROPERTY}" value={quoteattr(v)}/>'
        '<property name="other" value="x"/></properties></testcase>'
        for i, v in enumerate(values)
    )
    path = tmp_path / "junit.xml"
    path.write_text(f'<testsuites><testsuite name="s">{cases}</testsuite></testsuites>')
    return path


def test_rows_round_trip_through_junit_and_render_with_the_score(tmp_path: Path) -> None:
    path = _junit(tmp_path, [_row("no_silent_regressions", True, 4.567), _row("x", False, None)])
    rows = rows_from_junit(path)
    assert [r["invariant"] for r in rows] == ["no_silent_regressions", "x"]
    table = render(rows)
    assert "| `no_silent_regressions` | a run's done event deleted | yes | 4.6 s | 3.2 s |" in table
    assert "`one_truth` (`one_truth`)" in table
    assert "| `x` | a run's done event deleted | **no** | - |" in table
    assert table.endswith("Detected: 1 of 2 (50 %).")


def test_a_row_missing_a_column_is_refused() -> None:
    with pytest.raises(ValueError, match="misses"):
        row_record(invariant="x")


def test_unreadable_junit_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "junit.xml"
    bad.write_text("<testsuites>")
    with pytest.raises(ValueError, match="cannot read JUnit XML"):
        rows_from_junit(bad)
    assert json.loads(_row("a", True, 1.0))["detected"] is True
