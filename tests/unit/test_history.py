from __future__ import annotations

import io
import itertools
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

from chaos.record.history import History, HistoryError, Record
from chaos.record.jsonl import encode_record, read_record_at, write_records
from chaos.record.sink import FLUSH_S, BatchedSink
from chaos.wait import eventually_sync


def clocked() -> History:
    ticks = itertools.count()
    return History(seed=7, clock=lambda: float(next(ticks)), wall_clock=lambda: 1000.0)


def test_roundtrip_preserves_every_record(tmp_path: Path) -> None:
    h = clocked()
    inv = h.invoke("start_run", "w1", key="a1", user_id="u1")
    h.complete(inv, "ok", run_id="r_1", stop_reason="end_turn")
    inj = h.fault("inject", "kill", "r2")
    h.fault("effect", "kill", "r2", inj)
    h.fault("healed", "kill", "r2", inj)
    h.snapshot("db", [{"run_id": "r_1", "status": "completed"}])
    h.lag(0.004)
    h.note("check_params", cap=4)

    loaded = History.read(h.save(tmp_path / "h.jsonl"))

    assert loaded.seed == 7
    assert loaded.records == h.records
    assert loaded.operations()[0].result == {"run_id": "r_1", "stop_reason": "end_turn"}


def test_operations_pair_invokes_with_completions_and_leave_open_ones_open() -> None:
    h = clocked()
    a = h.invoke("start_run", "w1", key="a1")
    b = h.invoke("start_run", "w2", key="a2")
    h.complete(b, "fail", status=429, code="per_user_quota_exhausted")
    ops = h.operations("start_run")
    assert [o.key for o in ops] == ["a1", "a2"]
    assert ops[0].completion is None and ops[0].outcome is None
    assert ops[1].outcome == "fail" and ops[1].invoke is b
    assert a.index == 0


def test_fault_window_spans_inject_to_proven_heal() -> None:
    h = clocked()
    inj = h.fault("inject", "pause", "r1")  # t=0
    h.fault("effect", "pause", "r1", inj, probe="healthz timeout")  # t=1
    h.fault("heal", "pause", "r1", inj)  # t=2
    h.fault("healed", "pause", "r1", inj, probe="healthz answers")  # t=3
    open_inj = h.fault("inject", "kill", "r2")  # t=4, never healed
    (w1, w2) = h.fault_windows()
    assert (w1.start, w1.end, w1.effect_proven, w1.heal_proven) == (0.0, 3.0, True, True)
    # The effect's evidence is not overwritten by the heal's; each phase keeps its own.
    assert w1.data["probe"] == "healthz timeout"
    assert w1.data["phases"]["healed"] == {"probe": "healthz answers"}
    assert w1.contains(2.5) and not w1.contains(3.5)
    assert w2.end is None and not w2.heal_proven and w2.contains(1e9)
    assert open_inj.index == 4


def test_completion_requires_an_invoke() -> None:
    h = clocked()
    note = h.note("x")
    with pytest.raises(HistoryError):
        h.complete(note, "ok")


def test_fault_phase_after_inject_needs_the_inject_record() -> None:
    with pytest.raises(HistoryError):
        clocked().fault("healed", "kill", "r1")


def test_load_rejects_bad_lines_with_line_numbers() -> None:
    good = clocked()
    good.note("a")
    buf = io.StringIO()
    good.dump(buf)
    text = buf.getvalue() + "{not json\n"
    with pytest.raises(HistoryError, match="line 3"):
        History.load(io.StringIO(text))


def test_load_rejects_gaps_in_indices() -> None:
    rec = Record(index=5, type="note", mono=0.0, wall=0.0, op="x")
    with pytest.raises(HistoryError, match="expected 0"):
        History.load(io.StringIO(rec.to_json() + "\n"))


def test_stream_to_mirrors_records_as_they_are_written() -> None:
    h = clocked()
    sink = io.StringIO()
    h.stream_to(sink)
    h.note("first")
    assert Record.from_json(sink.getvalue().strip()).op == "first"


# -- streaming to disk ------------------------------------------------------------------
def test_stream_to_path_holds_every_record_so_far_and_every_new_one(tmp_path: Path) -> None:
    h = clocked()
    h.note("before")
    path = h.stream_to_path(tmp_path / "live" / "h.jsonl")
    inv = h.invoke("start_run", "w1", key="a1")
    h.complete(inv, "ok", run_id="r_1")
    h.snapshot("db", [{"run_id": f"r_{i}"} for i in range(3)])
    h.close_stream()
    loaded = History.read(path)
    assert loaded.seed == 7 and loaded.records == h.records


def test_a_full_batch_reaches_the_file_and_a_partial_one_waits(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    fp = path.open("w", encoding="utf-8")
    sink = BatchedSink(fp, flush_every=3, flush_s=3600.0, owns_file=True)
    h = clocked()
    records = [h.note(f"n{i}") for i in range(3)]
    for rec in records[:2]:
        sink.write(rec)
    assert path.read_text(encoding="utf-8") == ""
    sink.write(records[2])
    assert len(path.read_text(encoding="utf-8").splitlines()) == 3
    sink.close()
    assert fp.closed


def test_a_quiet_stream_is_flushed_by_the_timer_so_a_hang_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    h = clocked()
    h.stream_to_path(path)
    h.note("last words")  # then the test "hangs": no more records, no close
    lines = eventually_sync(
        lambda: path.read_text(encoding="utf-8").splitlines()[1:],
        what="the flusher to write the pending record",
        timeout=10 * FLUSH_S + 5.0,
        interval=0.05,
    )
    assert Record.from_json(lines[0]).op == "last words"
    h.close_stream()


def _streamed_notes(tmp_path: Path, count: int) -> Path:
    """A history of ``count`` notes, streamed to a file and closed."""
    h = clocked()
    path = h.stream_to_path(tmp_path / "h.jsonl")
    for i in range(count):
        h.note(f"n{i}")
    h.close_stream()
    return path


def test_a_history_file_cut_mid_stream_loads_up_to_the_cut(tmp_path: Path) -> None:
    text = _streamed_notes(tmp_path, 5).read_text(encoding="utf-8")
    cut = text[: text.index('"op":"n3"')]
    complete_lines = cut[: cut.rindex("\n") + 1]
    loaded = History.load(io.StringIO(complete_lines))
    assert [r.op for r in loaded.records] == ["n0", "n1", "n2"]


def test_split_rows_must_follow_their_record_in_full() -> None:
    h = clocked()
    h.snapshot("db", [{"run_id": f"r_{i}"} for i in range(5)])
    buf = io.StringIO()
    write_records(buf, h.records, part_size=2)
    head, *parts = buf.getvalue().splitlines()
    assert json.loads(head)["parts"] == {"rows": 3} and len(parts) == 3
    with pytest.raises(HistoryError, match="end of file: record 0 still owes parts"):
        History.load([head, *parts[:2]])
    with pytest.raises(HistoryError, match="line 1: part of record 0 out of place"):
        History.load([parts[0], head])
    with pytest.raises(HistoryError, match="line 2: a header line after the first line"):
        History.load([head, json.dumps(h.header()), *parts])


def test_a_record_is_re_read_whole_from_its_offset(tmp_path: Path) -> None:
    h = clocked()
    h.note("first")
    h.snapshot("db", [{"run_id": f"r_{i}"} for i in range(5)])
    path = tmp_path / "h.jsonl"
    with path.open("w", encoding="utf-8") as fp:
        write_records(fp, h.records, part_size=2)
    offset = len(h.records[0].to_json()) + 1
    with path.open("rb") as fp:
        assert read_record_at(fp, offset) == h.records[1]
        with pytest.raises(HistoryError, match="not the start of a record"):
            read_record_at(fp, offset + len(encode_record(h.records[1], 2)[0]) + 1)


def test_to_json_writes_what_asdict_wrote() -> None:
    @dataclass
    class Inner:
        x: int

    h = clocked()
    rec = h.note("n", inner=Inner(3), when=Path("/p"), pair=(1, 2))
    legacy = json.dumps(asdict(rec), sort_keys=True, separators=(",", ":"), default=str)
    assert rec.to_json() == legacy


def test_a_file_cut_mid_line_by_a_kill_reads_up_to_its_last_whole_line(tmp_path: Path) -> None:
    path = _streamed_notes(tmp_path, 3)
    whole = path.read_bytes()
    path.write_bytes(whole[:-10])  # the last record lost its tail and its newline
    assert [r.op for r in History.read(path).records] == ["n0", "n1"]
    path.write_bytes(whole[:-10] + b"\n" + whole.splitlines(keepends=True)[-1])
    with pytest.raises(HistoryError, match="line 4: not JSON"):
        History.read(path)  # a broken line with lines after it is no cut: it is an error
    with pytest.raises(HistoryError, match="line 4: not JSON"):
        History.load(whole[:-10].decode().splitlines())  # text lines are read strictly
    first, second, *_ = whole.splitlines(keepends=True)
    with pytest.raises(HistoryError, match="line 2: not JSON"):
        History.load([first, b'{"cut', second])  # unterminated, but not the last line
