"""no_quota_leaks: per-user quota counts agree with the runs that could hold them.

A user's quota count (the target's per-user slot counter) is its running
plus queued runs, taken before queueing and given back when the run's HTTP
handler returns (or by the reaper for a dead owner).  The suite cannot see
the instant a slot is taken or given back, only the client's view of each
run, so each sample at time t is judged against two bounds:

- lower: runs that were surely holding a slot, i.e. admitted (the first
  stream frame arrived: the target sends headers only after admission) and not
  yet completed on the client over the whole window [t - slack, t + slack]
  around the sample (slack covers the snapshot's own duration and request
  transit).  A POST still in flight holds nothing: measured on the real
  target, a request that nginx routed to a killed replica waited ~60 s for it
  to come back before it was admitted;
- upper: runs that may have held one, i.e. open at any moment in
  [t - grace, t + slack], where a run stays open until the later of the
  client's completion and the database ending it (a killed owner's runs hold
  their slots until reaped), and grace is the give-back grace (5 s).

And never above the per-user cap.  At quiescence (the final snapshot) each
user's count must equal its runs still ``running`` there, which after
convergence is 0: the quota counts sum to 0.

Both bounds are point-in-interval counts on shifted intervals (lower: the
interval shrunk by slack at both ends; upper: grown by slack before and grace
after), so one sweep over sorted interval ends and sample times computes them
all in O((runs + samples) log runs).
"""

from __future__ import annotations

import heapq
from array import array
from collections import Counter
from collections.abc import Iterator
from typing import Any

from chaos.checks.context import CheckContext, ClientRun
from chaos.checks.evidence import capped, unique_windows
from chaos.verdict import Verdict

INVARIANT = "no_quota_leaks"

_OPEN, _SAMPLE, _CLOSE = 0, 1, 2
_INF = float("inf")


class _Intervals:
    """Every interval as columns: a soak has two per run, and as objects they cost more
    memory than the runs themselves."""

    def __init__(self) -> None:
        self.users: list[str] = []
        self.lo = array("d")
        self.hi = array("d")
        self.is_lower = bytearray()  # 1: a lower-bound interval, 0: an upper-bound one

    def add(self, user: str, lo: float, hi: float, lower: bool) -> None:
        self.users.append(user)
        self.lo.append(lo)
        self.hi.append(hi)
        self.is_lower.append(lower)

    def __len__(self) -> int:
        return len(self.users)


def _hold_end(ctx: CheckContext, run: ClientRun) -> float:
    """The latest moment this run might still hold a quota slot (mono, before grace)."""
    if run.end is None:
        return _INF
    row = ctx.row_for(run)
    if row is None:
        # Never written: rejected, or queued until the client went away.
        return run.end
    if not row.terminal:
        return _INF
    ended = ctx.terminal_transition_wall(row.run_id)
    return _INF if ended is None else max(run.end, ctx.to_mono(ended[0]))


def _intervals(ctx: CheckContext) -> _Intervals:
    slack, grace = ctx.params.sample_slack_s, ctx.params.quota_grace_s
    out = _Intervals()
    for run in ctx.client_runs:
        if run.user_id is None or not ctx.in_scope(run.user_id):
            continue
        # Surely held only from the moment the target is known to have admitted the run.
        if run.accepted and run.admitted is not None:
            end = _INF if run.end is None else run.end
            lo, hi = run.admitted + slack, end - slack
            if lo <= hi:
                out.add(run.user_id, lo, hi, lower=True)
        # A rejected run may still have held a slot briefly (backpressure gives it back).
        out.add(run.user_id, run.start - slack, _hold_end(ctx, run) + grace, lower=False)
    return out


def _events(ctx: CheckContext, ivs: _Intervals) -> Iterator[tuple[float, int, int]]:
    """(time, kind, index) for every interval's open and close and every sample, in the
    order of sorting all of them as tuples: three sorted streams merged, so the millions
    of event tuples of a soak are made one at a time instead of held and sorted at once."""
    snaps = ctx.snapshots
    # sorted() is stable: equal times keep index order, as the tuples' last field did
    opens = array("q", sorted(range(len(ivs)), key=ivs.lo.__getitem__))
    closes = array("q", sorted(range(len(ivs)), key=ivs.hi.__getitem__))
    samples = sorted(range(len(snaps)), key=lambda s: snaps[s].mono)
    return heapq.merge(
        ((ivs.lo[i], _OPEN, i) for i in opens),
        ((snaps[s].mono, _SAMPLE, s) for s in samples),
        ((ivs.hi[i], _CLOSE, i) for i in closes),
    )


def _sweep(ctx: CheckContext) -> list[dict[str, Any]]:
    """Judge every quota sample; returns the offending samples."""
    ivs = _intervals(ctx)
    lower: Counter[str] = Counter()
    upper: Counter[str] = Counter()
    held: set[str] = set()  # users whose lower count is above 0 (the counter keeps zeros)
    cap = ctx.params.per_user_cap
    bad: list[dict[str, Any]] = []
    for _, kind, i in _events(ctx, ivs):
        if kind == _SAMPLE:
            snap = ctx.snapshots[i]
            counts = {q.user_id: q.active_count for q in snap.quotas if ctx.in_scope(q.user_id)}
            users = set(counts) | held
            # Sorted: a set's order changes with the hash seed, and a re-check of a saved
            # history must list the offenders as the scenario did.
            for user in sorted(users):
                count = counts.get(user, 0)
                lo, hi = lower[user], upper[user]
                problems = []
                if count < lo:
                    problems.append(f"below the {lo} runs surely holding a slot")
                if count > hi:
                    problems.append(f"above the {hi} runs that could hold one (leak)")
                if cap > 0 and count > cap:
                    problems.append(f"above the per-user cap {cap}")
                if problems:
                    bad.append(
                        {
                            "user_id": user,
                            "sample_mono": round(snap.mono, 3),
                            "active_count": count,
                            "lower": lo,
                            "upper": hi,
                            "cap": cap,
                            "why": "; ".join(problems),
                        }
                    )
            continue
        user = ivs.users[i]
        step = 1 if kind == _OPEN else -1
        if not ivs.is_lower[i]:
            upper[user] += step
            continue
        lower[user] += step
        if lower[user] > 0:
            held.add(user)
        else:
            held.discard(user)
    return bad


def _quiescence(ctx: CheckContext) -> list[dict[str, Any]]:
    snap = ctx.final_snapshot
    if snap is None:
        return []
    running = Counter(
        r.user_id
        for r in ctx.final_runs.values()
        if r.status == "running" and r.user_id is not None
    )
    counts = {q.user_id: q.active_count for q in snap.quotas if ctx.in_scope(q.user_id)}
    bad = []
    for user in sorted(set(counts) | set(running)):
        if counts.get(user, 0) != running.get(user, 0):
            bad.append(
                {
                    "user_id": user,
                    "active_count": counts.get(user, 0),
                    "running_runs": running.get(user, 0),
                    "final_snapshot_mono": snap.mono,
                }
            )
    return bad


def _runs_near(ctx: CheckContext, user: str, mono: float) -> list[str]:
    """Agent ids of the user's runs open around a sample, for the reader of a failure."""
    grace = ctx.params.quota_grace_s
    near = [
        r.agent_id
        for r in ctx.client_runs
        if r.user_id == user
        and r.start <= mono + grace
        and (r.end is None or r.end >= mono - grace)
    ]
    return near[:10]


def check(ctx: CheckContext) -> Verdict:
    seen_nonzero = any(
        q.active_count > 0 and ctx.in_scope(q.user_id) for s in ctx.snapshots for q in s.quotas
    )
    if not seen_nonzero:
        return Verdict.vacuous(
            INVARIANT,
            "no snapshot ever showed a non-zero quota count (quota off, or never sampled "
            "under load)",
            snapshots=len(ctx.snapshots),
            per_user_cap=ctx.params.per_user_cap,
        )
    bad = _sweep(ctx)
    leftover = _quiescence(ctx)
    limit = ctx.params.evidence_limit
    if bad or leftover:
        # Only the few offenders shown get their runs listed: building that list scans.
        shown = capped(bad, limit)
        for item in shown:
            item["runs_near"] = _runs_near(ctx, item["user_id"], item["sample_mono"])
        windows = [
            w
            for item in shown
            for w in ctx.faults_touching(
                ctx.known_replicas, item["sample_mono"] - 60, item["sample_mono"]
            )
        ]
        if leftover:
            windows += ctx.fault_windows
        parts = []
        if bad:
            parts.append(f"{len(bad)} quota samples outside their bounds")
        if leftover:
            total = sum(x["active_count"] for x in leftover)
            parts.append(
                f"at quiescence the quota counts sum to {total} for {len(leftover)} users "
                "(expected their running runs, normally 0)"
            )
        return Verdict.failed(
            INVARIANT,
            "; ".join(parts),
            unique_windows(windows),
            out_of_bounds=shown,
            out_of_bounds_count=len(bad),
            quiescence=capped(leftover, limit),
            quota_grace_s=ctx.params.quota_grace_s,
            sample_slack_s=ctx.params.sample_slack_s,
        )
    samples = sum(len(s.quotas) for s in ctx.snapshots)
    peak = max(q.active_count for s in ctx.snapshots for q in s.quotas)
    return Verdict.passed(
        INVARIANT,
        f"{samples} quota samples within bounds (peak {peak}, cap {ctx.params.per_user_cap}); "
        "quota counts back to the running runs at quiescence",
        samples=samples,
        peak=peak,
        snapshots=len(ctx.snapshots),
    )
