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
after).  Only the counts at the sample times matter, so each interval is filed
under the first sample it is open at and the first it is closed at (two binary
searches among the few sample times); one walk over the samples then adds those
up per user, in O(runs log samples + samples).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from typing import Any

from chaos.checks.context import CheckContext, ClientRun
from chaos.checks.evidence import capped, unique_windows
from chaos.record.vocabulary import RunRow
from chaos.verdict import Verdict

INVARIANT = "no_quota_leaks"

_INF = float("inf")


class _Buckets:
    """Per sample, the users of the intervals that open at it and of those that close at
    it (a user once per interval).  An interval [lo, hi] counts at sample time t when
    lo <= t and not hi < t: it opens at the first sample at or after lo and closes at
    the first one after hi.  A soak files two intervals per run: as user lists (shared
    strings) they cost a pointer each."""

    def __init__(self, times: list[float]) -> None:
        self.times, self.n = times, len(times)
        self.opens: list[list[str]] = [[] for _ in times]
        self.closes: list[list[str]] = [[] for _ in times]

    def add(self, user: str, lo: float, hi: float) -> None:
        opens_at = bisect_left(self.times, lo)
        closes_at = bisect_right(self.times, hi)
        if opens_at == closes_at:
            return  # open at no sample
        if opens_at < self.n:
            self.opens[opens_at].append(user)
        if closes_at < self.n:
            self.closes[closes_at].append(user)


class _Count:
    """Each user's count of open intervals, as the samples are walked in time order."""

    def __init__(self) -> None:
        self.opened: Counter[str] = Counter()
        self.closed: Counter[str] = Counter()

    def step(self, opens: list[str], closes: list[str]) -> None:
        self.opened.update(opens)  # Counter.update counts a list in C
        self.closed.update(closes)

    def __getitem__(self, user: str) -> int:
        return self.opened[user] - self.closed[user]


def _hold_end(ctx: CheckContext, run: ClientRun, row: RunRow | None) -> float:
    """The latest moment this run might still hold a quota slot (mono, before grace);
    ``row`` is its final database row (:meth:`CheckContext.row_for`)."""
    if run.end is None:
        return _INF
    if row is None:
        # Never written: rejected, or queued until the client went away.
        return run.end
    if not row.terminal:
        return _INF
    ended = ctx.terminal_transition_wall(row.run_id)
    return _INF if ended is None else max(run.end, ctx.to_mono(ended[0]))


def _intervals(ctx: CheckContext, times: list[float]) -> tuple[_Buckets, _Buckets]:
    """The lower-bound and the upper-bound intervals of every run in scope, filed."""
    slack, grace = ctx.params.sample_slack_s, ctx.params.quota_grace_s
    lower, upper = _Buckets(times), _Buckets(times)
    add_lower, add_upper, in_scope = lower.add, upper.add, ctx.in_scope  # a soak: 10^6 runs
    for run, row in zip(ctx.client_runs, ctx.client_rows, strict=True):
        user = run.user_id
        if user is None or not in_scope(user):
            continue
        # Surely held only from the moment the target is known to have admitted the run.
        if run.admitted is not None and run.accepted:
            end = _INF if run.end is None else run.end
            lo, hi = run.admitted + slack, end - slack
            if lo <= hi:
                add_lower(user, lo, hi)
        # A rejected run may still have held a slot briefly (backpressure gives it back).
        add_upper(user, run.start - slack, _hold_end(ctx, run, row) + grace)
    return lower, upper


def _sweep(ctx: CheckContext) -> list[dict[str, Any]]:
    """Judge every quota sample; returns the offending samples."""
    snaps = ctx.snapshots
    order = sorted(range(len(snaps)), key=lambda s: snaps[s].mono)
    lower_ivs, upper_ivs = _intervals(ctx, [snaps[s].mono for s in order])
    lower, upper = _Count(), _Count()
    held: set[str] = set()  # users whose lower count is above 0
    cap = ctx.params.per_user_cap
    bad: list[dict[str, Any]] = []
    for k, s in enumerate(order):
        opens, closes = lower_ivs.opens[k], lower_ivs.closes[k]
        lower.step(opens, closes)
        for user in set(opens).union(closes):
            if lower[user] > 0:
                held.add(user)
            else:
                held.discard(user)
        upper.step(upper_ivs.opens[k], upper_ivs.closes[k])
        snap = snaps[s]
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
