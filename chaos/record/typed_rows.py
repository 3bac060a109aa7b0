"""Database rows decoded typed: straight into ``RunRow``/``AuditRow``, no dict per row.

A ``db`` snapshot's run rows (on its record line and on its part lines) and an ``audit``
note's rows (on its part lines) are decoded by ``msgspec`` into the row classes.

A soak's history is mostly database rows (a snapshot's run rows, the audit note's rows),
millions of them.  Parsed to dicts and then turned into rows
(:func:`~chaos.record.rows.run_row`), each costs a dict and a Python call; decoded by
``msgspec`` straight into the row class it costs neither.  Only the streamed check asks
for it (``iter_lines(..., typed_rows=True)``): the in-memory history keeps the dicts.

The decoders take only what the dict way takes to the same row, spelled as the writer
spells it (strings as JSON strings, times as JSON numbers, an audit ``action`` one of the
three, the images JSON objects); anything else (a number for an id, a missing key, a
``NaN``, an index as a ``bool``) fails here and the line goes the dict way, which reads
it, or refuses it, as before.  What the decoded rows still lack (shared strings and
floats, shared audit images) the fold adds with :func:`~chaos.record.rows.own_run_rows`
and :func:`~chaos.record.rows.own_audit_rows`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from chaos.record.record import Record
from chaos.record.vocabulary import NOTE_AUDIT, SNAPSHOT_OP, AuditRow, RecordType, RunRow


class _RunPart(msgspec.Struct, forbid_unknown_fields=True):
    """A part line of a database snapshot's rows (the three keys of any part line)."""

    part_of: int
    field: str
    items: list[RunRow]


class _AuditPart(msgspec.Struct, forbid_unknown_fields=True):
    """A part line of an audit note's rows."""

    part_of: int
    field: str
    items: list[AuditRow]


PartDecoder = Callable[[bytes], Any]  # gives an object with part_of, field, items
_RUN_PART: PartDecoder = msgspec.json.Decoder(_RunPart).decode
_AUDIT_PART: PartDecoder = msgspec.json.Decoder(_AuditPart).decode


def part_decoder(type_: str, op: str) -> PartDecoder | None:
    """The typed decoder of the part lines that follow a record of this type and op:
    the records whose rows the fold decodes (a ``db`` snapshot, an ``audit`` note)."""
    if type_ == "snapshot" and op == SNAPSHOT_OP:
        return _RUN_PART
    if type_ == "note" and op == NOTE_AUDIT:
        return _AUDIT_PART
    return None


class _SnapshotLine(msgspec.Struct):
    """A record line as :class:`Record` decodes it (the same fields, types and defaults),
    its data's values left unparsed: the ``rows`` go to the typed decoder, the rest to
    the untyped one, each parsed as the whole line would have parsed it."""

    index: int
    type: RecordType
    mono: float
    wall: float
    op: str
    process: str = ""
    key: str | None = None
    ref: int | None = None
    data: dict[str, msgspec.Raw] = {}


_SNAPSHOT_LINE = msgspec.json.Decoder(_SnapshotLine).decode
_RUN_ROWS = msgspec.json.Decoder(list[RunRow]).decode
_VALUE = msgspec.json.Decoder().decode


def decode_snapshot_line(line: bytes) -> tuple[Record, list[RunRow] | None] | None:
    """A record line (one the typed record decoder may read) as that decoder reads it,
    but a ``db`` snapshot's rows decoded typed: the record without its ``rows``, and the
    rows (``None``, and the rows left in the data, when they are not as the writer
    writes them).  ``None`` when the line does not decode so: the caller reads it as
    before."""
    try:
        raw = _SNAPSHOT_LINE(line)
        rows: list[RunRow] | None = None
        data: dict[str, Any] = {}
        for name, value in raw.data.items():
            if rows is None and name == "rows" and raw.type == "snapshot" and raw.op == SNAPSHOT_OP:
                try:
                    rows = _RUN_ROWS(value)
                    continue
                except msgspec.DecodeError:
                    pass  # kept as dicts: the fold decodes (or refuses) them as before
            data[name] = _VALUE(value)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    rec = Record(
        raw.index, raw.type, raw.mono, raw.wall, raw.op, raw.process, raw.key, raw.ref, data
    )
    return rec, rows
