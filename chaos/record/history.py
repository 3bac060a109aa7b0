"""The append-only record of a chaos scenario.

Borrowed from Jepsen: every operation is recorded twice, once when it is
invoked and once when its outcome is known, so a checker can tell "the client
never heard back" (``info``) from "the system said no" (``fail``).  Fault
windows, database snapshots and event-loop lag samples go into the same
stream, so one JSONL file is enough to re-check a scenario offline.

Every record carries two clocks: ``mono`` (``time.monotonic``, for durations
and ordering) and ``wall`` (``time.time``, to line up with database
timestamps and container logs).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, cast

from chaos.record.jsonl import Header, assemble, iter_lines, write_records
from chaos.record.record import HistoryError, Record
from chaos.record.sink import BatchedSink
from chaos.record.vocabulary import (
    OUTCOMES,
    RECORD_TYPES,
    FaultPhase,
    Outcome,
    RecordType,
)

__all__ = [
    "OUTCOMES",
    "RECORD_TYPES",
    "FaultPhase",
    "FaultWindow",
    "History",
    "HistoryError",
    "Operation",
    "Outcome",
    "Record",
    "RecordType",
]

JSONDict = dict[str, Any]


@dataclass(frozen=True)
class Operation:
    """An invoke paired with its completion (``None`` while still open)."""

    invoke: Record
    completion: Record | None

    @property
    def op(self) -> str:
        return self.invoke.op

    @property
    def key(self) -> str | None:
        return self.invoke.key

    @property
    def outcome(self) -> Outcome | None:
        return None if self.completion is None else cast(Outcome, self.completion.type)

    @property
    def start(self) -> float:
        return self.invoke.mono

    @property
    def end(self) -> float | None:
        return None if self.completion is None else self.completion.mono

    @property
    def result(self) -> JSONDict:
        return {} if self.completion is None else self.completion.data


@dataclass(frozen=True)
class FaultWindow:
    """When a fault was in force, as proven by its effect and heal probes.

    ``start``/``end`` are monotonic seconds: from the moment injection began
    to the moment the heal was proven (``None`` if the heal never was).
    """

    name: str
    target: str
    start: float
    end: float | None
    start_wall: float
    end_wall: float | None
    effect_proven: bool
    heal_proven: bool
    data: JSONDict = field(default_factory=dict)

    def contains(self, mono: float, margin: float = 0.0) -> bool:
        end = float("inf") if self.end is None else self.end
        return self.start - margin <= mono <= end + margin

    def describe(self) -> str:
        end = "never healed" if self.end is None else f"+{self.end - self.start:.1f}s"
        return f"{self.name}@{self.target} [{self.start:.1f} .. {end}]"


def _window_data(inject: Record, phases: Mapping[Any, Record]) -> JSONDict:
    """Merge the phases' data, earliest phase first and first write winning.

    The inject record names the link/replica and the effect record carries
    what the effect proof saw (an exit code); a later heal record must not
    overwrite them.  Each phase's own data stays under ``phases``.
    """
    order = ["effect", "effect_failed", "heal", "healed", "heal_failed"]
    merged: JSONDict = {}
    for rec in [inject, *(phases[p] for p in order if p in phases)]:
        for key, value in rec.data.items():
            if key != "phase":
                merged.setdefault(key, value)
    merged["phases"] = {
        str(p): {k: v for k, v in r.data.items() if k != "phase"} for p, r in phases.items()
    }
    return merged


def fault_windows_of(records: Iterable[Record]) -> list[FaultWindow]:
    """The fault windows the ``fault`` records among ``records`` describe, in inject order."""
    by_inject: dict[int, list[Record]] = {}
    injects: list[Record] = []
    for rec in records:
        if rec.type != "fault":
            continue
        if rec.data.get("phase") == "inject":
            injects.append(rec)
            by_inject.setdefault(rec.index, [])
        elif rec.ref is not None:
            by_inject.setdefault(rec.ref, []).append(rec)
    windows = []
    for inj in injects:
        phases = {r.data.get("phase"): r for r in by_inject.get(inj.index, [])}
        healed = phases.get("healed")
        windows.append(
            FaultWindow(
                name=inj.op,
                target=inj.key or "",
                start=inj.mono,
                end=None if healed is None else healed.mono,
                start_wall=inj.wall,
                end_wall=None if healed is None else healed.wall,
                effect_proven="effect" in phases,
                heal_proven=healed is not None,
                data=_window_data(inj, phases),
            )
        )
    return windows


class History:
    """Thread-safe, append-only list of records with JSONL in and out.

    ``clock`` and ``wall_clock`` are injectable so that unit tests can build
    histories with exact times.
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        meta: Mapping[str, Any] | None = None,
        retain: bool = True,
    ) -> None:
        """``retain=False`` keeps no record in memory: each goes only to the stream
        (:meth:`stream_to_path`), and reading the history back in memory is refused.  For
        histories too big to hold (the checker benchmark's millions of runs)."""
        self.seed = seed
        self._retain = retain
        self._count = 0
        self.meta: JSONDict = dict(meta or {})
        self._clock = clock
        self._wall = wall_clock
        self._records: list[Record] = []
        self._lock = threading.Lock()
        self._sink: BatchedSink | None = None

    # -- writing ---------------------------------------------------------
    def _append(
        self,
        type_: RecordType,
        op: str,
        *,
        process: str = "",
        key: str | None = None,
        ref: int | None = None,
        data: Mapping[str, Any] | None = None,
        mono: float | None = None,
        wall: float | None = None,
    ) -> Record:
        with self._lock:
            rec = Record(
                index=self._count,
                type=type_,
                mono=self._clock() if mono is None else mono,
                wall=self._wall() if wall is None else wall,
                op=op,
                process=process,
                key=key,
                ref=ref,
                data=dict(data or {}),
            )
            self._count += 1
            if self._retain:
                self._records.append(rec)
            if self._sink is not None:
                self._sink.write(rec)
            return rec

    def invoke(self, op: str, process: str, key: str | None = None, **data: Any) -> Record:
        return self._append("invoke", op, process=process, key=key, data=data)

    def complete(self, invoke: Record, outcome: Outcome, **data: Any) -> Record:
        if invoke.type != "invoke":
            raise HistoryError(f"record {invoke.index} is a {invoke.type}, not an invoke")
        if outcome not in OUTCOMES:
            raise HistoryError(f"unknown outcome {outcome!r}")
        return self._append(
            outcome, invoke.op, process=invoke.process, key=invoke.key, ref=invoke.index, data=data
        )

    def fault(
        self,
        phase: FaultPhase,
        name: str,
        target: str,
        inject: Record | None = None,
        **data: Any,
    ) -> Record:
        """Record a fault phase; every phase after ``inject`` refers to it."""
        if phase != "inject" and inject is None:
            raise HistoryError(f"fault phase {phase!r} needs the inject record")
        return self._append(
            "fault",
            name,
            process="nemesis",
            key=target,
            ref=None if inject is None else inject.index,
            data={"phase": phase, **data},
        )

    def snapshot(self, name: str, rows: Iterable[Mapping[str, Any]], **data: Any) -> Record:
        return self._append("snapshot", name, data={"rows": [dict(r) for r in rows], **data})

    def lag(self, seconds: float) -> Record:
        return self._append("lag", "loop_lag", data={"lag_s": seconds})

    def note(self, op: str, **data: Any) -> Record:
        return self._append("note", op, data=data)

    def stream_to(self, sink: TextIO | None) -> None:
        """Mirror every new record to ``sink`` so a killed run still leaves its history.

        Flushed in batches (:mod:`chaos.record.sink`); ``None`` flushes and stops.
        """
        with self._lock:
            self._swap_sink(None if sink is None else BatchedSink(sink))

    def stream_to_path(self, path: Path) -> Path:
        """Write the history so far to ``path`` (header first) and append every new record
        as it is made, so the file is a loadable history at every moment, at most a
        batch behind.  :meth:`close_stream` flushes and closes it."""
        if not self._retain and self._count:
            raise HistoryError("a history that keeps no records must stream from its start")
        path.parent.mkdir(parents=True, exist_ok=True)
        sink = BatchedSink(path.open("w", encoding="utf-8"), owns_file=True)
        with self._lock:
            sink.write_line(self._header_line())
            for rec in self._records:
                sink.write(rec)
            self._swap_sink(sink)
        return path

    def close_stream(self) -> None:
        self.stream_to(None)

    @property
    def streaming(self) -> bool:
        """True while new records are mirrored to a stream (the file is at most 0.5 s behind)."""
        return self._sink is not None

    def _swap_sink(self, sink: BatchedSink | None) -> None:
        if self._sink is not None:
            self._sink.close()
        self._sink = sink

    # -- reading ---------------------------------------------------------
    @property
    def records(self) -> tuple[Record, ...]:
        if not self._retain:
            raise HistoryError("this history keeps no records: read its stream instead")
        with self._lock:
            return tuple(self._records)

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def operations(self, op: str | None = None) -> list[Operation]:
        """Invokes paired with completions, in invoke order."""
        records = self.records
        completions: dict[int, Record] = {}
        for rec in records:
            if rec.type in OUTCOMES and rec.ref is not None:
                completions[rec.ref] = rec
        return [
            Operation(rec, completions.get(rec.index))
            for rec in records
            if rec.type == "invoke" and (op is None or rec.op == op)
        ]

    def fault_windows(self) -> list[FaultWindow]:
        return fault_windows_of(self.records)

    def snapshots(self, name: str | None = None) -> list[Record]:
        return [r for r in self.records if r.type == "snapshot" and (name is None or r.op == name)]

    def lag_samples(self) -> list[float]:
        return [float(r.data["lag_s"]) for r in self.records if r.type == "lag"]

    # -- JSONL -----------------------------------------------------------
    def header(self) -> JSONDict:
        return {"loomchaos_history": 1, "seed": self.seed, "meta": self.meta}

    def _header_line(self) -> str:
        return json.dumps(self.header(), sort_keys=True, default=str)

    def dump(self, fp: TextIO) -> None:
        fp.write(self._header_line() + "\n")
        write_records(fp, self.records)

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as fp:
            self.dump(fp)
        return path

    @classmethod
    def load(cls, fp: Iterable[str | bytes]) -> History:
        """A history from its JSONL lines (a header line first, when there is one)."""
        header = Header()
        records = list(assemble(iter_lines(fp, header)))
        history = cls(seed=header.seed, meta=header.meta)
        history._records, history._count = records, len(records)
        return history

    @classmethod
    def read(cls, path: Path) -> History:
        """A saved or streamed history; a last line cut by a killed writer is left out."""
        with path.open("rb") as fp:
            return cls.load(fp)
