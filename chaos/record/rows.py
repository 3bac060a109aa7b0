"""Database rows from their stored dicts, fast: what a soak's checker decodes millions of.

:func:`run_row` and :func:`audit_row` return what
:func:`~chaos.record.readers.run_from_dict` and :func:`~chaos.record.readers.audit_from_dict`
return (equal rows, the same exceptions in the same order), about twice as fast: no
helper call per field, positional construction.  Anything but a plain ``dict`` row, or an
audit action outside the three, goes to the readers' own functions.

They also share equal floats inside one row (a run row's ``last_heartbeat_at`` equal to
its ``started_at``, an update's unchanged ``last_heartbeat_at`` in its old and new
images, an image's time equal to the row's ``at``): one float object instead of two, 32
bytes a time on a soak's million rows.  Equal values, so nothing a reader does can tell;
zeros are never shared (``-0.0 == 0.0``).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from typing import Any

from chaos.record.readers import audit_from_dict, run_from_dict
from chaos.record.vocabulary import AuditRow, RunRow

_intern = sys.intern
_new = object.__new__
#: The audit actions, interned once: the row's action is the shared string.
_ACTIONS: dict[str, str] = {a: _intern(a) for a in ("insert", "update", "delete")}

Images = dict[tuple[Any, ...], dict[str, object]]
#: An image value that is no timestamp.  A tuple: ``isinstance`` takes it at C speed, a
#: ``str | bool`` written inline is built and checked anew each time (3 times as long).
_UNSTAMPED = (str, bool)


def _setters(cls: type) -> list[Callable[[object, object], None]] | None:
    """The slot setters of a frozen slotted dataclass, in field order: filling the slots
    of ``object.__new__(cls)`` with them makes the instance its ``__init__`` makes, in
    half the time (a frozen ``__init__`` goes through ``object.__setattr__`` per field).
    ``None`` (use the constructor) when the class has anything else to run or set."""
    names = [f.name for f in dataclasses.fields(cls)]
    if hasattr(cls, "__post_init__") or list(getattr(cls, "__slots__", ())) != names:
        return None
    return [getattr(cls, name).__set__ for name in names]


_RUN_SET = _setters(RunRow)
_AUDIT_SET = _setters(AuditRow)
#: The same trick for another class of the checkers' (their facts' ``ClientRun``).
slot_setters = _setters


def run_row(raw: Any) -> RunRow:
    """:func:`~chaos.record.readers.run_from_dict`, faster (see the module)."""
    if type(raw) is not dict:
        return run_from_dict(raw)
    get = raw.get
    run_id = _intern(str(raw["run_id"]))
    agent_id = _intern(str(raw["agent_id"]))
    user_id = get("user_id")
    if user_id is not None:
        user_id = _intern(str(user_id))
    replica_id = get("replica_id")
    if replica_id is not None:
        replica_id = _intern(str(replica_id))
    status = _intern(str(raw["status"]))
    stop_reason = get("stop_reason")
    if stop_reason is not None:
        stop_reason = _intern(str(stop_reason))
    error = get("error")
    if error is not None:
        error = _intern(str(error))
    started = get("started_at")
    if started is not None:
        started = float(started)
    completed = get("completed_at")
    if completed is not None:
        completed = float(completed)
    heartbeat = get("last_heartbeat_at")
    if heartbeat is not None:
        heartbeat = float(heartbeat)
        if heartbeat and heartbeat == started:
            heartbeat = started
    if _RUN_SET is None:
        return RunRow(
            run_id,
            agent_id,
            user_id,
            replica_id,
            status,
            stop_reason,
            error,
            started,
            completed,
            heartbeat,
        )
    # the slots filled here, unrolled: a helper call (or a loop) costs what it saves
    s0, s1, s2, s3, s4, s5, s6, s7, s8, s9 = _RUN_SET
    row = _new(RunRow)
    s0(row, run_id)
    s1(row, agent_id)
    s2(row, user_id)
    s3(row, replica_id)
    s4(row, status)
    s5(row, stop_reason)
    s6(row, error)
    s7(row, started)
    s8(row, completed)
    s9(row, heartbeat)
    return row


def audit_row(raw: Any, shared: Images | None = None) -> AuditRow:
    """:func:`~chaos.record.readers.audit_from_dict`, faster (see the module)."""
    if type(raw) is not dict:
        return audit_from_dict(raw, shared)
    action: Any = _ACTIONS.get(str(raw["action"]))  # (one of the three, checked below)
    if action is None:
        return audit_from_dict(raw, shared)  # raises its "unknown action"
    seq = int(raw["seq"])
    table = _intern(str(raw["table"]))
    key = _intern(str(raw["key"]))
    old = raw.get("old")
    if old is not None:
        old = _image(old, shared)
    new: Any = raw.get("new")
    stamped = False  # (an image without a timestamp has no float to share: half the rows)
    if new is not None:  # _image's work, inlined to learn whether it found a timestamp
        new = dict(new)
        for v in new.values():
            if v is not None and not isinstance(v, _UNSTAMPED):
                stamped = True
                break
        else:
            if shared is not None:
                new = shared.setdefault(tuple(new.items()), new)
    at = float(raw["at"])
    if stamped:
        _share_floats(new, old, at)
    if _AUDIT_SET is None:
        return AuditRow(seq, table, action, key, old, new, at)
    s0, s1, s2, s3, s4, s5, s6 = _AUDIT_SET  # unrolled, as in run_row
    row = _new(AuditRow)
    s0(row, seq)
    s1(row, table)
    s2(row, action)
    s3(row, key)
    s4(row, old)
    s5(row, new)
    s6(row, at)
    return row


def _image(value: Any, shared: Images | None) -> dict[str, object]:
    image = dict(value)
    if shared is None:
        return image
    for v in image.values():
        if v is not None and not isinstance(v, _UNSTAMPED):
            return image  # timestamps make an image unique: sharing would only cost memory
    return shared.setdefault(tuple(image.items()), image)


def _share_floats(new: dict[str, object], old: dict[str, object] | None, at: float) -> None:
    """The new image's floats equal to the old image's (same key) or to ``at``: the same
    float object.  Only an image with a float is touched, and it is never a shared one."""
    for k, v in new.items():
        if type(v) is not float or not v:
            continue
        was = None if old is None else old.get(k)
        if type(was) is float and was == v:
            new[k] = was
        elif v == at:
            new[k] = at


# -- rows decoded typed (chaos.record.typed_rows) -------------------------------------
def own_run_rows(rows: list[RunRow]) -> list[RunRow]:
    """Run rows ``msgspec`` decoded typed, made what :func:`run_row` makes of their dicts:
    strings interned and the heartbeat equal to the start the same float, in place (the
    rows are fresh and no one else holds them).  Their types the decoder checked."""
    if _RUN_SET is None:  # (no slots to fill in place: rebuild them the dict way)
        return [run_row(dataclasses.asdict(row)) for row in rows]
    s0, s1, s2, s3, s4, s5, s6, _, _, s9 = _RUN_SET
    for row in rows:
        s0(row, _intern(row.run_id))
        s1(row, _intern(row.agent_id))
        value = row.user_id
        if value is not None:
            s2(row, _intern(value))
        value = row.replica_id
        if value is not None:
            s3(row, _intern(value))
        s4(row, _intern(row.status))
        value = row.stop_reason
        if value is not None:
            s5(row, _intern(value))
        value = row.error
        if value is not None:
            s6(row, _intern(value))
        heartbeat = row.last_heartbeat_at
        if heartbeat and heartbeat == row.started_at:
            s9(row, row.started_at)
    return rows


def own_audit_rows(rows: list[AuditRow], shared: Images | None) -> list[AuditRow]:
    """Audit rows ``msgspec`` decoded typed, made what :func:`audit_row` makes of their
    dicts (strings interned, images without a timestamp shared through ``shared``, the
    new image's floats shared), in place: the rows and their images are fresh."""
    if _AUDIT_SET is None:
        return [audit_row(dataclasses.asdict(row), shared) for row in rows]
    _, s1, s2, s3, s4, s5, _ = _AUDIT_SET
    actions = _ACTIONS
    for row in rows:
        s1(row, _intern(row.table))
        s2(row, actions[row.action])  # (the decoder took only the three)
        s3(row, _intern(row.key))
        old = row.old
        if old is not None and shared is not None:
            old = _shared_image(old, shared)
            s4(row, old)
        new = row.new
        if new is not None:
            for v in new.values():
                if v is not None and not isinstance(v, _UNSTAMPED):
                    _share_floats(new, old, row.at)
                    break
            else:
                if shared is not None:
                    s5(row, shared.setdefault(tuple(new.items()), new))
    return rows


def _shared_image(image: dict[str, object], shared: Images) -> dict[str, object]:
    for v in image.values():
        if v is not None and not isinstance(v, _UNSTAMPED):
            return image
    return shared.setdefault(tuple(image.items()), image)
