"""The fold that gathers what the checkers read (:mod:`chaos.checks.facts`), pinned
record by record: the mutants of ``FactsFold`` that the verdict tests never reached.

Most tests fold one history twice, from memory (:func:`gather`) and from its file
lines (``FactsFold.add_item`` over :func:`iter_lines`, rows split into part lines of
1, 2 or exactly all the rows, or not split), and ask for the same facts field by field.
Each history carries every kind of record the fold reads and some it must ignore.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable
from typing import Any

import pytest

from chaos.checks.facts import EXCERPT_MAX, FactsFold, HistoryFacts, gather
from chaos.checks.params import CheckParams, record_params
from chaos.record.history import History, Record
from chaos.record.jsonl import Head, Part, iter_lines, read_record_at, write_records
from chaos.record.readers import audit_from_history, audit_to_dict, record_audit, run_to_dict
from chaos.record.vocabulary import (
    NOTE_AUDIT,
    NOTE_CIRCUIT_OUTPUTS,
    NOTE_DONE_EVENTS,
    NOTE_LIVE_PROBE,
    SNAPSHOT_OP,
    AuditRow,
    RunRow,
)

WALL0 = 1_700_000_000.0


def _history() -> History:
    """A history whose clocks step 1 s per record (mono from 10, wall from WALL0)."""
    mono, wall = itertools.count(10.0), itertools.count(WALL0)
    return History(seed=1, clock=lambda: next(mono), wall_clock=lambda: next(wall))


def _lines(history: History, part_size: int) -> bytes:
    buf = io.StringIO()
    write_records(buf, history.records, part_size)
    return buf.getvalue().encode("utf-8")


def _items(data: bytes) -> list[Head | Part]:
    return list(iter_lines(io.BytesIO(data).readlines()))


def _fold_file(history: History, part_size: int) -> HistoryFacts:
    """The facts of ``history`` read back from its file lines, as the streamed check does."""
    data = _lines(history, part_size)
    fold = FactsFold()
    for item in _items(data):
        fold.add_item(item)
    return fold.finish(lambda offset: read_record_at(io.BytesIO(data), offset))


def _assert_same_facts(got: HistoryFacts, want: HistoryFacts) -> None:
    assert got.client_runs == want.client_runs
    assert got.cancels == want.cancels
    assert got.snapshots == want.snapshots
    assert got.audit == want.audit
    assert got.fault_windows == want.fault_windows
    assert got.live_probes == want.live_probes
    assert got.done_event_run_ids == want.done_event_run_ids
    assert got.circuit_outputs == want.circuit_outputs
    assert got.params_note == want.params_note
    assert got.first_clocks == want.first_clocks
    assert sorted(got.excerpt_handles) == sorted(want.excerpt_handles)
    for key in want.excerpt_handles:
        assert got.excerpt_records(key, EXCERPT_MAX) == want.excerpt_records(key, EXCERPT_MAX)


def _row(n: int, status: str = "running") -> dict[str, Any]:
    return run_to_dict(
        RunRow(f"r_{n}", f"t1-{n}", "t1-u", "r1", status, None, None, 1.0, None, 2.0)
    )


def _audit(seq: int, status: str = "completed") -> AuditRow:
    return AuditRow(
        seq, "runs", "update", f"r_{seq}", {"status": "running"}, {"status": status}, 1.0 + seq
    )


def _rich_history() -> History:
    """Every record the fold reads, several it must ignore, and three-row lists under
    ``rows`` (split into parts when the part size is under three)."""
    h = _history()
    record_params(h, CheckParams(test_prefix="t1", per_user_cap=7))
    inv = h.invoke("start_run", "w0", "t1-a", user_id="t1-u", via="lb", circuit="c1")
    h.complete(inv, "ok", run_id="r_a", replica_id="r1", end="done", stop_reason="end_turn")
    # completions read before their invokes (a writer's threads interleave)
    ahead = Record(index=4, type="invoke", mono=0.0, wall=0.0, op="start_run", key="t1-b")
    h.complete(ahead, "fail", code="quota", status=429)
    h.invoke("start_run", "w1", "t1-b", user_id="t1-u")
    ahead = Record(index=6, type="invoke", mono=0.0, wall=0.0, op="cancel", key="t1-a")
    h.complete(ahead, "ok", cancelled=True, classification="acknowledged", status="cancelled")
    h.invoke("cancel", "c0", "t1-a", via="r2", reason="chaos")
    never = h.invoke("start_run", "w2", "t1-c", user_id="t1-v")  # never completed
    assert never.index == 7
    # only an ok run_status completion is a liveness probe
    poll = h.invoke("run_status", "p0", "t1-a")
    h.complete(poll, "ok", run_id="r_a", status="running")
    h.complete(poll, "fail", run_id="r_fail", error="502")
    h.note(NOTE_LIVE_PROBE, key="t1-a", run_id="r_live", status="running")
    h.note(NOTE_DONE_EVENTS, run_ids=["r_a"])
    h.note(NOTE_DONE_EVENTS, run_ids=["r_b", "r_c"])
    h.note(NOTE_CIRCUIT_OUTPUTS, key="c1", user_id="t1-u", outputs={"score": 0.5})
    record_audit(h, [_audit(1), _audit(2), _audit(3)])
    h.snapshot(SNAPSHOT_OP, [_row(1), _row(2), _row(3, "completed")], at_mono=30.0, at_wall=WALL0)
    # rows that are neither a database snapshot's nor an audit note's
    h.snapshot("docker_ps", [{"name": "a"}, {"name": "b"}, {"name": "c"}])
    h.note("other_rows", rows=[{"x": 1}, {"x": 2}, {"x": 3}])
    inject = h.fault("inject", "kill", "r1", rows=[{"y": 1}, {"y": 2}, {"y": 3}])
    h.fault("healed", "kill", "r1", inject)
    return h


@pytest.mark.parametrize("part_size", [1, 2, 3, 5000])
def test_a_history_file_folds_to_the_facts_of_the_history(part_size: int) -> None:
    h = _rich_history()
    want = gather(h.records)
    _assert_same_facts(_fold_file(h, part_size), want)
    # and the facts are the ones each record says
    assert [(r.agent_id, r.outcome, r.run_id) for r in want.client_runs] == [
        ("t1-a", "ok", "r_a"),
        ("t1-b", "fail", None),
        ("t1-c", None, None),
    ]
    assert [(c.agent_id, c.classification) for c in want.cancels] == [("t1-a", "acknowledged")]
    assert sorted(want.live_probes) == ["r_a", "r_live"]
    assert want.done_event_run_ids == {"r_a", "r_b", "r_c"}
    assert want.circuit_outputs == {("c1", "t1-u"): {"score": 0.5}}
    assert [s.mono for s in want.snapshots] == [30.0]
    assert [r.run_id for r in want.snapshots[0].runs] == ["r_1", "r_2", "r_3"]
    assert [a.seq for a in want.audit] == [1, 2, 3]
    (window,) = want.fault_windows
    assert window.data["rows"] == [{"y": 1}, {"y": 2}, {"y": 3}]
    assert want.recorded_params() == CheckParams(test_prefix="t1", per_user_cap=7)


def test_the_rich_history_really_splits_its_rows() -> None:
    """The test above is only worth its part sizes if the rows are split: five records
    (the snapshot, the audit note, the other snapshot, the other note, the fault) go on
    part lines at part size 1."""
    items = _items(_lines(_rich_history(), 1))
    split = [i.record.op for i in items if isinstance(i, Head) and i.parts]
    assert split == ["audit", SNAPSHOT_OP, "docker_ps", "other_rows", "kill"]
    assert sum(isinstance(i, Part) for i in items) == 15


def test_the_first_clocks_are_the_first_records_and_handles_are_byte_offsets() -> None:
    h = _history()
    first = h.invoke("start_run", "w0", "t1-a")
    h.complete(first, "ok", run_id="r_a")
    data = _lines(h, 5000)
    fold = FactsFold()
    for item in _items(data):
        fold.add_item(item)
    facts = fold.finish()
    assert facts.first_clocks == (WALL0, 10.0)
    assert facts.excerpt_handles == {"t1-a": [0, data.index(b"\n") + 1]}
    assert gather(h.records).first_clocks == (WALL0, 10.0)


def test_a_split_record_is_kept_by_its_byte_offset_too() -> None:
    h = _history()
    h.note("filler", key="k")
    record_audit(h, [_audit(1), _audit(2)])
    h.note(NOTE_AUDIT, key="k", rows=[audit_to_dict(_audit(3)), audit_to_dict(_audit(4))])
    data = _lines(h, 1)
    facts = FactsFold()
    for item in _items(data):
        facts.add_item(item)
    handles = facts.finish().excerpt_handles
    assert all(isinstance(x, int) for hs in handles.values() for x in hs)
    assert handles["k"][0] == 0 and len(handles["k"]) == 2


def test_the_excerpt_index_keeps_exactly_the_first_excerpt_max_lines() -> None:
    h = _history()
    for i in range(EXCERPT_MAX + 3):
        h.note("n", key="k", i=i)
    facts = gather(h.records)
    assert len(facts.excerpt_handles["k"]) == EXCERPT_MAX
    assert [r.data["i"] for r in facts.excerpt_records("k", EXCERPT_MAX)] == list(
        range(EXCERPT_MAX)
    )
    with pytest.raises(ValueError, match=f"at most {EXCERPT_MAX} lines, not {EXCERPT_MAX + 1}"):
        facts.excerpt_records("k", EXCERPT_MAX + 1)


def test_a_note_is_indexed_by_its_note_key_and_other_records_by_their_own_key() -> None:
    h = _history()
    h.note("n", key="from-data")
    h.snapshot("docker_ps", [], key="not-a-note")  # no record key: not about anyone
    h.invoke("start_run", "w0", "t1-a")
    assert sorted(gather(h.records).excerpt_handles) == ["from-data", "t1-a"]


def test_without_a_params_note_there_are_no_recorded_params() -> None:
    h = _history()
    h.invoke("start_run", "w0", "t1-a")
    facts = gather(h.records)
    assert facts.params_note is None and facts.recorded_params() is None
    assert _fold_file(h, 1).recorded_params() is None


def test_an_empty_history_has_no_first_clocks() -> None:
    facts = FactsFold().finish()
    assert facts.first_clocks is None and facts.params_note is None
    assert facts.client_runs == [] and facts.audit == [] and facts.done_event_run_ids is None


def test_a_snapshots_rows_are_decoded_fast_and_may_be_absent() -> None:
    """An unsplit snapshot's rows go through :mod:`chaos.record.rows` (a heartbeat equal
    to the start is the start's float object: the readers' own decoding keeps two), and a
    database snapshot without ``rows`` has no runs."""
    start, beat = float("1.5"), float("1.5")  # equal, and two objects
    row = {**_row(1), "started_at": start, "last_heartbeat_at": beat}
    with_rows = Record(0, "snapshot", 30.0, WALL0, SNAPSHOT_OP, data={"rows": [row]})
    without = Record(1, "snapshot", 31.0, WALL0 + 1, SNAPSHOT_OP, data={"at_mono": 31.0})
    facts = gather([with_rows, without])
    (run,) = facts.snapshots[0].runs
    assert run.last_heartbeat_at is run.started_at and run.run_id == "r_1"
    assert facts.snapshots[1].runs == () and facts.snapshots[1].mono == 31.0


def test_a_fault_named_like_the_snapshot_op_is_a_fault_not_a_snapshot() -> None:
    h = _history()
    h.fault("inject", SNAPSHOT_OP, "postgres")
    facts = gather(h.records)
    assert facts.snapshots == [] and [w.name for w in facts.fault_windows] == [SNAPSHOT_OP]


def test_notes_without_their_lists_add_nothing() -> None:
    h = _history()
    h.note(NOTE_AUDIT)
    h.note(NOTE_DONE_EVENTS)
    facts = gather(h.records)
    assert facts.audit == [] and facts.done_event_run_ids == set()


def test_equal_audit_images_are_one_shared_dict_on_both_paths() -> None:
    """A soak's million insert images ``{"status": "running"}`` must be one dict."""
    h = _history()
    record_audit(h, [_audit(1, "completed")])
    record_audit(h, [_audit(2, "completed"), _audit(3, "completed")])
    for facts in (gather(h.records), _fold_file(h, 1), _fold_file(h, 5000)):
        one, two, three = facts.audit
        assert one.old is two.old is three.old
        assert one.new is two.new is three.new


@pytest.mark.parametrize(
    ("make", "bad_row"),
    [
        (lambda h, rows: h.snapshot(SNAPSHOT_OP, rows), {"agent_id": "a", "status": "x"}),
        (lambda h, rows: h.note(NOTE_AUDIT, rows=rows), {"seq": 9, "action": "upsert"}),
    ],
    ids=["snapshot", "audit"],
)
def test_split_rows_are_decoded_as_each_part_is_read(
    make: Callable[[History, list[dict[str, Any]]], Record], bad_row: dict[str, Any]
) -> None:
    """A soak's final snapshot has millions of rows: each part is decoded when it is read
    (its raw dicts then freed), so a bad row is refused on its own part line, not at the
    end of the record."""
    h = _history()
    good = [_row(1), _row(2)] if "agent_id" in bad_row else [audit_to_dict(_audit(1))] * 2
    make(h, [*good, bad_row])
    items = _items(_lines(h, 1))
    fold = FactsFold()
    for item in items[:-1]:
        fold.add_item(item)  # the head and the good rows' parts
    with pytest.raises((KeyError, ValueError)):
        fold.add_item(items[-1])


def test_rows_that_are_no_snapshot_or_audit_stay_raw_until_the_record_ends() -> None:
    h = _history()
    h.note("other_rows", rows=[{"seq": "not an audit row"}, {"run_id": "nor a run row"}])
    h.snapshot("docker_ps", [{"seq": 1}, {"x": 2}])
    facts = _fold_file(h, 1)
    assert facts.snapshots == [] and facts.audit == []


# -- audit rows across notes: kept as a list while in order, de-duplicated after --------
@pytest.mark.parametrize(
    "notes",
    [
        [[1, 2, 3]],
        [[1, 2], [3, 4]],
        [[1, 2], [2]],  # the same seq as the last row: the later row wins
        [[1, 2, 2]],
        [[2], [1]],  # a step back across notes
        [[1, 3], [2]],  # back under the last, above the one before it
        [[1, 3, 5], [4]],
        [[1], [3, 2]],
        [[2, 1], [3]],  # a step back, then more notes after the switch
        [[2, 1, 4, 3], [5, 4]],
        [[3, 1], [2]],
        [[1, 1, 1]],
    ],
)
@pytest.mark.parametrize("part_size", [1, 2, 5000])
def test_audit_rows_are_the_in_memory_read(notes: list[list[int]], part_size: int) -> None:
    h = _history()
    for k, seqs in enumerate(notes):
        record_audit(h, [_audit(s, f"s{k}-{j}") for j, s in enumerate(seqs)])
    want = audit_from_history(h)
    assert gather(h.records).audit == want
    assert _fold_file(h, part_size).audit == want
