"""Synthetic, legal scenario histories: for property tests and the checker benchmark.

A :class:`World` describes a scenario end to end (each run's client view and
database row, kills, reaps, snapshot times); :func:`plan_world` draws a legal
one from a seed, tests mutate it to inject a violation, and :func:`render`
turns it into a :class:`~chaos.record.history.History` carrying everything the
checkers read.  Nothing here talks to a target: it is the checkers' test bench.

The legal world follows the contract: runs start via the load balancer, most
complete (``end_turn``), some are cancelled cross-replica and acknowledged,
some are cut by the client (``client disconnected``), and a killed replica's
running runs are reaped (``replica_died``) with its row deleted within
stale + sweep.  Quota rows count exactly the runs holding a slot.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from chaos.checks.params import CheckParams, record_params
from chaos.record.history import History
from chaos.record.readers import record_audit, record_snapshot
from chaos.record.vocabulary import AuditRow, QuotaRow, ReplicaRow, RunRow, Snapshot

Fate = Literal["complete", "cancel", "cut", "killed"]
WALL0 = 1_700_000_000.0
PREFIX = "tsyn"


@dataclass(slots=True)
class SynthCancel:
    via: str
    start: float
    end: float
    reason: str = "chaos"
    classification: str = "acknowledged"
    cancelled: bool = True


@dataclass(slots=True)
class SynthRun:
    """One run, client side and database side (mono seconds; wall = mono + WALL0)."""

    agent_id: str
    user_id: str
    replica: str
    start: float
    fate: Fate
    run_id: str
    client_end: float | None
    client_outcome: Literal["ok", "info"] | None
    client_events: list[str]
    client_stop_reason: str | None
    client_cut: bool
    db_status: str
    db_stop_reason: str | None
    db_error: str | None
    db_end: float | None
    hold_end: float
    cancel: SynthCancel | None = None
    in_db: bool = True

    def row_at(self, t: float | None) -> RunRow:
        """The database row as a snapshot at mono ``t`` (``None``: the final state) shows it."""
        ended = self.db_end is not None and (t is None or t >= self.db_end)
        return RunRow(
            run_id=self.run_id,
            agent_id=self.agent_id,
            user_id=self.user_id,
            replica_id=self.replica,
            status=self.db_status if ended else "running",
            stop_reason=self.db_stop_reason if ended else None,
            error=self.db_error if ended else None,
            started_at=WALL0 + self.start + 0.01,
            completed_at=WALL0 + self.db_end if ended and self.db_end is not None else None,
            last_heartbeat_at=WALL0 + self.start + 0.01,
        )


@dataclass
class World:
    params: CheckParams
    replicas: tuple[str, ...]
    runs: list[SynthRun]
    kills: dict[str, float]
    reaps: dict[str, float]
    snapshot_times: list[float]
    end_time: float
    include_audit: bool = True
    extra_rows: list[RunRow] = field(default_factory=list)
    extra_audit: list[AuditRow] = field(default_factory=list)
    final_quota_bump: dict[str, int] = field(default_factory=dict)
    auto_cap: bool = True


def _alive(world_kills: dict[str, float], replicas: tuple[str, ...], t: float) -> list[str]:
    return [r for r in replicas if world_kills.get(r, float("inf")) > t]


def plan_world(
    n_runs: int,
    seed: int = 0,
    *,
    replicas: int = 3,
    users: int = 0,
    kill: bool = True,
    cancel_share: float = 0.1,
    cut_share: float = 0.1,
    concurrency: float = 20.0,
    duration: tuple[float, float] = (1.0, 4.0),
    snapshot_every: float = 0.0,
    params: CheckParams | None = None,
    ensure_fates: bool = False,
) -> World:
    """A legal world of ``n_runs`` runs.  Times scale so about ``concurrency`` runs overlap.

    ``ensure_fates`` makes the first runs a healthy cross-replica cancel, a client cut,
    a run caught by the kill, and two healthy completions, whatever the seed draws.
    """
    rng = random.Random(seed)
    p = params or CheckParams()
    ids = tuple(f"r{i + 1}" for i in range(replicas))
    p = replace(p, replica_ids=ids, test_prefix=PREFIX)
    n_users = users or max(1, n_runs // 10)
    mean = sum(duration) / 2
    span = max(mean * 2, n_runs * mean / concurrency)
    kills: dict[str, float] = {}
    reaps: dict[str, float] = {}
    if kill and replicas > 1:
        kills[ids[-1]] = span * 0.5
        reaps[ids[-1]] = span * 0.5 + p.replica_stale_s + p.replica_sweep_s * rng.random()
    runs = []
    skeleton = _skeleton(ids, kills) if ensure_fates else []
    for i in range(n_runs):
        start = rng.uniform(0.0, span)
        length = rng.uniform(*duration)
        alive = _alive(kills, ids, start)
        owner = alive[i % len(alive)]
        roll = rng.random()
        fate: Fate = (
            "cancel"
            if roll < cancel_share
            else ("cut" if roll < cancel_share + cut_share else "complete")
        )
        via = None
        if i < len(skeleton):
            start, length, owner, fate, via = skeleton[i]
        runs.append(
            _make_run(
                i,
                start,
                length,
                owner,
                fate,
                f"{PREFIX}-u{i % n_users}",
                kills,
                reaps,
                ids,
                rng,
                via,
            )
        )
    last = max([r.hold_end for r in runs] + [0.0])
    end = last + 5.0
    step = snapshot_every or max(1.0, span / 8)
    times = [step * k for k in range(1, int(last // step) + 1)] + [end]
    return World(p, ids, runs, kills, reaps, times, end)


def _skeleton(
    ids: tuple[str, ...], kills: dict[str, float]
) -> list[tuple[float, float, str, Fate, str | None]]:
    """(start, length, owner, fate, cancel via) for runs every fate-dependent test needs."""
    healthy = [r for r in ids if r not in kills]
    first, second = healthy[0], healthy[-1]
    plan: list[tuple[float, float, str, Fate, str | None]] = [
        (0.5, 2.0, first, "cancel", second),
        (0.5, 2.0, second, "cut", None),
        (0.2, 2.0, first, "complete", None),
        (0.3, 2.0, second, "complete", None),
    ]
    for replica, at in kills.items():
        plan.append((max(0.0, at - 1.0), 3.0, replica, "complete", None))
    return plan


def _make_run(
    i: int,
    start: float,
    length: float,
    owner: str,
    fate: Fate,
    user: str,
    kills: dict[str, float],
    reaps: dict[str, float],
    ids: tuple[str, ...],
    rng: random.Random,
    via: str | None = None,
) -> SynthRun:
    agent = f"{PREFIX}-a{i}"
    run = SynthRun(
        agent_id=agent,
        user_id=user,
        replica=owner,
        start=start,
        fate=fate,
        run_id=f"r_{i:x}",
        client_end=start + length,
        client_outcome="ok",
        client_events=["session", "agent", "done"],
        client_stop_reason="end_turn",
        client_cut=False,
        db_status="completed",
        db_stop_reason="end_turn",
        db_error=None,
        db_end=start + length - 0.005,
        hold_end=start + length,
    )
    stop_at = start + length * 0.5 if fate in ("cancel", "cut") else start + length
    kill_at = kills.get(owner)
    if kill_at is not None and start < kill_at < stop_at + 0.1:
        reap = reaps[owner]
        run.fate = "killed"
        run.client_end, run.client_outcome = kill_at + 0.05, "info"
        run.client_events, run.client_stop_reason = ["session", "agent"], None
        run.db_status, run.db_stop_reason, run.db_error = (
            "failed",
            "replica_died",
            ("owner replica died"),
        )
        run.db_end = run.hold_end = reap
        return run
    if fate == "cancel":
        vias = [r for r in _alive(kills, ids, stop_at + 1.0) if r != owner] or [owner]
        run.cancel = SynthCancel(via=via or rng.choice(vias), start=stop_at, end=stop_at + 0.05)
        run.client_end = run.hold_end = stop_at + 0.03
        run.client_events, run.client_stop_reason = ["session", "agent", "error"], None
        run.db_status, run.db_stop_reason = "cancelled", "chaos"
        run.db_end = stop_at + 0.02
    elif fate == "cut":
        run.client_end, run.client_outcome, run.client_cut = stop_at, "info", True
        run.client_events, run.client_stop_reason = ["session", "agent"], None
        run.db_status, run.db_stop_reason = "cancelled", "client disconnected"
        run.db_end = run.hold_end = stop_at + 0.05
    return run


# -- rendering -------------------------------------------------------------------------
class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def mono(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.now + WALL0


def _quota_counts(world: World, t: float, candidates: list[SynthRun]) -> Counter[str]:
    return Counter(r.user_id for r in candidates if r.start <= t < r.hold_end)


def _frames(world: World) -> list[Snapshot]:
    """Each snapshot without its run rows (replicas and quotas only: small, and the
    quota peak sets the recorded cap before any snapshot is written)."""
    holders = sorted(world.runs, key=lambda r: r.start)
    hold_starts = [r.start for r in holders]
    longest = max([r.hold_end - r.start for r in world.runs] + [0.0])
    frames = []
    for k, t in enumerate(world.snapshot_times):
        h_lo = bisect.bisect_left(hold_starts, t - longest)
        h_hi = bisect.bisect_right(hold_starts, t)
        counts = _quota_counts(world, t, holders[h_lo:h_hi])
        if k == len(world.snapshot_times) - 1:
            for user, bump in world.final_quota_bump.items():
                counts[user] += bump
        replicas = [
            ReplicaRow(r, WALL0, WALL0 + t)
            for r in world.replicas
            if world.reaps.get(r, float("inf")) > t
        ]
        quotas = [QuotaRow(u, n) for u, n in sorted(counts.items()) if n > 0]
        frames.append(Snapshot(t, WALL0 + t, (), tuple(replicas), tuple(quotas)))
    return frames


def _snapshot_rows(world: World) -> Iterator[tuple[RunRow, ...]]:
    """The run rows of each snapshot, one snapshot at a time (a soak's final one is
    millions of rows: only one is built at once)."""
    runs = sorted((r for r in world.runs if r.in_db), key=lambda r: r.start)
    starts = [r.start for r in runs]
    longest = max([r.hold_end - r.start for r in world.runs] + [0.0])
    for k, t in enumerate(world.snapshot_times):
        if k == len(world.snapshot_times) - 1:
            yield tuple([r.row_at(None) for r in runs] + list(world.extra_rows))
            continue
        lo = bisect.bisect_left(starts, t - longest - 10.0)
        hi = bisect.bisect_right(starts, t)
        yield tuple(r.row_at(t) for r in runs[lo:hi] if r.db_end is None or r.db_end >= t - 10.0)


def _snapshots(world: World) -> Iterator[Snapshot]:
    for frame, rows in zip(_frames(world), _snapshot_rows(world), strict=True):
        yield replace(frame, runs=rows)


def _audit(world: World) -> Iterator[AuditRow]:
    """The audit log in commit order (``seq`` from 1), generated in order rather than
    sorted whole: inserts, updates and the rest each sorted by time, then merged.  Ties
    keep the order in which the rows are listed (per run: insert, update; then reaps,
    then the extra rows), as a stable sort of the whole list would."""
    in_db = [r for r in world.runs if r.in_db]
    inserted = sorted(range(len(in_db)), key=lambda i: WALL0 + in_db[i].start + 0.01)
    ended = [i for i in range(len(in_db)) if in_db[i].db_end is not None]
    ended.sort(key=lambda i: WALL0 + _end(in_db[i]))
    rest = [
        AuditRow(0, "replicas", "delete", replica, {"id": replica}, None, WALL0 + at)
        for replica, at in world.reaps.items()
    ] + list(world.extra_audit)
    tail = sorted(range(len(rest)), key=lambda j: rest[j].at)
    n = len(in_db)
    merged = heapq.merge(
        ((WALL0 + in_db[i].start + 0.01, 2 * i) for i in inserted),
        ((WALL0 + _end(in_db[i]), 2 * i + 1) for i in ended),
        ((rest[j].at, 2 * n + j) for j in tail),
    )
    for seq, (_, pos) in enumerate(merged, start=1):
        if pos >= 2 * n:
            yield replace(rest[pos - 2 * n], seq=seq)
        elif pos % 2 == 0:
            yield _insert_row(in_db[pos // 2], seq)
        else:
            yield _update_row(in_db[pos // 2], seq)


def _end(run: SynthRun) -> float:
    assert run.db_end is not None  # only ended runs are listed
    return run.db_end


def _running_image() -> dict[str, object]:
    return {"status": "running", "stop_reason": None, "error": None, "completed_at": None}


def _insert_row(r: SynthRun, seq: int) -> AuditRow:
    return AuditRow(seq, "runs", "insert", r.run_id, None, _running_image(), WALL0 + r.start + 0.01)


def _update_row(r: SynthRun, seq: int) -> AuditRow:
    first, end = r.row_at(r.start), r.row_at(None)
    done: dict[str, object] = {
        "status": end.status,
        "stop_reason": end.stop_reason,
        "error": end.error,
        "completed_at": end.completed_at,
        "last_heartbeat_at": first.last_heartbeat_at,
    }
    old = {**_running_image(), "last_heartbeat_at": first.last_heartbeat_at}
    return AuditRow(seq, "runs", "update", r.run_id, old, done, WALL0 + _end(r))


def _client_records(history: History, clock: _Clock, run: SynthRun) -> None:
    clock.now = run.start
    inv = history.invoke(
        "start_run", "w0", run.agent_id, user_id=run.user_id, agent="chaos", via="lb"
    )
    if run.cancel is not None:
        c = run.cancel
        clock.now = c.start
        cinv = history.invoke("cancel", "canceller", run.agent_id, via=c.via, reason=c.reason)
        clock.now = c.end
        history.complete(
            cinv, "ok", cancelled=c.cancelled, reason=c.reason, classification=c.classification
        )
    if run.client_outcome is None or run.client_end is None:
        return
    clock.now = run.client_end
    data: dict[str, Any] = {
        "run_id": run.run_id,
        "replica_id": run.replica,
        "events": [{"type": e, "mono": run.start} for e in run.client_events],
    }
    if run.client_stop_reason is not None:
        data["stop_reason"] = run.client_stop_reason
    if run.client_outcome == "info":
        data["error"] = "stream closed"
        data["cut"] = run.client_cut
    history.complete(inv, run.client_outcome, **data)


def render(world: World) -> History:
    """The history a scenario like ``world`` would have recorded."""
    clock = _Clock()
    history = History(seed=0, clock=clock.mono, wall_clock=clock.wall)
    _record(world, history, clock, audit_note_rows=None)
    return history


#: Audit rows per note when a world is written straight to a file: a reader concatenates
#: the notes, and no single note's rows need to be held whole by the writer.
AUDIT_NOTE_ROWS = 100_000


def render_to_path(world: World, path: Path) -> int:
    """Write the history of ``world`` to ``path`` without holding it; the record count.

    The same records as :func:`render` (byte for byte while the audit log fits in one
    note of :data:`AUDIT_NOTE_ROWS` rows; beyond that the log is split over notes).
    """
    clock = _Clock()
    history = History(seed=0, clock=clock.mono, wall_clock=clock.wall, retain=False)
    history.stream_to_path(path)
    try:
        _record(world, history, clock, audit_note_rows=AUDIT_NOTE_ROWS)
    finally:
        history.close_stream()
    return len(history)


def _record(world: World, history: History, clock: _Clock, audit_note_rows: int | None) -> None:
    frames = _frames(world)
    params = world.params
    if world.auto_cap:
        peak = max([q.active_count for s in frames for q in s.quotas] + [1])
        params = replace(params, per_user_cap=max(params.per_user_cap, peak))
    record_params(history, params)
    for replica, at in world.kills.items():
        clock.now = at
        inject = history.fault("inject", "kill", replica)
        clock.now = at + 0.05
        history.fault("effect", "kill", replica, inject)
    for run in world.runs:
        _client_records(history, clock, run)
    for snap in _snapshots(world):
        clock.now = snap.mono
        record_snapshot(history, snap)
    if world.include_audit:
        clock.now = world.end_time
        rows = _audit(world)
        if audit_note_rows is None:
            record_audit(history, rows)
            return
        while chunk := list(itertools.islice(rows, audit_note_rows)):
            record_audit(history, chunk)
