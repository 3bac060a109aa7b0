"""The windows a cancel of a killed owner's run can land in, and what each must answer.

A cancel sent through a survivor for a run whose owner was SIGKILLed meets
one of three states of the cluster (CONTRACT.md, cancel; loomcycle v1.59.0
``internal/coord/cancel_coordinator.go:134-233`` and
``internal/coord/replicas_sweeper.go:136-225``):

* **before the owner is judged dead**: the owner's ``replicas`` row is younger
  than the cancel path's fixed 90 s (``staleReplicaThreshold``), so the
  survivor broadcasts, nobody acks, and after the ack timeout it answers
  ``owner_replica_unreachable`` (cancelled false).  The row stays running
  until the sweeper reaps it: ``failed / replica_died``;
* **judged dead, not yet reaped**: the row is older than 90 s but younger
  than the sweeper's stale threshold; the cancel path marks the run
  ``failed / owner_replica_dead`` itself and answers ``owner_dead_marked_failed``
  (cancelled true).  Exists only when the stale threshold is above 90 s;
* **after the reap**: the sweeper marked the run ``failed / replica_died`` and
  deleted the row; the cancel finds a terminal run and answers cancelled false
  with the caller's reason (``already_terminal``); the row does not change.

Everything here is pure: the test measures the owner's last heartbeat and
the moments, this module says where the windows are and judges each one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chaos.record.vocabulary import RunRow
from chaos.verdict import Verdict

#: The cancel path's fixed dead-owner cutoff (cancel_coordinator.go:82, not configurable).
CANCEL_JUDGES_DEAD_AFTER_S = 90.0

BEFORE_JUDGED_DEAD = "before_judged_dead"
JUDGED_DEAD_UNREAPED = "judged_dead_unreaped"
AFTER_REAP = "after_reap"
#: The windows in the order a killed owner passes through them.
WINDOWS = (BEFORE_JUDGED_DEAD, JUDGED_DEAD_UNREAPED, AFTER_REAP)
#: Each window's verdict is reported under this name plus the window's.
INVARIANT_PREFIX = "cancel_window_"


@dataclass(frozen=True)
class Expected:
    """What the contract says a cancel in one window answers and how its run's row ends."""

    window: str
    cancel_class: str
    row_end: tuple[str, str]  # (status, stop_reason)
    contract: str


EXPECTED: Mapping[str, Expected] = {
    BEFORE_JUDGED_DEAD: Expected(
        BEFORE_JUDGED_DEAD,
        "owner_unreachable",
        ("failed", "replica_died"),
        "owner_replica_unreachable after the ack timeout; the sweeper reaps the run later",
    ),
    JUDGED_DEAD_UNREAPED: Expected(
        JUDGED_DEAD_UNREAPED,
        "owner_dead",
        ("failed", "owner_replica_dead"),
        "owner_dead_marked_failed: the cancel path marks the run failed itself",
    ),
    AFTER_REAP: Expected(
        AFTER_REAP,
        "already_terminal",
        ("failed", "replica_died"),
        "cancelled:false with the caller's reason; the reaped row unchanged",
    ),
}


def invariant(window: str) -> str:
    return INVARIANT_PREFIX + window


def empty_by_configuration(stale_s: float, slack_s: float) -> dict[str, str]:
    """Windows that no moment can reach under these timers, with why (the rest exist).

    The judged-dead window runs from 90 s after the owner's last heartbeat to
    the earliest reap (the stale threshold after it); it needs room for the
    clock slack at both ends.
    """
    empty: dict[str, str] = {}
    if stale_s - CANCEL_JUDGES_DEAD_AFTER_S < 2 * slack_s:
        empty[JUDGED_DEAD_UNREAPED] = (
            f"vacuous by configuration: the sweeper may reap {stale_s:g} s after the last "
            f"heartbeat, before the cancel path's fixed {CANCEL_JUDGES_DEAD_AFTER_S:g} s "
            "judgement"
        )
    return empty


@dataclass(frozen=True)
class Bounds:
    """Wall-clock (epoch) moments a cancel must fall between to be in a window."""

    opens: float
    closes: float

    def holds(self, wall: float) -> bool:
        return self.opens <= wall <= self.closes


def window_bounds(last_heartbeat_wall: float, stale_s: float, slack_s: float) -> dict[str, Bounds]:
    """Where the two timed windows lie, from the owner's last heartbeat (the database's clock).

    The owner counts as alive to the cancel path while its heartbeat is younger
    than 90 s, and its row may be reaped once it is older than ``stale_s``; each
    bound keeps ``slack_s`` away from those edges.  The after-reap window is
    opened by seeing the reap, not by a clock.  An empty window (see
    :func:`empty_by_configuration`) is left out.
    """
    alive_until = last_heartbeat_wall + min(CANCEL_JUDGES_DEAD_AFTER_S, stale_s) - slack_s
    bounds = {BEFORE_JUDGED_DEAD: Bounds(float("-inf"), alive_until)}
    if JUDGED_DEAD_UNREAPED not in empty_by_configuration(stale_s, slack_s):
        bounds[JUDGED_DEAD_UNREAPED] = Bounds(
            last_heartbeat_wall + CANCEL_JUDGES_DEAD_AFTER_S + slack_s,
            last_heartbeat_wall + stale_s - slack_s,
        )
    return bounds


def aim(bounds: Bounds, fraction: float, call_s: float) -> float:
    """A moment ``fraction`` (0..1) into the window, leaving ``call_s`` before it closes."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction}")
    room = max(0.0, bounds.closes - call_s - bounds.opens)
    return bounds.opens + fraction * room


@dataclass(frozen=True)
class WindowCancel:
    """The cancel a scenario sent in one window (or why it sent none)."""

    window: str
    agent_id: str | None = None
    classification: str | None = None
    #: Wall-clock moments the call was sent and answered.
    sent_wall: float | None = None
    answered_wall: float | None = None
    #: The window's bounds when it had any (the after-reap window has none).
    bounds: Bounds | None = None
    #: Why nothing was sent: empty by configuration, or missed.
    skipped: str | None = None


def judge_window(cancel: WindowCancel, row: RunRow | None, empty_reason: str | None) -> Verdict:
    """The verdict of one window: its class and its run's final row, as the contract says.

    ``empty_reason`` is set when the timers leave this window empty: the verdict
    is then vacuous and allowed (reported, not failed).  A window that exists
    but got no cancel, or a cancel sent outside the window's bounds, fails: the
    scenario set out to produce evidence there.
    """
    name = invariant(cancel.window)
    expected = EXPECTED[cancel.window]
    if empty_reason is not None:
        return Verdict.vacuous(name, empty_reason, window=cancel.window).allowing_vacuous()
    evidence: dict[str, Any] = {
        "window": cancel.window,
        "agent_id": cancel.agent_id,
        "expected_class": expected.cancel_class,
        "expected_row_end": list(expected.row_end),
        "contract": expected.contract,
        "classification": cancel.classification,
        "sent_wall": cancel.sent_wall,
        "answered_wall": cancel.answered_wall,
        "bounds": None
        if cancel.bounds is None
        else {"opens": cancel.bounds.opens, "closes": cancel.bounds.closes},
        "row": None
        if row is None
        else {"status": row.status, "stop_reason": row.stop_reason, "error": row.error},
    }
    if cancel.skipped is not None or cancel.agent_id is None:
        return Verdict.failed(name, f"no cancel sent: {cancel.skipped or 'no run'}", **evidence)
    problems = []
    if cancel.bounds is not None and (
        cancel.sent_wall is None or not cancel.bounds.holds(cancel.sent_wall)
    ):
        problems.append("the cancel was sent outside the window")
    if cancel.classification != expected.cancel_class:
        problems.append(f"answered {cancel.classification}, expected {expected.cancel_class}")
    end = None if row is None else (row.status, row.stop_reason)
    if end != expected.row_end:
        problems.append(f"the run ended {end}, expected {expected.row_end}")
    if problems:
        return Verdict.failed(name, "; ".join(problems), **evidence)
    return Verdict.passed(
        name, f"{expected.cancel_class}; run ended {'/'.join(expected.row_end)}", **evidence
    )
