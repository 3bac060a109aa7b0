"""The history's file format: JSON lines, big row lists split into part lines.

One line per record, as :meth:`Record.to_json` writes it, after a header line.  A record
whose ``data`` holds a long list under a splittable field (a snapshot's ``rows``, an audit
note's ``rows``) is written as the record line with that field left out and
``"parts": {field: n}`` added, followed by ``n`` part lines
``{"part_of": index, "field": field, "items": [...]}``.  A soak's final snapshot holds
millions of rows: on one line it is one string of hundreds of megabytes that a reader
must hold and parse at once; split, a reader holds one part at a time.

:func:`iter_lines` reads a file back into :class:`Item` values (records and parts, in
file order) so that a streaming consumer never needs the whole history, and
:func:`assemble` turns them back into whole records for the in-memory
:class:`~chaos.record.history.History`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, TextIO

import msgspec

from chaos.record.record import HistoryError, Record, dumps, record_from_raw
from chaos.record.typed_rows import PartDecoder, decode_snapshot_line, part_decoder

#: Record data fields that may be split, and how many items go on one part line.
SPLIT_FIELDS: tuple[str, ...] = ("rows",)
PART_SIZE = 5000


def encode_record(rec: Record, part_size: int = PART_SIZE) -> list[str]:
    """The lines (without newlines) that store ``rec``: one, or one plus its parts."""
    long_fields = [
        f
        for f in SPLIT_FIELDS
        if isinstance(rec.data.get(f), list | tuple) and len(rec.data[f]) > part_size
    ]
    if not long_fields:
        return [dumps(rec.as_dict())]
    head = rec.as_dict({k: v for k, v in rec.data.items() if k not in long_fields})
    parts: list[str] = []
    counts: dict[str, int] = {}
    for name in long_fields:
        items = rec.data[name]
        chunks = range(0, len(items), part_size)
        counts[name] = len(chunks)
        parts.extend(
            dumps({"part_of": rec.index, "field": name, "items": list(items[i : i + part_size])})
            for i in chunks
        )
    head["parts"] = counts
    return [dumps(head), *parts]


def write_records(fp: TextIO, records: Iterable[Record], part_size: int = PART_SIZE) -> None:
    for rec in records:
        for line in encode_record(rec, part_size):
            fp.write(line)
            fp.write("\n")


# -- reading -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Part:
    """One part line: ``items`` continue field ``field`` of record ``of``.  ``typed``:
    the items are rows decoded typed (:mod:`chaos.record.typed_rows`), not dicts."""

    of: int
    field: str
    items: list[Any]
    typed: bool = False


@dataclass(frozen=True, slots=True)
class Head:
    """A record line.  ``parts`` names the fields whose items follow on part lines
    (the record's ``data`` lacks them until :func:`assemble` puts them back);
    ``offset`` is where the line starts in its file (-1 when not read from a file).
    ``rows``: a ``db`` snapshot's rows decoded typed (:mod:`chaos.record.typed_rows`),
    taken out of the record's data; ``None`` when they are in the data as dicts."""

    record: Record
    parts: dict[str, int]
    offset: int
    rows: list[Any] | None = None


Item = Head | Part
_NO_PARTS: dict[str, int] = {}  # shared by every unsplit record; never mutated


def loads(line: str | bytes) -> Any:
    """One JSON line, parsed as :func:`json.loads` parses it, faster.

    ``msgspec`` parses every line the writer makes, to the same values (integers of any
    size included).  What it refuses (``NaN``, ``Infinity``, numbers beyond a double,
    lone surrogates, malformed lines) goes to ``json``, which then gives the same value,
    or the same error, as before.
    """
    try:
        return _DECODE(line)
    except (msgspec.DecodeError, UnicodeDecodeError):
        # decoded here: json.loads on bytes first guesses the encoding, per line
        return json.loads(line.decode("utf-8") if isinstance(line, bytes) else line)


_DECODE = msgspec.json.Decoder().decode
#: A record line straight into a :class:`Record`: no dict of the line, no
#: :func:`record_from_raw`; half the time.  It takes only what ``record_from_raw`` takes
#: to the same record (JSON types exactly as the writer writes them): anything else
#: (a string index, a ``null`` data, an unknown type) fails here and goes the long way.
_DECODE_RECORD = msgspec.json.Decoder(Record).decode


def _plain_record_line(line: str | bytes) -> bool:
    """A line the typed decoder may read: bytes, no ``part``/``parts``/header key (a
    record with parts needs them, and the typed decoder ignores keys it does not know),
    and no escapes (a key spelled with escapes would hide from the test)."""
    return (
        type(line) is bytes
        and b'"part' not in line
        and b'"loomchaos_history"' not in line
        and b"\\" not in line
    )


class _PartLine(msgspec.Struct, forbid_unknown_fields=True):
    """A part line as the writer writes it: these three keys, these JSON types (``int``
    takes no ``bool``), which give the :class:`Part` the long way gives.  Anything else
    (another key included, to be safe) goes the long way."""

    part_of: int
    field: str
    items: list[Any]


#: A part line without a dict of the line, and without scanning its megabyte of items
#: for ``"part`` (where its own key is, last of the sorted three) as a record line is.
_DECODE_PART = msgspec.json.Decoder(_PartLine).decode


#: How the writer's snapshot line ends (sorted keys: ``type``, then ``wall``'s number),
#: looked for in the line's last bytes only.
_SNAPSHOT_END = b',"type":"snapshot","wall":'
_SNAPSHOT_TAIL = 64


def _parse(
    line: str | bytes,
    lineno: int,
    offset: int,
    rows: PartDecoder | None = None,
    typed_rows: bool = False,
) -> Item | dict[str, Any]:
    """One line read; ``rows``: the typed decoder to try first on a part line;
    ``typed_rows``: a snapshot line's rows decoded typed when they can be."""
    if type(line) is bytes and line.startswith(b'{"field":'):
        if rows is not None:
            try:
                typed = rows(line)
                return Part(typed.part_of, typed.field, typed.items, True)
            except (msgspec.DecodeError, UnicodeDecodeError):
                pass  # not as the writer writes rows: the items as they are, below
        try:
            part = _DECODE_PART(line)
            return Part(part.part_of, part.field, part.items)
        except (msgspec.DecodeError, UnicodeDecodeError):
            pass  # anything else about it (a NaN, another key) the long way reads
    if _plain_record_line(line):
        # (a cheap hint, in the tail only: it decides nothing, the decoding does)
        if (
            typed_rows
            and type(line) is bytes
            and line.find(_SNAPSHOT_END, len(line) - _SNAPSHOT_TAIL) >= 0
        ):
            typed = decode_snapshot_line(line)
            if typed is not None:
                return Head(typed[0], _NO_PARTS, offset, typed[1])
        try:
            return Head(_DECODE_RECORD(line), _NO_PARTS, offset)
        except (msgspec.DecodeError, UnicodeDecodeError):
            pass  # the long way gives the record, or says what is wrong as it always did
    try:
        raw = loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        why = f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else exc
        raise HistoryError(f"line {lineno}: not JSON: {why}") from exc
    if not isinstance(raw, dict):
        raise HistoryError(f"line {lineno}: a history line must be a JSON object")
    if "part_of" in raw:
        items = raw.get("items")
        if not isinstance(items, list):
            raise HistoryError(f"line {lineno}: a part line needs a list of items")
        return Part(int(raw["part_of"]), str(raw.get("field")), items)
    if "loomchaos_history" in raw:
        return raw
    try:
        rec = record_from_raw(raw)
        announced = raw.get("parts")
        parts = {str(k): int(v) for k, v in announced.items()} if announced else _NO_PARTS
    except (HistoryError, AttributeError, TypeError, ValueError) as exc:
        raise HistoryError(f"line {lineno}: {exc}") from exc
    return Head(rec, parts, offset)


@dataclass
class Header:
    """The header line's seed and meta (zero and empty when the file has none)."""

    seed: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    present: bool = False


def iter_lines(
    lines: Iterable[str | bytes], header: Header | None = None, typed_rows: bool = False
) -> Iterator[Item]:
    """Records and parts in file order, checked: indexes contiguous from 0, every part
    belonging to the record just read and as many parts as it announced.

    ``typed_rows``: a ``db`` snapshot's rows (``Head.rows``), and the part lines of a
    ``db`` snapshot or an ``audit`` note (``Part.typed``), decoded typed when they can
    be (see :mod:`chaos.record.typed_rows`).

    Given the lines of a file opened in binary, each record's ``offset`` is its byte
    position (an evidence excerpt re-reads a few records later without keeping them).
    From a file (bytes lines), a last line cut short (no newline, not JSON) is left out:
    a writer killed between two flushes leaves its file readable up to its last whole
    line.  Text lines are read strictly (they may come without newlines at all).
    """
    expected = 0
    owed: dict[str, int] = {}
    owner = -1
    offset = 0
    first = True
    cut: HistoryError | None = None
    rows: PartDecoder | None = None  # the typed decoder of the owner's part lines
    for lineno, line in enumerate(lines, start=1):
        start = offset if isinstance(line, bytes) else -1
        offset += len(line)
        if not line or line.isspace():  # (strip() would copy every line, parts included)
            continue
        if cut is not None:
            raise cut  # a line without its newline was not the last one after all
        try:
            item = _parse(line, lineno, start, rows, typed_rows)
        except HistoryError as exc:
            if not (isinstance(line, bytes) and not line.endswith(b"\n")):
                raise
            cut = exc  # the last line, cut by a kill mid-write, unless another follows
            continue
        if isinstance(item, dict):
            if not first:
                raise HistoryError(f"line {lineno}: a header line after the first line")
            first = False
            if header is not None:
                header.seed, header.meta = int(item.get("seed", 0)), item.get("meta") or {}
                header.present = True
            continue
        first = False
        if isinstance(item, Part):
            if item.of != owner or owed.get(item.field, 0) <= 0:
                raise HistoryError(f"line {lineno}: part of record {item.of} out of place")
            owed[item.field] -= 1
            yield item
            continue
        if owed:
            _no_parts_owed(owed, owner, f"line {lineno}")
        if item.record.index != expected:
            raise HistoryError(
                f"line {lineno}: record index {item.record.index}, expected {expected}"
            )
        expected += 1
        owner, owed = item.record.index, dict(item.parts) if item.parts else _NO_PARTS
        if typed_rows:
            rows = part_decoder(item.record.type, item.record.op) if owed else None
        yield item
    _no_parts_owed(owed, owner, "end of file")


def _no_parts_owed(owed: dict[str, int], owner: int, where: object) -> None:
    missing = {f: n for f, n in owed.items() if n > 0}
    if missing:
        raise HistoryError(f"{where}: record {owner} still owes parts {missing}")


def assemble(items: Iterable[Item]) -> Iterator[Record]:
    """Whole records: every split field put back, in its place among the data's keys."""
    pending: Head | None = None
    gathered: dict[str, list[Any]] = {}
    for item in items:
        if isinstance(item, Part):
            gathered.setdefault(item.field, []).extend(item.items)
            continue
        if pending is not None:
            yield _whole(pending, gathered)
        pending, gathered = item, {}
    if pending is not None:
        yield _whole(pending, gathered)


def _whole(head: Head, gathered: dict[str, list[Any]]) -> Record:
    if not head.parts:
        return head.record
    rec = head.record
    data = {name: gathered.get(name, []) for name in head.parts}
    data.update(rec.data)
    return Record(
        rec.index, rec.type, rec.mono, rec.wall, rec.op, rec.process, rec.key, rec.ref, data
    )


def read_record_at(fp: IO[bytes], offset: int) -> Record:
    """The whole record whose line starts at ``offset`` (its parts follow it)."""
    fp.seek(offset)
    head = _parse(fp.readline(), 0, offset)
    if not isinstance(head, Head):
        raise HistoryError(f"offset {offset} is not the start of a record line")
    items: list[Item] = [head]
    for _ in range(sum(head.parts.values())):
        part = _parse(fp.readline(), 0, -1)
        if not isinstance(part, Part):
            raise HistoryError(f"record {head.record.index}: a part line is missing")
        items.append(part)
    return next(assemble(items))
