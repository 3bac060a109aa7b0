"""The invariant checkers: pure functions of (history, snapshots, audit log, params) -> Verdict.

Each module names one invariant, cites its evidence (run ids, rows, times,
fault windows) and returns ``vacuous`` when the history lacks the minimum
evidence to judge it.  None of them imports the target adapter, the cluster
or Docker, so a saved history can be re-checked anywhere
(:func:`chaos.checks.offline.check_path`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from chaos.checks import (
    bounded_recovery,
    cancel_classification,
    load_spread,
    no_quota_leaks,
    no_silent_regressions,
    no_zombies,
    nothing_lost,
    one_truth,
    stop_reason_fits_cause,
    terminal_is_final,
)
from chaos.checks.context import CheckContext
from chaos.checks.facts import gc_paused
from chaos.checks.params import CheckParams
from chaos.verdict import Verdict

Check = Callable[[CheckContext], Verdict]

#: Every checker, in the order a report lists them.
ALL_CHECKS: dict[str, Check] = {
    no_zombies.INVARIANT: no_zombies.check,
    no_quota_leaks.INVARIANT: no_quota_leaks.check,
    stop_reason_fits_cause.INVARIANT: stop_reason_fits_cause.check,
    terminal_is_final.INVARIANT: terminal_is_final.check,
    nothing_lost.INVARIANT: nothing_lost.check,
    one_truth.INVARIANT: one_truth.check,
    no_silent_regressions.INVARIANT: no_silent_regressions.check,
    bounded_recovery.INVARIANT: bounded_recovery.check,
    load_spread.INVARIANT: load_spread.check,
    cancel_classification.INVARIANT: cancel_classification.check,
}


def run_checks(ctx: CheckContext, only: Sequence[str] | None = None) -> list[Verdict]:
    """Run every checker (or the named ones) on one context; one verdict each."""
    names = list(ALL_CHECKS) if only is None else list(only)
    unknown = [n for n in names if n not in ALL_CHECKS]
    if unknown:
        raise KeyError(f"unknown invariants {unknown}; known: {sorted(ALL_CHECKS)}")
    with gc_paused():
        return [ALL_CHECKS[name](ctx) for name in names]


__all__ = ["ALL_CHECKS", "Check", "CheckContext", "CheckParams", "run_checks"]
