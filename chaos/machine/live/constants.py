"""The live machine's fixed choices: its replicas, its load bounds and every wait's deadline.

Printed programs name these values (replica ids, hold lengths), so changing
one changes what a saved regression replays.
"""

from __future__ import annotations

import asyncio

from chaos.cluster.topology import replica_ids

#: The machine's cluster has exactly these replicas; rules name them in printed programs.
REPLICAS = replica_ids(3)
VIAS = ("lb", *REPLICAS)
#: Every cancel carries this reason (LC-004's signature looks for it in the row).
CANCEL_REASON = "loomchaos machine cancel"
#: Runs per example at most (cheap rules must not pile up load).
MAX_RUNS = 24
USERS = 3
#: How long a start rule waits for its runs' rows (a gated start may wait for a slot).
START_SETTLE_S = 10.0
#: A freeze must end well inside the stale threshold minus the 30 s heartbeat ticker.
FREEZE_HOLDS_S = (1.0, 3.0, 8.0)
FREEZE_DURING = ("nothing", "cancel_its_run", "start_via_lb")
#: How many SIGKILLs an example may do, drawn by ``initial_load``: each costs a reap (30-65 s
#: of the target's clock under the crash timers), the bulk of an example's time, so two
#: examples in three kill nothing (issue 12: weight the time-passing rules so that an example
#: stays short).  A program printed without it (older regressions) may kill without limit.
KILL_BUDGETS = (0, 0, 1)
#: The same for circuits (``start_circuit``): one costs ~25-40 s of its runs, which the
#: teardown waits for (up to RUNS_DRAIN_S) before it cuts them.
CIRCUIT_BUDGETS = (0, 0, 1)
#: Moments after a cancel is sent at which its run's owner is killed.
KILL_DELAYS_S = (0.0, 0.05, 0.2, 0.5)
#: A replica's Postgres link is cut this long.  Well under the stale threshold minus one
#: heartbeat, and timed between two heartbeat ticks of the replica (rules_links.py), so
#: its row never ages past the threshold and nothing is reaped.
PG_CUT_HOLDS_S = (1.0, 3.0)
#: Before a cut, the victim must own no running run and no start may be in flight: a run
#: whose end falls inside the cut keeps its row running and its slot (FinishRun and the
#: quota release are written once, never retried: server.go:7490-7492,
#: semaphore.go:291-295).  Runs last ~3 s, so this is a few runs' length.
PG_CUT_IDLE_S = 15.0
#: After a cut, the victim's LISTEN sessions reconnect with a backoff of 0.5 s doubling
#: (postgres_backplane.go:218-243): at most ~2 x the cut plus one attempt.
LISTEN_BACK_S = 45.0
#: The fault registry's target of the replicas sweeper's advisory lock (AdvisoryLockHold).
SWEEPER_TARGET = "replicas_sweeper"
#: Started runs still streaming at the end get this long before they are cut.
RUNS_DRAIN_S = 25.0
#: Convergence settle: no fault -> at most this long for acks, give-backs, last writes.
SETTLE_S = 15.0
#: Cancel answers: one call bounded by the ack timeout and a re-read.
CANCEL_WAIT_S = 40.0
#: Driver: a broken stream's status poll gives up after this.
POLL_TIMEOUT_S = 10.0


async def let_time_pass(seconds: float) -> None:
    """A time-passing rule's purpose is wall time on the target's own clock (it cannot be
    faked), so this sleep is the rule, not a synchronisation."""
    await asyncio.sleep(seconds)
