"""The streamed check (:func:`context_from_path`), pinned where its mutants survived:
which parameters it judges with, how it reports a broken file, and the excerpt lines
it re-reads from the file by byte offset."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.checks.params import CheckParams, record_params
from chaos.checks.streamed import MalformedFacts, RecordAt, context_from_path
from chaos.record.history import HistoryError
from chaos.testing.bench import HistoryBench


def test_the_recorded_params_judge_unless_overridden(tmp_path: Path) -> None:
    s = HistoryBench()
    recorded = CheckParams(test_prefix="t1", per_user_cap=7, graceful_drain_s=3.0)
    record_params(s.history, recorded)
    path = s.history.save(tmp_path / "h.jsonl")
    assert context_from_path(path).params == recorded
    override = CheckParams(test_prefix="t9")
    assert context_from_path(path, override).params == override


def test_without_recorded_params_the_defaults_judge(tmp_path: Path) -> None:
    s = HistoryBench()
    s.run("t1-a", start=0.0, end=1.0)
    path = s.history.save(tmp_path / "h.jsonl")
    assert context_from_path(path).params == CheckParams()


def test_a_malformed_snapshot_names_what_is_missing(tmp_path: Path) -> None:
    s = HistoryBench()
    s.history.snapshot("db", [{"run_id": "r_a"}], at_mono=1.0, at_wall=1.0)
    path = s.history.save(tmp_path / "h.jsonl")
    with pytest.raises(MalformedFacts, match="agent_id"):
        context_from_path(path)


def test_a_format_error_after_a_malformed_record_is_the_one_reported(tmp_path: Path) -> None:
    """Reading goes on after the first undecodable record: the file's format error
    further down (here two lines further) is what a load would have said."""
    s = HistoryBench()
    s.history.snapshot("db", [{"run_id": "r_a"}], at_mono=1.0, at_wall=1.0)
    s.history.note("fine")
    path = s.history.save(tmp_path / "h.jsonl")
    with path.open("a", encoding="utf-8") as fp:
        fp.write("{not json\n")
    with pytest.raises(HistoryError, match="line 4: not JSON"):
        context_from_path(path)


def test_record_at_re_reads_the_record_at_a_byte_offset(tmp_path: Path) -> None:
    s = HistoryBench()
    s.run("t1-a", start=0.0, end=1.0)
    path = s.history.save(tmp_path / "h.jsonl")
    lines = path.read_bytes().splitlines(keepends=True)
    second = len(lines[0]) + len(lines[1])  # the header line, then record 0
    at = RecordAt(path)
    assert at.path == path
    assert at(second) == s.history.records[1]


def test_a_streamed_excerpt_re_reads_its_lines_from_the_file(tmp_path: Path) -> None:
    s = HistoryBench()
    s.run("t1-a", start=0.0, end=2.0)
    s.run("t1-b", start=1.0, end=None)
    path = s.history.save(tmp_path / "h.jsonl")
    facts = context_from_path(path).facts
    for key in ("t1-a", "t1-b"):
        want = [r for r in s.history.records if r.key == key]
        assert facts.excerpt_records(key, 12) == want != []
