"""What the checkers read from a history, gathered in one pass over its records.

:class:`FactsFold` takes the records one at a time, in history order, and keeps
only what a checker reads: each ``start_run`` and ``cancel`` as one compact
:class:`ClientRun`/:class:`CancelCall` (paired with its completion as the
completion arrives), the database snapshots and audit rows decoded, the liveness
probes, the notes the checkers read, the fault records, and where to find the
first lines about each agent for a verdict's evidence excerpt.  Both ways of
checking use it: :meth:`CheckContext.from_history` feeds it the in-memory
records, :mod:`chaos.checks.streamed` feeds it a history file line by line (a
snapshot's rows part by part), so the two build the same facts by one piece of
code, and every checker runs unchanged on either.
"""

from __future__ import annotations

import gc
import sys
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Generic, NamedTuple, TypeVar

from chaos.checks.params import CheckParams
from chaos.record.handles import FirstHandles
from chaos.record.history import FaultWindow, Outcome, Record, fault_windows_of
from chaos.record.jsonl import Head, Part
from chaos.record.readers import note_key, snapshot_from_record
from chaos.record.rows import audit_row, own_audit_rows, own_run_rows, run_row, slot_setters
from chaos.record.vocabulary import (
    NOTE_AUDIT,
    NOTE_CIRCUIT_OUTPUTS,
    NOTE_DONE_EVENTS,
    NOTE_LIVE_PROBE,
    NOTE_PARAMS,
    OP_CANCEL,
    OP_RUN_STATUS,
    OP_START_RUN,
    SNAPSHOT_OP,
    AuditRow,
    Snapshot,
)

Open = TypeVar("Open")
Closed = TypeVar("Closed")

#: The most history lines an evidence excerpt quotes about one key.
EXCERPT_MAX = 12


_intern = sys.intern  # (a module global: no attribute lookup on each of millions of calls)


def _interned(value: Any) -> str | None:
    """``str(value)``, shared with every equal string: a soak repeats a few replica ids,
    stop reasons and users across millions of runs."""
    return None if value is None else _intern(str(value))


@dataclass(frozen=True, slots=True)
class ClientRun:
    """One ``start_run`` as the driver saw it (mono times on the suite's clock)."""

    agent_id: str
    user_id: str | None
    via: str | None
    circuit: str | None
    outcome: Outcome | None
    run_id: str | None
    replica_id: str | None
    code: str | None
    got_done: bool
    done_stop_reason: str | None
    got_error: bool
    error: str | None
    cut: bool
    start: float
    end: float | None
    invoke_index: int
    #: When the first stream frame arrived (mono): the target had admitted the run by then
    #: (a queued or stuck POST has no response yet).  None when no frame was recorded.
    admitted: float | None = None
    #: The HTTP status of a refused start (``outcome == "fail"``), when there was one.
    http_status: int | None = None

    @property
    def maybe_admitted(self) -> bool:
        """Refused with a 5xx that carries no target code: the load balancer's own answer
        (502/504 when the replica died mid-request) or a server error.  The target may have
        taken a quota slot and written the run's row before the answer was lost."""
        return (
            self.outcome == "fail"
            and self.code is None
            and self.http_status is not None
            and self.http_status >= 500
        )

    @property
    def accepted(self) -> bool:
        """The target took the run: the stream finished, or its ``agent`` event arrived."""
        return self.outcome == "ok" or self.run_id is not None

    @property
    def stream_broken(self) -> bool:
        """The client never learned how the run ended (stream cut, or never completed)."""
        return self.outcome == "info" or self.outcome is None


@dataclass(frozen=True, slots=True)
class CancelCall:
    """One cancel request and what came back."""

    agent_id: str
    via: str | None
    reason: str | None
    outcome: Outcome | None
    classification: str | None
    cancelled: bool | None
    response_reason: str | None
    response_status: str | None
    start: float
    end: float | None
    invoke_index: int

    @property
    def latency(self) -> float | None:
        return None if self.end is None else self.end - self.start


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


class RunInvoke(NamedTuple):
    """What a ``start_run`` invoke says: a run's fields before any completion."""

    agent_id: str
    user_id: str | None
    via: str | None
    circuit: str | None
    start: float
    invoke_index: int


def _data_fields(inv: Record, *names: str) -> list[str | None]:
    return [_interned(inv.data.get(name)) for name in names]


#: A tuple, not ``int | float``: ``isinstance`` checks it at C speed (an inline union is
#: built and checked anew each time, 3 times as long; once per stream frame of a run).
_NUMBER = (int, float)


def open_run(inv: Record) -> RunInvoke:
    get = inv.data.get
    return RunInvoke(
        _interned(inv.key) or "",
        _interned(get("user_id")),
        _interned(get("via")),
        _interned(get("circuit")),
        inv.mono,
        inv.index,
    )


def close_run(opened: RunInvoke | ClientRun, done: Record | None) -> ClientRun:
    """The run ``opened`` describes (its invoke, or the run an earlier completion closed),
    as its completion ``done`` ends it; ``None``: never completed."""
    data = done.data if done is not None else {}
    get = data.get
    outcome: Outcome | None = None if done is None else done.type  # type: ignore[assignment]
    stop_reason = _interned(get("stop_reason"))
    # One walk over the stream's frames: the first frame's time, and which kinds came.
    admitted: float | None = None
    saw_done = saw_error = False
    for event in get("events") or ():
        if not isinstance(event, dict):
            continue
        kind = event.get("type")
        if type(kind) is not str:
            kind = str(kind)  # as a set of str(type) would hold it
        saw_done = saw_done or kind == "done"
        saw_error = saw_error or kind == "error"
        mono = event.get("mono")
        if type(mono) is not float:  # (a float, nearly always, needs no float())
            if not isinstance(mono, _NUMBER):
                continue
            mono = float(mono)
        if admitted is None or mono < admitted:  # min(): the first of equal ones
            admitted = mono
    end = get("end")  # the driver's own word for how the stream ended, when present
    if end is not None:
        got_done = outcome == "ok" and end == "done"
        got_error = outcome == "ok" and end == "error"
    else:
        got_done = outcome == "ok" and (saw_done or stop_reason is not None)
        got_error = outcome == "ok" and (saw_error or (not got_done and get("error") is not None))
    failed = outcome == "fail"
    return _client_run(
        opened.agent_id,
        opened.user_id,
        opened.via,
        opened.circuit,
        outcome,
        _interned(get("run_id")),
        _interned(get("replica_id")),
        _interned(get("code")) if failed else None,
        got_done,
        stop_reason if got_done else None,
        got_error,
        _interned(get("error")),
        bool(get("cut", False)),
        opened.start,
        None if done is None else done.mono,
        opened.invoke_index,
        admitted,
        _opt_int(get("status")) if failed else None,
    )


_CLIENT_RUN_SET = slot_setters(ClientRun)


def _client_run(*fields: Any) -> ClientRun:
    """``ClientRun(*fields)``, its slots filled one by one: a frozen dataclass's
    ``__init__`` sets each field through ``object.__setattr__``, twice the time, and a
    soak closes a million runs.  Unrolled: a loop over the setters costs a third more."""
    if _CLIENT_RUN_SET is None:
        return ClientRun(*fields)
    (s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14, s15, s16, s17) = (
        _CLIENT_RUN_SET
    )
    (f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17) = fields
    run = object.__new__(ClientRun)
    s0(run, f0)
    s1(run, f1)
    s2(run, f2)
    s3(run, f3)
    s4(run, f4)
    s5(run, f5)
    s6(run, f6)
    s7(run, f7)
    s8(run, f8)
    s9(run, f9)
    s10(run, f10)
    s11(run, f11)
    s12(run, f12)
    s13(run, f13)
    s14(run, f14)
    s15(run, f15)
    s16(run, f16)
    s17(run, f17)
    return run


def _opt_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class CancelInvoke(NamedTuple):
    """What a ``cancel`` invoke says: a cancel's fields before any completion."""

    agent_id: str
    via: str | None
    reason: str | None
    start: float
    invoke_index: int


def open_cancel(inv: Record) -> CancelInvoke:
    via, reason = _data_fields(inv, "via", "reason")
    return CancelInvoke(_interned(inv.key) or "", via, reason, inv.mono, inv.index)


def close_cancel(opened: CancelInvoke | CancelCall, done: Record | None) -> CancelCall:
    """The cancel ``opened`` describes, as its completion ``done`` ends it."""
    data = done.data if done is not None else {}
    cancelled = data.get("cancelled")
    return CancelCall(
        agent_id=opened.agent_id,
        via=opened.via,
        reason=opened.reason,
        outcome=None if done is None else done.type,  # type: ignore[arg-type]
        classification=_interned(data.get("classification")),
        cancelled=None if cancelled is None else bool(cancelled),
        response_reason=_interned(data.get("reason")),
        response_status=_interned(data.get("status")),
        start=opened.start,
        end=None if done is None else done.mono,
        invoke_index=opened.invoke_index,
    )


# -- the fold -----------------------------------------------------------------------
@dataclass
class HistoryFacts:
    """Everything a checker reads from one history (see :class:`FactsFold`)."""

    client_runs: list[ClientRun]
    cancels: list[CancelCall]
    snapshots: list[Snapshot]
    audit: list[AuditRow]
    fault_windows: list[FaultWindow]
    live_probes: dict[str, list[Record]]
    done_event_run_ids: set[str] | None = None
    circuit_outputs: dict[tuple[str, str | None], dict[str, Any]] = field(default_factory=dict)
    params_note: Record | None = None
    first_clocks: tuple[float, float] | None = None
    #: The first :data:`EXCERPT_MAX` records about each key: records, or byte offsets
    #: that ``load_record`` turns back into records.
    excerpt_handles: Mapping[str, list[Any]] = field(default_factory=dict)
    load_record: Callable[[Any], Record] = lambda handle: handle

    def recorded_params(self) -> CheckParams | None:
        """The last recorded parameters (read only when asked: an override skips them)."""
        note = self.params_note
        return None if note is None else CheckParams.from_dict(note.data)

    def excerpt_records(self, key: str, limit: int) -> list[Record]:
        if limit > EXCERPT_MAX:
            raise ValueError(f"an excerpt quotes at most {EXCERPT_MAX} lines, not {limit}")
        return [self.load_record(h) for h in self.excerpt_handles.get(key, [])[:limit]]


class _Pairing(Generic[Open, Closed]):
    """Invokes of one op in history order, each closed by its completion as it arrives.

    A completion finds its invoke by index with a binary search over the invoke indexes
    (increasing, as the records are), so no per-run map is kept; a later completion of the
    same invoke replaces the earlier one, as it does in the in-memory pairing.  Invokes
    never completed are closed by nothing at the end.
    """

    def __init__(
        self,
        opener: Callable[[Record], Open],
        closer: Callable[[Open | Closed, Record | None], Closed],
        closed: type[Closed],
    ) -> None:
        self._items: list[Open | Closed] = []
        self._indexes = array("q")
        self._open, self._close, self._closed = opener, closer, closed

    def invoke(self, rec: Record, early: Record | None) -> None:
        item = self._open(rec)
        self._items.append(item if early is None else self._close(item, early))
        self._indexes.append(rec.index)

    def complete(self, ref: int, done: Record) -> bool:
        at = bisect_left(self._indexes, ref)
        if at == len(self._indexes) or self._indexes[at] != ref:
            return False
        self._items[at] = self._close(self._items[at], done)
        return True

    def finish(self) -> list[Closed]:
        closed = self._closed
        return [i if isinstance(i, closed) else self._close(i, None) for i in self._items]


class FactsFold:
    """Feed it a history's records in order (:meth:`add`), or a history file's heads and
    parts (:meth:`add_item`); :meth:`finish` hands back the :class:`HistoryFacts`."""

    def __init__(self) -> None:
        self._runs = _Pairing(open_run, close_run, ClientRun)
        self._cancels = _Pairing(open_cancel, close_cancel, CancelCall)
        self._early: dict[int, Record] = {}  # completions read before their invoke
        self._snapshots: list[Snapshot] = []
        self._audit: list[AuditRow] = []
        self._audit_by_seq: dict[int, AuditRow] | None = None
        self._images: dict[tuple[Any, ...], dict[str, object]] = {}  # shared audit images
        self._faults: list[Record] = []
        self._probes: dict[str, list[Record]] = {}
        self._done_events: set[str] | None = None
        self._outputs: dict[tuple[str, str | None], dict[str, Any]] = {}
        self._params_note: Record | None = None
        self._first: tuple[float, float] | None = None
        self._excerpts = FirstHandles(EXCERPT_MAX)
        self._split: Head | None = None  # the record whose rows arrive on part lines
        self._split_rows: list[Any] = []

    # -- input ------------------------------------------------------------------------
    def add(self, rec: Record, handle: Any = None) -> None:
        """One whole record; ``handle`` is what an excerpt keeps of it (default: itself)."""
        self._see(rec, rec if handle is None else handle)
        self._dispatch(rec)

    def add_item(self, item: Head | Part) -> None:
        """One line of a history file: a record (its byte offset is its excerpt handle),
        or a part carrying more rows of the record before it."""
        if isinstance(item, Part):
            rows = self._owned(item.items) if item.typed else self._decoded(item.items)
            self._split_rows.extend(rows)
            return
        self._close_split()
        typed = item.rows  # a db snapshot's rows, decoded typed by the parser
        if not item.parts:
            if typed is None:
                self.add(item.record, item.offset)
                return
            self._see(item.record, item.offset)
            runs = tuple(own_run_rows(typed))  # what _dispatch makes of the dicts
            self._snapshots.append(snapshot_from_record(item.record, runs))
            return
        self._see(item.record, item.offset)
        self._split = item
        if typed is not None:
            self._split_rows = own_run_rows(typed)
        else:
            self._split_rows = self._decoded(item.record.data.get("rows", ()))

    def _see(self, rec: Record, handle: Any) -> None:
        """What every record counts for: the first clocks, and the excerpt of its key."""
        if self._first is None:
            self._first = (rec.wall, rec.mono)
        key = note_key(rec) if rec.type == "note" else rec.key
        if key is not None:
            self._excerpts.add(key, handle)

    def _dispatch(self, rec: Record) -> None:
        kind = rec.type
        if kind == "invoke":
            self._invoke(rec)
        elif kind in ("ok", "fail", "info"):
            self._completion(rec)
        elif kind == "note":
            self._note(rec)
        elif kind == "snapshot" and rec.op == SNAPSHOT_OP:
            rows = tuple([run_row(r) for r in rec.data.get("rows", ())])
            self._snapshots.append(snapshot_from_record(rec, rows))
        elif kind == "fault":
            self._faults.append(rec)

    def _split_kind(self) -> str | None:
        rec = None if self._split is None else self._split.record
        if rec is not None and rec.type == "snapshot" and rec.op == SNAPSHOT_OP:
            return "snapshot"
        if rec is not None and rec.type == "note" and rec.op == NOTE_AUDIT:
            return "audit"
        return None

    def _decoded(self, items: list[Any]) -> list[Any]:
        """Rows decoded part by part, as they are read (the raw dicts go with the part):
        run rows for a database snapshot, audit rows for an audit note."""
        kind = self._split_kind()
        if kind == "snapshot":
            return [run_row(r) for r in items]
        if kind == "audit":
            images = self._images
            return [audit_row(r, images) for r in items]
        return list(items)

    def _owned(self, rows: list[Any]) -> list[Any]:
        """Rows a part line gave decoded typed (the parser decodes them typed only for
        the two kinds :meth:`_decoded` decodes), made what :meth:`_decoded` makes."""
        if self._split_kind() == "snapshot":
            return own_run_rows(rows)
        return own_audit_rows(rows, self._images)

    def _close_split(self) -> None:
        head, rows = self._split, self._split_rows
        if head is None:
            return  # (most records: nothing split before them)
        kind = self._split_kind()
        self._split, self._split_rows = None, []
        rec = head.record
        if kind == "snapshot":
            self._snapshots.append(snapshot_from_record(rec, tuple(rows)))
        elif kind == "audit":
            self._add_audit(rows)
        else:
            self._dispatch(replace(rec, data={"rows": rows, **rec.data}))

    # -- records --------------------------------------------------------------------
    def _invoke(self, rec: Record) -> None:
        if rec.op == OP_START_RUN:
            self._runs.invoke(rec, self._early.pop(rec.index, None))
        elif rec.op == OP_CANCEL:
            self._cancels.invoke(rec, self._early.pop(rec.index, None))

    def _completion(self, rec: Record) -> None:
        if rec.type == "ok" and rec.op == OP_RUN_STATUS:
            self._probe(rec)
        ref = rec.ref
        if ref is None:
            return
        if ref > rec.index:
            self._early[ref] = rec  # its invoke is further down: paired when it comes
        elif not self._runs.complete(ref, rec):
            self._cancels.complete(ref, rec)  # or neither: a poll's, or a stray completion

    def _probe(self, rec: Record) -> None:
        run_id = rec.data.get("run_id")
        if run_id is not None:
            self._probes.setdefault(str(run_id), []).append(rec)

    def _note(self, rec: Record) -> None:
        op = rec.op
        if op == NOTE_LIVE_PROBE:
            self._probe(rec)
        elif op == NOTE_AUDIT:
            rows = rec.data.get("rows", ())
            images = self._images
            self._add_audit([audit_row(raw, images) for raw in rows])
        elif op == NOTE_DONE_EVENTS:
            found = self._done_events if self._done_events is not None else set()
            found.update(str(x) for x in rec.data.get("run_ids", ()))
            self._done_events = found
        elif op == NOTE_CIRCUIT_OUTPUTS:
            key = note_key(rec)
            if key is not None:
                user = _opt_str(rec.data.get("user_id"))
                self._outputs[(key, user)] = dict(rec.data.get("outputs") or {})
        elif op == NOTE_PARAMS:
            self._params_note = rec

    def _add_audit(self, rows: list[AuditRow]) -> None:
        """Rows in increasing ``seq`` stay a list; the first repeat or step back switches to
        de-duplication by ``seq`` (the last row of a ``seq`` wins, as in the in-memory read)."""
        by_seq = self._audit_by_seq
        if by_seq is None:
            audit = self._audit
            last = audit[-1].seq if audit else None
            for i, row in enumerate(rows):
                if last is not None and row.seq <= last:
                    audit.extend(rows[:i])
                    by_seq = self._audit_by_seq = {r.seq: r for r in audit}
                    rows = rows[i:]
                    break
                last = row.seq
            else:
                audit.extend(rows)
                return
        for row in rows:
            by_seq[row.seq] = row

    # -- output -----------------------------------------------------------------------
    def finish(self, load_record: Callable[[Any], Record] | None = None) -> HistoryFacts:
        self._close_split()
        if self._audit_by_seq is not None:
            by_seq = self._audit_by_seq
            audit = [by_seq[s] for s in sorted(by_seq)]
        else:
            audit = self._audit
        snapshots = sorted(self._snapshots, key=lambda s: s.mono)
        runs, cancels = self._runs.finish(), self._cancels.finish()
        windows, outputs = fault_windows_of(self._faults), self._outputs
        facts = HistoryFacts(runs, cancels, snapshots, audit, windows, self._probes)
        facts.done_event_run_ids, facts.circuit_outputs = self._done_events, outputs
        facts.params_note, facts.first_clocks = self._params_note, self._first
        facts.excerpt_handles = self._excerpts
        if load_record is not None:
            facts.load_record = load_record
        return facts


@contextmanager
def gc_paused(promote: bool = False) -> Iterator[None]:
    """No cyclic garbage collection inside: gathering and checking allocate millions of
    small objects that all stay alive, and each automatic collection re-walks every one
    of them (a third of the time at 10^5 runs).  Reference counting still frees memory;
    cycles made meanwhile are collected once the block ends.

    ``promote``: what is still alive at the end goes straight to the oldest generation,
    as if it had survived the young collections that would otherwise each walk it once
    more right after the block (0.2 s at 10^5 runs, seconds at 10^6); cycles made inside
    then wait for the next full collection.  Skipped when something else has frozen
    objects (``gc.freeze``): they would be thawed too."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if promote and gc.get_freeze_count() == 0:
            gc.freeze()  # everything tracked into the permanent generation, in O(1) ...
            gc.unfreeze()  # ... and back into the oldest one, unwalked
        if was_enabled:
            gc.enable()


def gather(records: Iterable[Record]) -> HistoryFacts:
    """The facts of in-memory records."""
    fold = FactsFold()
    with gc_paused():
        for rec in records:
            fold.add(rec)
        return fold.finish()
