"""The fifth pass's typed rows read what the dict way reads.

A ``db`` snapshot's run rows (on its record line and on part lines) and an ``audit``
note's rows (on part lines) are decoded typed when the streamed check reads a file
(``iter_lines(..., typed_rows=True)``).  On generated rows, as the writer writes them
and of any JSON types (numbers for strings, ``bool``/``NaN``/huge integers for times,
missing and extra keys, unknown actions), the fold's facts, or its exception, are
the same either way; rows as the writer writes them do take the typed way; and the rows
keep their strings interned and their equal floats shared.
"""

from __future__ import annotations

import io
import sys
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from chaos.checks.facts import FactsFold
from chaos.record.history import HistoryError, Record
from chaos.record.jsonl import Head, Part, iter_lines, write_records
from chaos.record.record import dumps
from chaos.record.vocabulary import NOTE_AUDIT, SNAPSHOT_OP

odd = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=3)
    | st.lists(st.integers(), max_size=2)
)
maybe_text = st.none() | st.sampled_from(["r1", "u2", "running", "é\u2028", ""])
time_ = (
    st.none()
    | st.sampled_from([0.0, -0.0, 0])  # zeros are never shared: -0.0 == 0.0
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(-(2**60), 2**60)
)

RUN_KEYS = ("run_id", "agent_id", "user_id", "replica_id", "status", "stop_reason", "error")
TIME_KEYS = ("started_at", "completed_at", "last_heartbeat_at")


@st.composite
def run_rows(draw: st.DrawFn) -> Any:
    """A run row as the writer writes it, often changed a little (or not a dict)."""
    row: dict[str, Any] = {k: draw(st.text(max_size=4)) for k in ("run_id", "agent_id")}
    row["status"] = draw(st.sampled_from(["running", "completed", "failed"]))
    for k in ("user_id", "replica_id", "stop_reason", "error"):
        row[k] = draw(maybe_text)
    start = draw(time_)
    row["started_at"] = start
    row["completed_at"] = draw(time_)
    row["last_heartbeat_at"] = draw(st.just(start) | time_)
    for _ in range(draw(st.integers(0, 2))):  # a change: odd value, missing or extra key
        k = draw(st.sampled_from(RUN_KEYS + TIME_KEYS + ("extra",)))
        if draw(st.booleans()):
            row.pop(k, None)
        else:
            row[k] = draw(odd)
    return row if draw(st.integers(0, 30)) else draw(odd)


image = st.none() | st.dictionaries(
    st.sampled_from(["status", "heartbeat", "n"]),
    st.none() | st.booleans() | st.sampled_from(["running", "done"]) | time_,
    max_size=3,
)


@st.composite
def audit_rows(draw: st.DrawFn) -> Any:
    at = draw(st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**60), 2**60))
    row: dict[str, Any] = {
        "seq": draw(st.integers(0, 5)),
        "table": draw(st.sampled_from(["runs", "quotas"])),
        "action": draw(st.sampled_from(["insert", "update", "delete"])),
        "key": draw(st.text(max_size=3)),
        "old": draw(image),
        "new": draw(image | st.just({"heartbeat": at, "status": "running"})),
        "at": at,
    }
    for _ in range(draw(st.integers(0, 2))):
        k = draw(st.sampled_from([*row, "extra"]))
        if draw(st.booleans()):
            row.pop(k, None)
        else:
            row[k] = draw(odd | st.sampled_from(["upsert", "insert"]))
    return row if draw(st.integers(0, 30)) else draw(odd)


def _file(rec: Record, part_size: int) -> bytes:
    out = io.StringIO()
    write_records(out, [rec], part_size)
    return out.getvalue().encode("utf-8")


def _facts(data: bytes, typed: bool) -> Any:
    """What the fold makes of the file, or its exception's type and message.  Compare
    their ``repr``: it tells ``-0.0`` from ``0.0``, and a NaN equals a NaN."""
    fold = FactsFold()
    try:
        for item in iter_lines(io.BytesIO(data), typed_rows=typed):
            fold.add_item(item)
        facts = fold.finish()
    except (HistoryError, KeyError, TypeError, ValueError, OverflowError) as exc:
        return type(exc), str(exc)
    return facts.snapshots, facts.audit, facts.first_clocks, dict(facts.excerpt_handles)


def _items(data: bytes) -> list[Head | Part]:
    return list(iter_lines(io.BytesIO(data), typed_rows=True))


@settings(max_examples=300)
@given(st.lists(run_rows(), max_size=6), st.integers(1, 4), st.booleans())
def test_snapshot_rows_read_as_the_dict_way_reads_them(
    rows: list[Any], part_size: int, split: bool
) -> None:
    data = {"rows": rows, "at_mono": 1.0, "quotas": [], "replicas": []}
    rec = Record(0, "snapshot", 1.0, 2.0, SNAPSHOT_OP, "db", None, None, data)
    line = _file(rec, part_size if split else 100)
    assert repr(_facts(line, typed=True)) == repr(_facts(line, typed=False))


@settings(max_examples=300)
@given(
    st.lists(run_rows(), max_size=3),
    st.dictionaries(st.sampled_from(["index", "mono", "wall", "key", "ref", "process"]), odd),
    st.dictionaries(st.sampled_from(["at_mono", "quotas", "rows", "x"]), odd, max_size=2),
)
def test_odd_snapshot_lines_read_as_the_dict_way_reads_them(
    rows: list[Any], fields: dict[str, Any], data: dict[str, Any]
) -> None:
    """Odd record fields (a string index, a ``null`` time, a NaN in the data) around
    rows of any kind: the same record, rows, exception, either way."""
    rec = Record(0, "snapshot", 1.0, 2.0, SNAPSHOT_OP, "db", "k", None, {"rows": rows, **data})
    rec = Record(**{**{f: getattr(rec, f) for f in rec.__slots__}, **fields})
    line = _file(rec, 100)
    assert repr(_facts(line, typed=True)) == repr(_facts(line, typed=False))


@settings(max_examples=300)
@given(st.lists(audit_rows(), max_size=6), st.integers(1, 4))
def test_audit_rows_read_as_the_dict_way_reads_them(rows: list[Any], part_size: int) -> None:
    rec = Record(0, "note", 1.0, 2.0, NOTE_AUDIT, "audit", None, None, {"rows": rows})
    line = _file(rec, part_size)
    assert repr(_facts(line, typed=True)) == repr(_facts(line, typed=False))


def _writer_rows(n: int) -> list[dict[str, Any]]:
    return [
        {
            "run_id": f"run-{i}",
            "agent_id": f"agent-{i}",
            "user_id": "u1",
            "replica_id": None,
            "status": "running",
            "stop_reason": None,
            "error": "boom" if i % 2 else None,
            "started_at": 10.5 + i,
            "completed_at": None,
            "last_heartbeat_at": 10.5 + i,
        }
        for i in range(n)
    ]


def test_writer_rows_take_the_typed_way_shared_as_the_dict_way_shares_them() -> None:
    data = {"at_mono": 1.0, "rows": _writer_rows(5)}
    inline = _file(Record(0, "snapshot", 1.0, 2.0, SNAPSHOT_OP, "db", None, None, data), 100)
    split = _file(Record(0, "snapshot", 1.0, 2.0, SNAPSHOT_OP, "db", None, None, data), 2)
    head = _items(inline)[0]
    assert isinstance(head, Head) and head.rows is not None and "rows" not in head.record.data
    assert head.record.data == {"at_mono": 1.0}
    assert all(isinstance(p, Part) and p.typed for p in _items(split)[1:])
    for line in (inline, split):
        snapshots = _facts(line, typed=True)[0]
        for row in snapshots[0].runs:
            for value in (row.run_id, row.agent_id, row.user_id, row.status, row.error):
                assert value is None or sys.intern(value) is value
            assert row.last_heartbeat_at is row.started_at


def test_odd_rows_and_other_records_keep_their_dicts() -> None:
    rows: list[Any] = _writer_rows(2)
    rows[1]["run_id"] = 7  # str() of it the dict way: the typed decoder refuses it
    data = {"rows": rows}
    head = _items(_file(Record(0, "snapshot", 1.0, 2.0, SNAPSHOT_OP, "db", None, None, data), 9))
    assert isinstance(head[0], Head) and head[0].rows is None
    assert head[0].record.data == data
    other = _items(_file(Record(0, "snapshot", 1.0, 2.0, "other", "db", None, None, data), 1))
    assert all(isinstance(p, Part) and not p.typed for p in other[1:])


def test_audit_images_shared_as_the_dict_way_shares_them() -> None:
    rows = [
        {"seq": i, "table": "runs", "action": "insert", "key": f"k{i}", "old": None}
        | {"new": {"status": "running", "heartbeat": 5.0 + i}, "at": 5.0 + i}
        for i in range(3)
    ] + [
        {"seq": 3 + i, "table": "runs", "action": "update", "key": f"k{i}"}
        | {"old": {"status": "running"}, "new": {"status": "done"}, "at": 9.0}
        for i in range(3)
    ]
    data = _file(Record(0, "note", 1.0, 2.0, NOTE_AUDIT, "a", None, None, {"rows": rows}), 2)
    assert all(isinstance(p, Part) and p.typed for p in _items(data)[1:])
    _, audit, _, _ = _facts(data, typed=True)
    assert repr(audit) == repr(_facts(data, typed=False)[1])
    assert all(r.new is not None and r.new["heartbeat"] is r.at for r in audit[:3])
    assert len({id(r.old) for r in audit[3:]}) == 1 and len({id(r.new) for r in audit[3:]}) == 1
    assert all(sys.intern(r.key) is r.key and sys.intern(r.action) is r.action for r in audit)


def test_zero_times_are_not_shared() -> None:
    rows = _writer_rows(2)
    rows[0]["started_at"], rows[0]["last_heartbeat_at"] = 0.0, -0.0  # equal, not the same
    rows[1]["started_at"], rows[1]["last_heartbeat_at"] = -0.0, 0.0
    rec = Record(0, "snapshot", 1.0, 2.0, SNAPSHOT_OP, "db", None, None, {"rows": rows})
    for part_size in (1, 100):
        line = _file(rec, part_size)
        assert repr(_facts(line, typed=True)) == repr(_facts(line, typed=False))
        assert "last_heartbeat_at=-0.0" in repr(_facts(line, typed=True))


def test_parts_of_another_field_keep_their_field() -> None:
    """A hand-made split of another field (the fold reads any field's items as rows)."""
    head = Record(0, "snapshot", 1.0, 2.0, SNAPSHOT_OP, "db", None, None, {}).as_dict()
    head["parts"] = {"extra": 1}
    part = {"part_of": 0, "field": "extra", "items": _writer_rows(2)}
    data = b"".join(dumps(x).encode("utf-8") + b"\n" for x in (head, part))
    items = _items(data)
    assert isinstance(items[1], Part) and items[1].typed and items[1].field == "extra"
    assert repr(_facts(data, typed=True)) == repr(_facts(data, typed=False))
