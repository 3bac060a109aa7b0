"""The soak-scale reading shortcuts give what the plain reading gives.

- :func:`chaos.record.jsonl.loads` (``msgspec``, ``json`` behind it) parses as
  :func:`json.loads` does, or fails with the same error;
- a record line decoded straight into a :class:`Record` is the record
  :func:`record_from_raw` makes, and a line the typed decoder must not take (parts, a
  header, escapes, odd types) still reads as before;
- :func:`chaos.record.rows.run_row`/:func:`audit_row` equal the readers' functions on
  any row, and raise what they raise;
- :class:`chaos.record.handles.FirstHandles` keeps the first handles per key, packed.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaos.record import rows as rows_module
from chaos.record.handles import FirstHandles
from chaos.record.history import HistoryError, Record
from chaos.record.jsonl import Head, Part, _parse, _plain_record_line, encode_record, loads
from chaos.record.readers import audit_from_dict, run_from_dict
from chaos.record.record import dumps, record_from_raw
from chaos.record.rows import audit_row, run_row
from chaos.record.vocabulary import AuditRow, RunRow

# -- loads ---------------------------------------------------------------------------
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=12,
)


def _same(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to NaN and every number of the same type."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return bool(a == b) and (not isinstance(a, float) or math.copysign(1, a) == math.copysign(1, b))


@given(json_values)
def test_loads_parses_what_json_writes_as_json_reads_it(value: Any) -> None:
    text = json.dumps(value)
    assert _same(loads(text.encode("utf-8")), json.loads(text))
    assert _same(loads(text), json.loads(text))
    unescaped = json.dumps(value, ensure_ascii=False)
    assert _same(loads(unescaped.encode("utf-8", "surrogatepass")), json.loads(unescaped))


@pytest.mark.parametrize(
    "line",
    [
        b"NaN",
        b"[1e400]",
        b"123456789012345678901234567890",
        b"-9223372036854775809",
        b'"\\ud800"',
        b'{"a": 1, "a": 2}',
        b"-0.0",
    ],
)
def test_loads_takes_what_only_json_takes(line: bytes) -> None:
    assert _same(loads(line), json.loads(line.decode()))


@pytest.mark.parametrize("line", [b"[1,2,]", b"{}x", b'"a\tb"', b"\xef\xbb\xbf{}", b'"\xff"', b"-"])
def test_loads_fails_as_json_fails(line: bytes) -> None:
    with pytest.raises(ValueError) as want:
        json.loads(line.decode("utf-8"))
    with pytest.raises(type(want.value)) as got:
        loads(line)
    assert str(got.value) == str(want.value)


# -- record lines ---------------------------------------------------------------------
def _generic(line: bytes) -> Record:
    return record_from_raw(json.loads(line.decode("utf-8")))


records = st.builds(
    Record,
    index=st.integers(min_value=0, max_value=2**40),
    type=st.sampled_from(["invoke", "ok", "fail", "info", "fault", "snapshot", "lag", "note"]),
    mono=st.floats(allow_nan=False, allow_infinity=False),
    wall=st.floats(allow_nan=False, allow_infinity=False),
    op=st.text(max_size=6),
    process=st.text(max_size=4),
    key=st.none() | st.text(max_size=6),
    ref=st.none() | st.integers(min_value=0, max_value=2**40),
    data=st.dictionaries(st.text(max_size=6), json_values, max_size=4),
)


@given(records)
def test_a_record_line_reads_back_as_its_record(rec: Record) -> None:
    (line,) = encode_record(rec)
    raw = line.encode("utf-8") + b"\n"
    got = _parse(raw, 1, 7)
    assert isinstance(got, Head) and got.offset == 7 and not got.parts
    want = _generic(raw)
    assert _same(got.record.data, want.data)
    assert [getattr(got.record, f) for f in FIELDS] == [getattr(want, f) for f in FIELDS]
    assert [type(getattr(got.record, f)) for f in FIELDS] == [
        type(getattr(want, f)) for f in FIELDS
    ]
    assert got.record.index == rec.index and got.record.key == rec.key


FIELDS = ["index", "type", "mono", "wall", "op", "process", "key", "ref"]


@pytest.mark.parametrize(
    "raw",
    [
        {"index": "3", "type": "ok", "mono": 1, "wall": 2, "op": "x"},
        {"index": 3.0, "type": "ok", "mono": 1, "wall": 2, "op": "x"},
        {"index": True, "type": "ok", "mono": 1, "wall": 2, "op": "x"},
        {"index": 3, "type": "ok", "mono": True, "wall": "2", "op": 5},
        {"index": 3, "type": "ok", "mono": 1, "wall": 2, "op": "x", "data": None},
        {"index": 3, "type": "ok", "mono": 1, "wall": 2, "op": "x", "process": None},
        {"index": 3, "type": "ok", "mono": 1, "wall": 2, "op": "x", "key": 7, "ref": "4"},
        {"index": 3, "type": "ok", "mono": 1, "wall": 2, "op": "x", "data": {"a": [1, None]}},
        {"type": "ok", "index": 3, "mono": 1, "wall": 2, "op": "x", "extra": {"y": 1}},
    ],
)
def test_odd_record_lines_read_as_record_from_raw_reads_them(raw: dict[str, Any]) -> None:
    line = json.dumps(raw).encode("utf-8")
    got = _parse(line, 1, 0)
    assert isinstance(got, Head)
    assert got.record == record_from_raw(raw)
    assert type(got.record.mono) is float and type(got.record.index) is int


@pytest.mark.parametrize(
    "raw",
    [
        {"index": 3, "type": "bogus", "mono": 1, "wall": 2, "op": "x"},
        {"index": 3, "type": "ok", "wall": 2, "op": "x"},
        {"index": 3, "type": "ok", "mono": "soon", "wall": 2, "op": "x"},
    ],
)
def test_bad_record_lines_fail_as_before(raw: dict[str, Any]) -> None:
    with pytest.raises(HistoryError) as want:
        record_from_raw(raw)
    with pytest.raises(HistoryError) as got:
        _parse(json.dumps(raw).encode("utf-8"), 4, 0)
    assert str(got.value) == f"line 4: {want.value}"


def test_lines_the_typed_decoder_must_not_take_go_the_long_way() -> None:
    head = {"index": 3, "type": "note", "mono": 1, "wall": 2, "op": "audit"}
    with_parts = json.dumps({**head, "parts": {"rows": 2}}).encode()
    assert not _plain_record_line(with_parts)
    got = _parse(with_parts, 1, 0)
    assert isinstance(got, Head) and got.parts == {"rows": 2}
    # a key spelled with escapes is still the key
    escaped = with_parts.replace(b'"parts"', b'"\\u0070arts"')
    assert not _plain_record_line(escaped)
    got = _parse(escaped, 1, 0)
    assert isinstance(got, Head) and got.parts == {"rows": 2}
    part = json.dumps({**head, "part_of": 2, "field": "rows", "items": [1]}).encode()
    assert isinstance(_parse(part, 1, 0), Part)
    assert _parse(b'{"loomchaos_history": 1, "seed": 4}', 1, 0) == {
        "loomchaos_history": 1,
        "seed": 4,
    }
    assert not _plain_record_line(dumps(head))  # text lines: the long way
    assert isinstance(_parse(dumps(head), 1, -1), Head)


# -- rows ----------------------------------------------------------------------------
odd = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-5, max_value=5)
    | st.floats(allow_nan=True)
    | st.sampled_from([0.0, -0.0, 1.5, 2.5])
    | st.text(max_size=4)
    | st.sampled_from(["1.5", "running", "completed", "insert", "update", "delete"])
    | st.lists(st.integers(), max_size=2)
)
RUN_KEYS = [
    "run_id",
    "agent_id",
    "user_id",
    "replica_id",
    "status",
    "stop_reason",
    "error",
    "started_at",
    "completed_at",
    "last_heartbeat_at",
]
AUDIT_KEYS = ["seq", "table", "action", "key", "old", "new", "at"]


def _outcome(fn: Any, *args: Any) -> Any:
    try:
        return ("ok", fn(*args))
    except Exception as exc:  # the same exception, with the same message
        return ("raised", type(exc), str(exc))


def _fields_same(a: Any, b: Any) -> bool:
    if a[0] != b[0] or a[0] == "raised":
        return bool(a == b)
    x, y = a[1], b[1]
    return type(x) is type(y) and _same(
        {s: getattr(x, s) for s in x.__slots__}, {s: getattr(y, s) for s in y.__slots__}
    )


@given(st.dictionaries(st.sampled_from(RUN_KEYS), odd))
def test_run_row_is_run_from_dict(raw: dict[str, Any]) -> None:
    assert _fields_same(_outcome(run_row, raw), _outcome(run_from_dict, raw))


images = st.none() | st.dictionaries(st.sampled_from(["status", "completed_at", "x"]), odd)


@given(st.dictionaries(st.sampled_from(AUDIT_KEYS), odd | images), st.booleans())
def test_audit_row_is_audit_from_dict(raw: dict[str, Any], share: bool) -> None:
    mine: dict[tuple[Any, ...], dict[str, object]] | None = {} if share else None
    theirs: dict[tuple[Any, ...], dict[str, object]] | None = {} if share else None
    assert _fields_same(_outcome(audit_row, raw, mine), _outcome(audit_from_dict, raw, theirs))
    assert mine == theirs


def test_a_run_row_is_a_run_row_of_the_same_values() -> None:
    raw = {k: f"v-{k}" for k in RUN_KEYS[:7]} | {
        "started_at": 1.5,
        "completed_at": 2,
        "last_heartbeat_at": 1.5,
    }
    row = run_row(raw)
    assert row == run_from_dict(raw) and type(row) is RunRow
    assert row.last_heartbeat_at is row.started_at  # one float, shared
    assert type(row.completed_at) is float and row.run_id == "v-run_id"
    assert run_row({**raw, "last_heartbeat_at": -0.0, "started_at": 0.0}).last_heartbeat_at == 0
    assert (
        math.copysign(
            1, run_row({**raw, "last_heartbeat_at": -0.0, "started_at": 0.0}).last_heartbeat_at
        )
        == -1.0
    )
    with pytest.raises(AttributeError):
        row.status = "x"  # type: ignore[misc]  # still frozen


def test_an_update_shares_its_unchanged_floats() -> None:
    raw = {
        "seq": 3,
        "table": "runs",
        "action": "update",
        "key": "r_1",
        "old": {"status": "running", "last_heartbeat_at": 5.5},
        "new": {"status": "completed", "last_heartbeat_at": 5.5, "completed_at": 9.5},
        "at": 9.5,
    }
    shared: dict[tuple[Any, ...], dict[str, object]] = {}
    row = audit_row(raw, shared)
    assert row == audit_from_dict(raw, {}) and type(row) is AuditRow
    assert row.new is not None and row.old is not None
    assert row.new["last_heartbeat_at"] is row.old["last_heartbeat_at"]
    assert row.new["completed_at"] is row.at
    assert raw["new"]["completed_at"] == 9.5  # the stored row is not touched
    insert = audit_row({**raw, "action": "insert", "old": None, "new": {"status": "r"}}, shared)
    again = audit_row({**raw, "action": "insert", "old": None, "new": {"status": "r"}}, shared)
    assert insert.new is again.new  # numberless images are shared, as before


def test_fast_constructors_fall_back_for_classes_they_cannot_fill() -> None:
    assert rows_module._setters(RunRow) is not None
    assert rows_module._setters(AuditRow) is not None

    class Post(RunRow):
        __slots__ = ()

        def __post_init__(self) -> None:
            pass

    assert rows_module._setters(Post) is None


# -- excerpt handles -------------------------------------------------------------------
def test_first_handles_keep_the_first_offsets_of_each_key_in_order() -> None:
    kept = FirstHandles(3)
    for offset in (0, 2**40, -1, 7, 8):
        kept.add("a", offset)
    kept.add("b", 5)
    assert kept == {"a": [0, 2**40, -1], "b": [5]}
    assert kept["a"] == [0, 2**40, -1] and len(kept) == 2 and sorted(kept) == ["a", "b"]
    assert kept.get("c", []) == [] and "a" in kept
    assert repr(kept) == "FirstHandles({'a': [0, 1099511627776, -1], 'b': [5]})"


def test_first_handles_keep_other_handles_as_they_come() -> None:
    kept = FirstHandles(2)
    rec = Record(0, "note", 0.0, 0.0, "n")
    kept.add("r", rec)
    kept.add("r", rec)
    kept.add("r", 3)
    kept.add("m", 1)
    kept.add("m", rec)
    kept.add("m", 2)
    kept.add("m", True)  # a bool is not an offset
    kept.add("big", 2**70)
    kept.add("big", 1)
    assert kept == {"r": [rec, rec], "m": [1, rec], "big": [2**70, 1]}
    assert kept["m"] is not kept["m"]  # a copy: the index is read-only
