"""no_quota_leaks' bounds, against a count done the slow way.

The checker files each run's intervals under sample times instead of sweeping every
interval end; whatever the runs, each sample's bounds must be the plain count of the
intervals open at that sample (ties included: an interval opening at the sample's time
counts, one closing at it counts too).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaos.checks import no_quota_leaks
from chaos.checks.params import CheckParams
from chaos.testing.bench import DEFAULT_REPLICAS, HistoryBench
from chaos.verdict import Status

USERS = ("t1-u0", "t1-u1", "t1-u2")
#: Above any bound: every (sample, user) is reported, with its two bounds.
HUGE = 10**6


@dataclass(frozen=True)
class _Run:
    user: str
    start: float
    end: float | None
    outcome: str
    admitted_after: float


# Times on a half-second grid, like the slack: interval ends often equal sample times.
_times = st.integers(min_value=0, max_value=40).map(lambda k: k / 2)
_runs = st.builds(
    _Run,
    user=st.sampled_from(USERS),
    start=_times,
    end=st.none() | _times,
    outcome=st.sampled_from(["ok", "info", "fail"]),
    admitted_after=st.sampled_from([0.0, 0.5, 2.0]),
)


def _open(lo: float, hi: float, t: float) -> int:
    """One interval's share of the count at ``t``: +1 once opened, -1 once closed."""
    return int(lo <= t) - int(hi < t)


def _expected(runs: list[_Run], samples: list[float], p: CheckParams) -> set[tuple[object, ...]]:
    slack, grace = p.sample_slack_s, p.quota_grace_s
    out: set[tuple[object, ...]] = set()
    for t in samples:
        for user in USERS:
            lower = upper = 0
            for r in runs:
                if r.user != user:
                    continue
                end = math.inf if r.end is None else r.end
                if r.end is not None and r.outcome != "fail":  # accepted, with frames
                    lo, hi = r.start + r.admitted_after + slack, end - slack
                    if lo <= hi:
                        lower += _open(lo, hi, t)
                upper += _open(r.start - slack, end + grace, t)
            out.add((user, round(t, 3), lower, upper))
    return out


@settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    runs=st.lists(_runs, min_size=1, max_size=12),
    samples=st.lists(_times, min_size=1, max_size=6),
)
def test_each_samples_bounds_are_the_intervals_open_at_it(
    runs: list[_Run], samples: list[float]
) -> None:
    params = CheckParams(
        test_prefix="t1", replica_ids=DEFAULT_REPLICAS, per_user_cap=0, evidence_limit=HUGE
    )
    s = HistoryBench(params)
    for i, r in enumerate(runs):
        s.run(
            f"t1-a{i}",
            start=r.start,
            end=r.end,
            outcome=r.outcome,  # type: ignore[arg-type]
            user_id=r.user,
            admitted=r.start + r.admitted_after,
        )
    for t in samples:
        s.snapshot(t, quotas=dict.fromkeys(USERS, HUGE))
    v = no_quota_leaks.check(s.context())
    assert v.status is Status.FAIL
    got = {
        (b["user_id"], b["sample_mono"], b["lower"], b["upper"])
        for b in v.evidence["out_of_bounds"]
    }
    assert got == _expected(runs, samples, params)
    assert v.evidence["out_of_bounds_count"] == len(samples) * len(USERS)
