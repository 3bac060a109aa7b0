"""One line of the history, and how it reads from and writes to JSON.

Kept apart from :mod:`chaos.record.history` so that the file format
(:mod:`chaos.record.jsonl`) and the in-memory history can both use it without
importing each other.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any, cast

from chaos.record.vocabulary import RECORD_TYPES, RecordType

JSONDict = dict[str, Any]


class HistoryError(ValueError):
    """A history that breaks its own rules (bad JSONL, a completion with no invoke)."""


def json_default(value: object) -> object:
    """How a value JSON lacks is written: a dataclass as its fields, anything else as text
    (what ``json.dumps(dataclasses.asdict(record), default=str)`` wrote)."""
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return str(value)


#: One encoder for every line: ``json.dumps`` with options builds a new one per call.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=json_default)


def dumps(obj: object) -> str:
    """Compact, key-sorted JSON: the one spelling of every history line."""
    return _ENCODER.encode(obj)


@dataclass(frozen=True, slots=True)
class Record:
    """One line of the history.

    ``ref`` links a completion (``ok``/``fail``/``info``) to the index of its
    ``invoke``; for fault records it links every phase to the ``inject`` record.
    """

    index: int
    type: RecordType
    mono: float
    wall: float
    op: str
    process: str = ""
    key: str | None = None
    ref: int | None = None
    data: JSONDict = field(default_factory=dict)

    def as_dict(self, data: JSONDict | None = None) -> JSONDict:
        """The record's fields as JSON values (``data`` replaces the record's own)."""
        return {
            "index": self.index,
            "type": self.type,
            "mono": self.mono,
            "wall": self.wall,
            "op": self.op,
            "process": self.process,
            "key": self.key,
            "ref": self.ref,
            "data": self.data if data is None else data,
        }

    def to_json(self) -> str:
        # Built by hand: dataclasses.asdict deep-copies the data first, which is most of
        # the cost of writing a record while the workload runs.
        return dumps(self.as_dict())

    @staticmethod
    def from_json(line: str) -> Record:
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise HistoryError(f"not JSON: {exc.msg} at column {exc.colno}") from exc
        if not isinstance(raw, dict):
            raise HistoryError("a history line must be a JSON object")
        return record_from_raw(raw)


def record_from_raw(raw: JSONDict) -> Record:
    """A record from one parsed history line."""
    if raw.get("type") not in RECORD_TYPES:
        raise HistoryError(f"unknown record type {raw.get('type')!r}")
    try:
        key, ref, data = raw.get("key"), raw.get("ref"), raw.get("data")
        return Record(
            index=int(raw["index"]),
            type=cast(RecordType, raw["type"]),
            mono=float(raw["mono"]),
            wall=float(raw["wall"]),
            op=str(raw["op"]),
            process=str(raw.get("process", "")),
            key=None if key is None else str(key),
            ref=None if ref is None else int(ref),
            # a parsed line's data is its own: copied only when it is not a plain dict
            data=data if type(data) is dict else dict(data or {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise HistoryError(f"malformed record: {exc}") from exc
