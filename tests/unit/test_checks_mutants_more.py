"""Mutants of the checkers' verdict code that the boundary and verdict tests left alive:
the quota sweep's order of interval closes, and a graceful stop's drain at its bound."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chaos.checks import no_quota_leaks, stop_reason_fits_cause
from chaos.testing.bench import HistoryBench
from chaos.verdict import Status

PASS, FAIL = Status.PASS, Status.FAIL


def test_a_short_run_inside_a_long_one_stops_counting_when_it_ends() -> None:
    """Intervals close in time order, not in the order their runs started: a long run A
    (1..100) and a short run B (2..3) of one user; a sample at 50 with one slot taken is
    right (only A holds one).  Closing in start order would keep B open behind A's close
    at 99.5 and count two slots surely held."""
    s = HistoryBench()
    a = s.run("t1-a", start=1.0, end=100.0, user_id="t1-u")
    b = s.run("t1-b", start=2.0, end=3.0, user_id="t1-u")
    s.snapshot(50.0, [], quotas={"t1-u": 1})
    rows = [
        s.row("t1-a", a, user_id="t1-u", completed=100.0),
        s.row("t1-b", b, user_id="t1-u", completed=3.0),
    ]
    s.snapshot(200.0, rows, quotas={})
    v = no_quota_leaks.check(s.context())
    assert v.status is PASS, v.evidence
    # and the same sample with two slots taken is a leak: B was over long before
    s2 = HistoryBench()
    a = s2.run("t1-a", start=1.0, end=100.0, user_id="t1-u")
    b = s2.run("t1-b", start=2.0, end=3.0, user_id="t1-u")
    s2.snapshot(50.0, [], quotas={"t1-u": 2})
    s2.snapshot(200.0, rows, quotas={})
    assert no_quota_leaks.check(s2.context()).status is FAIL


@pytest.mark.parametrize(
    ("completed", "status"),
    [
        (2.0 + 5.0 + 1.0, PASS),  # exactly at the drain's end (+ clock slack): still drained
        (2.0 + 5.0 + 1.0 + 0.01, FAIL),  # one unit after it: the process was gone
    ],
)
def test_a_run_ending_exactly_at_the_end_of_a_graceful_drain_ran_to_its_end(
    completed: float, status: Status
) -> None:
    s = HistoryBench()
    rid = s.run("t1-a", start=0.0, end=completed)
    s.fault("stop", "r1", start=2.0)
    s.snapshot(500.0, [s.row("t1-a", rid, completed=completed)])
    params = replace(s.params, graceful_drain_s=5.0, clock_slack_s=1.0)
    v = stop_reason_fits_cause.check(s.context(params))
    assert v.status is status, v.evidence
