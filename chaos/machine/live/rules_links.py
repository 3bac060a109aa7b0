"""Cut a replica's link to Postgres briefly (Toxiproxy ``ResetCut`` on ``pg_<id>``), heal it.

What loomcycle v1.59.0 does while its database link is down, from its source:

* the replica heartbeat is a fixed 30 s ticker; a failed upsert waits for the
  next tick (internal/coord/replica_store.go:169-194), so a cut that swallows a tick lets the
  row age to ~60 s: the crash timers' stale threshold.  The cut is therefore
  timed between two ticks of the victim (its row's ``last_heartbeat_at``) and
  its row never goes stale: nothing is reaped;
* a run's end is written once: ``finishRun`` only logs a failed ``FinishRun``
  (internal/api/http/server.go:7490-7492) and the quota release is not retried
  (internal/concurrency/semaphore.go:291-295), so a run ending inside the cut
  would keep its row ``running`` and its slot.  The cut waits until the victim
  owns no running run of the example and no start is in flight, and nothing
  starts during it;
* LISTEN connections are dropped and re-dialled with a backoff of 0.5 s
  doubling (internal/coord/postgres_backplane.go:218-243); cancels routed
  through the backplane before they are back would go unacknowledged, so the
  rule waits until as many LISTEN sessions exist as before the cut.

So everything ends as without the cut: the model records it and judges
nothing new (see :mod:`.model`).  Heal and its proof come from the fault; the
base machine heals a cut still in force on teardown.
"""

from __future__ import annotations

import time
from typing import Any, cast

import asyncpg
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from chaos.machine.live.constants import (
    LISTEN_BACK_S,
    PG_CUT_HOLDS_S,
    PG_CUT_IDLE_S,
    REPLICAS,
    let_time_pass,
)
from chaos.machine.live.example import LiveMachineBase
from chaos.record.vocabulary import Snapshot
from chaos.testing.outside_sabotage import link_cut

#: Seconds kept clear of a heartbeat tick on each side of the cut (DB vs suite clock,
#: the tick's own upsert, the cut's inject and heal proofs).
TICK_CLEARANCE_S = 3.0
LISTEN_SESSIONS_SQL = (
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE backend_type = 'client backend' AND query LIKE 'LISTEN %'"
)


def cut_fits_between_ticks(
    snap: Snapshot, replica_id: str, hold_s: float, heartbeat_s: float
) -> bool:
    """Whether a cut of ``hold_s`` starting at ``snap`` ends before the replica's next
    heartbeat tick (its row refreshed at least ``TICK_CLEARANCE_S`` ago)."""
    row = next((r for r in snap.replicas if r.replica_id == replica_id), None)
    if row is None or row.last_heartbeat_at is None:
        return False
    age = snap.wall - row.last_heartbeat_at
    return TICK_CLEARANCE_S <= age <= heartbeat_s - hold_s - 2 * TICK_CLEARANCE_S


class LinkFaultRules(LiveMachineBase):
    async def listen_sessions(self) -> int:
        conn = await asyncpg.connect(self.cluster.pg_dsn, timeout=10.0)
        try:
            return int(await conn.fetchval(LISTEN_SESSIONS_SQL))
        finally:
            await conn.close()

    def wait_quiet_before_cut(self, replica: str, hold: float) -> None:
        """Until ``replica`` owns no running run of the example, no start is in flight,
        and a cut of ``hold`` fits between two of its heartbeat ticks."""
        heartbeat_s = self.frame.params.replica_heartbeat_s

        async def quiet() -> bool:
            snap = await self.frame.peek()
            return (
                not self.owned_running(replica, snap)
                and not self.starts_in_flight(snap)
                and cut_fits_between_ticks(snap, replica, hold, heartbeat_s)
            )

        self.wait_until(
            quiet,
            what=f"{replica} idle, no start in flight, a {hold}s gap before its heartbeat",
            timeout=PG_CUT_IDLE_S + heartbeat_s,
            phase="pg_cut_wait_quiet",
            interval=0.25,
        )

    @precondition(lambda self: self.enabled("cut_postgres_link") and not self.model.down())
    @rule(replica=st.sampled_from(REPLICAS), hold=st.sampled_from(PG_CUT_HOLDS_S))
    def cut_postgres_link(self, replica: str, hold: float) -> None:
        """The replica's Postgres link refused for ``hold`` seconds, then back."""
        self.step("cut_postgres_link", replica=replica, hold=hold)
        fault = link_cut(cast(Any, self.cluster), "pg", replica)
        if not self.may_inject(fault.target):
            self.history.note("machine_cut_skipped", why="link busy", target=fault.target)
            return
        circuit_runs = set(self.owned_running(replica)) & self.circuits
        if circuit_runs:  # ~40 s long: the victim would not be idle within the wait
            self.history.note(
                "machine_cut_skipped", why="owns circuit runs", runs=sorted(circuit_runs)
            )
            return
        self.wait_quiet_before_cut(replica, hold)
        before = self.run(self.listen_sessions(), what="LISTEN sessions", timeout=20.0)
        with self.timed("rule:cut_postgres_link"):
            self.setup.stats.fault(fault.name)
            self.inject(fault)
            began = time.monotonic()
            during = self.run(self.listen_sessions(), what="LISTEN sessions", timeout=20.0)
            self.history.note("machine_listen_sessions", before=before, during_cut=during)
            self.run(let_time_pass(hold), what="the cut's hold", timeout=hold + 5.0)
            self.heal(fault.target)
            ended = time.monotonic()
        self.model.link_cut(replica, began, ended)

        async def listening_again() -> bool:
            return await self.listen_sessions() >= before

        self.wait_until(
            listening_again,
            what=f"{before} LISTEN sessions again after {replica}'s cut",
            timeout=LISTEN_BACK_S,
            phase="pg_cut_listen_back",
        )
