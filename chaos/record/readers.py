"""How checker evidence is stored inside the history, and read back.

A saved ``history.jsonl`` must be enough to re-run every checker offline, so
everything a checker reads that is not an operation or a fault (database
snapshots, the audit log, the check parameters, final liveness probes,
circuit outputs) is written into the history as ``snapshot`` or ``note``
records with the shapes below.

Note shapes (``History.note(op, **data)``; ``key`` travels in ``data`` because
``note`` has no key argument):

``check_params``
    :meth:`CheckParams.to_dict` fields.  The last one wins.
``audit``
    ``rows``: list of :class:`~chaos.record.vocabulary.AuditRow` as dicts.  Several notes
    are concatenated and de-duplicated by ``seq``.
``live_probe``
    ``agent_id``, ``run_id``, ``replica_id`` (the replica that was asked: it
    must be the run's owner), ``live`` (bool, the owner's ``live`` field),
    ``status`` (the run's status it reported) and ``error`` (why the probe
    failed, e.g. connection refused).  Taken AFTER the final snapshot, once per
    run that snapshot shows ``running``.
``done_events``
    ``run_ids``: runs for which the database's ``events`` table holds a
    ``done`` event.  Optional; without it the client's own ``done`` is used.
``circuit_outputs``
    ``key`` = circuit id (``c7``), ``user_id`` (the circuit's user: memory keys
    live in the user's scope, so (circuit, user) names one circuit instance
    even when a later wave reuses the id), ``outputs``: a mapping from each
    memory key read back (``c7-research``, ``c7-research-edited``,
    ``c7-research-scored``) to its value, ``None`` when the key was absent.
    Circuit membership comes from the ``circuit`` field of each ``start_run``
    invoke (the driver's tag).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import Any, cast

from chaos.record.history import History, Record
from chaos.record.vocabulary import (
    NOTE_AUDIT,
    NOTE_CIRCUIT_OUTPUTS,
    NOTE_DONE_EVENTS,
    NOTE_LIVE_PROBE,
    SNAPSHOT_OP,
    AuditRow,
    QuotaRow,
    ReplicaRow,
    RunRow,
    Snapshot,
)

CIRCUIT_OUTPUT_SUFFIXES: tuple[str, ...] = ("-research", "-research-edited", "-research-scored")


def circuit_output_keys(circuit_id: str) -> tuple[str, ...]:
    """The three user-memory keys a completed circuit must leave behind."""
    return tuple(circuit_id + suffix for suffix in CIRCUIT_OUTPUT_SUFFIXES)


# -- rows <-> dicts ------------------------------------------------------------
def run_to_dict(row: RunRow) -> dict[str, Any]:
    # Written out by hand: dataclasses.asdict deep-copies and is ten times slower,
    # which matters for a final snapshot of a million rows.
    return {
        "run_id": row.run_id,
        "agent_id": row.agent_id,
        "user_id": row.user_id,
        "replica_id": row.replica_id,
        "status": row.status,
        "stop_reason": row.stop_reason,
        "error": row.error,
        "started_at": row.started_at,
        "completed_at": row.completed_at,
        "last_heartbeat_at": row.last_heartbeat_at,
    }


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _interned(value: Any) -> str | None:
    # A soak's snapshots repeat a few users, replicas, statuses and reasons a million
    # times: one shared string each instead of a copy per row.
    return None if value is None else sys.intern(str(value))


def run_from_dict(raw: Mapping[str, Any]) -> RunRow:
    return RunRow(
        # run and agent ids are interned too: the same id sits in every snapshot that
        # shows the run, in its audit rows and in the client's record of it
        run_id=sys.intern(str(raw["run_id"])),
        agent_id=sys.intern(str(raw["agent_id"])),
        user_id=_interned(raw.get("user_id")),
        replica_id=_interned(raw.get("replica_id")),
        status=sys.intern(str(raw["status"])),
        stop_reason=_interned(raw.get("stop_reason")),
        error=_interned(raw.get("error")),
        started_at=_opt_float(raw.get("started_at")),
        completed_at=_opt_float(raw.get("completed_at")),
        last_heartbeat_at=_opt_float(raw.get("last_heartbeat_at")),
    )


def audit_to_dict(row: AuditRow) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "table": row.table,
        "action": row.action,
        "key": row.key,
        "old": row.old,
        "new": row.new,
        "at": row.at,
    }


def audit_from_dict(
    raw: Mapping[str, Any], shared: dict[tuple[Any, ...], dict[str, object]] | None = None
) -> AuditRow:
    """One audit row; ``shared`` (kept by the caller across rows) lets equal row images
    without a number in them (an insert's ``running`` image, the same for every run) be
    one dict instead of a million equal ones.  Images are never mutated by a reader."""
    action = str(raw["action"])
    if action not in ("insert", "update", "delete"):
        raise ValueError(f"audit row {raw.get('seq')}: unknown action {action!r}")
    return AuditRow(
        seq=int(raw["seq"]),
        table=sys.intern(str(raw["table"])),
        action=cast(Any, sys.intern(action)),
        key=sys.intern(str(raw["key"])),
        old=_image(raw.get("old"), shared),
        new=_image(raw.get("new"), shared),
        at=float(raw["at"]),
    )


def _image(value: Any, shared: dict[tuple[Any, ...], dict[str, object]] | None) -> Any:
    if value is None:
        return None
    image = dict(value)
    if shared is None or not all(v is None or isinstance(v, str | bool) for v in image.values()):
        return image  # timestamps make an image unique: sharing would only cost memory
    return shared.setdefault(tuple(image.items()), image)


# -- snapshots -------------------------------------------------------------------
def record_snapshot(history: History, snap: Snapshot) -> Record:
    """Store a database snapshot; its own clocks go in the data (it was taken before it is
    recorded, and reading the database can take a while)."""
    return history.snapshot(
        SNAPSHOT_OP,
        (run_to_dict(r) for r in snap.runs),
        at_mono=snap.mono,
        at_wall=snap.wall,
        replicas=[
            {
                "replica_id": r.replica_id,
                "started_at": r.started_at,
                "last_heartbeat_at": r.last_heartbeat_at,
            }
            for r in snap.replicas
        ],
        quotas=[{"user_id": q.user_id, "active_count": q.active_count} for q in snap.quotas],
    )


def snapshot_from_record(rec: Record, runs: tuple[RunRow, ...] | None = None) -> Snapshot:
    """The snapshot a ``db`` record stores; ``runs`` when its rows were decoded already
    (read part by part from a file, see :mod:`chaos.record.jsonl`)."""
    data = rec.data
    return Snapshot(
        mono=float(data.get("at_mono", rec.mono)),
        wall=float(data.get("at_wall", rec.wall)),
        runs=tuple(run_from_dict(r) for r in data.get("rows", ())) if runs is None else runs,
        replicas=tuple(
            ReplicaRow(
                replica_id=str(r["replica_id"]),
                started_at=_opt_float(r.get("started_at")),
                last_heartbeat_at=_opt_float(r.get("last_heartbeat_at")),
            )
            for r in data.get("replicas", ())
        ),
        quotas=tuple(
            QuotaRow(user_id=str(q["user_id"]), active_count=int(q["active_count"]))
            for q in data.get("quotas", ())
        ),
    )


def snapshots_from_history(history: History) -> list[Snapshot]:
    """Every database snapshot in the history, oldest first."""
    snaps = [snapshot_from_record(r) for r in history.snapshots(SNAPSHOT_OP)]
    snaps.sort(key=lambda s: s.mono)
    return snaps


# -- audit log ---------------------------------------------------------------------
def record_audit(history: History, rows: Iterable[AuditRow]) -> Record:
    return history.note(NOTE_AUDIT, rows=[audit_to_dict(r) for r in rows])


def audit_from_history(history: History) -> list[AuditRow]:
    """All audit rows recorded, de-duplicated by ``seq`` and in commit order."""
    by_seq: dict[int, AuditRow] = {}
    for rec in history.records:
        if rec.type == "note" and rec.op == NOTE_AUDIT:
            for raw in rec.data.get("rows", ()):
                row = audit_from_dict(raw)
                by_seq[row.seq] = row
    return [by_seq[s] for s in sorted(by_seq)]


# -- parameters --------------------------------------------------------------------
# -- final probes and outputs -------------------------------------------------------
def record_live_probe(
    history: History,
    *,
    agent_id: str,
    run_id: str,
    replica_id: str,
    live: bool,
    status: str | None = None,
    error: str | None = None,
) -> Record:
    return history.note(
        NOTE_LIVE_PROBE,
        key=agent_id,
        agent_id=agent_id,
        run_id=run_id,
        replica_id=replica_id,
        live=live,
        status=status,
        error=error,
    )


def record_done_events(history: History, run_ids: Iterable[str]) -> Record:
    return history.note(NOTE_DONE_EVENTS, run_ids=sorted(run_ids))


def record_circuit_outputs(
    history: History, circuit_id: str, user_id: str | None, outputs: Mapping[str, Any]
) -> Record:
    return history.note(
        NOTE_CIRCUIT_OUTPUTS, key=circuit_id, user_id=user_id, outputs=dict(outputs)
    )


def note_key(rec: Record) -> str | None:
    """A note's key: ``Record.key`` if set, else the ``key`` stored in its data."""
    if rec.key is not None:
        return rec.key
    value = rec.data.get("key")
    return None if value is None else str(value)
