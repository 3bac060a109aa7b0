from __future__ import annotations

import io
import itertools
from pathlib import Path

import pytest

from chaos.record.history import History, HistoryError, Record


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
