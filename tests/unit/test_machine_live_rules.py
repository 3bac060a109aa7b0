"""Pure pieces of the live machine's rules (no Docker): when a Postgres link cut fits
between two heartbeat ticks of its replica, and which rules the machine has."""

from __future__ import annotations

import pytest

from chaos.machine.live import LiveClusterMachine
from chaos.machine.live.rules_links import TICK_CLEARANCE_S, cut_fits_between_ticks
from chaos.machine.run import _marked
from chaos.record.vocabulary import ReplicaRow, Snapshot

HEARTBEAT = 30.0


def beat(age: float | None, replica: str = "r1") -> Snapshot:
    last = None if age is None else 1000.0 - age
    return Snapshot(mono=0.0, wall=1000.0, replicas=(ReplicaRow(replica, 0.0, last),))


@pytest.mark.parametrize(
    ("age", "hold", "fits"),
    [
        (TICK_CLEARANCE_S, 3.0, True),  # just after a tick
        (HEARTBEAT - 3.0 - 2 * TICK_CLEARANCE_S, 3.0, True),  # the last moment that fits
        (HEARTBEAT - 3.0 - 2 * TICK_CLEARANCE_S + 0.1, 3.0, False),  # would reach the tick
        (1.0, 1.0, False),  # the tick may still be writing
        (40.0, 1.0, False),  # a tick was missed: wait for the next one
    ],
)
def test_a_cut_fits_only_between_two_ticks(age: float, hold: float, fits: bool) -> None:
    assert cut_fits_between_ticks(beat(age), "r1", hold, HEARTBEAT) is fits


def test_no_row_or_no_heartbeat_never_fits() -> None:
    assert not cut_fits_between_ticks(beat(None), "r1", 1.0, HEARTBEAT)
    assert not cut_fits_between_ticks(beat(10.0, "r2"), "r1", 1.0, HEARTBEAT)


def test_the_machine_has_every_rule_group() -> None:
    rules = set(_marked(LiveClusterMachine, "hypothesis_stateful_rule"))
    assert {
        "start_runs",
        "start_over_the_cap",
        "cancel",
        "cancel_twice_at_once",
        "kill_replica",
        "kill_owner_during_cancel",
        "freeze_briefly",
        "graceful_stop",
        "restart",
        "cut_postgres_link",
        "hold_sweeper_lock",
        "release_sweeper_lock",
        "pass_one_sweep",
        "pass_the_stale_threshold",
    } <= rules
