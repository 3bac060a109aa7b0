"""The rows of the outside-sabotage matrix (issue 11): one sabotage per invariant, on loomcycle.

Each row breaks its invariant from outside the target during the matrix's
normal workload (tests/chaos/test_sabotage_matrix.py): through its database
(superuser SQL, row triggers), its containers (``docker pause``) or its
network (Toxiproxy), never through the History.  The generic actions are in
:mod:`chaos.testing.outside_sabotage`; this file knows loomcycle's tables.

The hooks a row may fill, in the order the workload calls them:

* ``arm``: before the load starts;
* ``during_load``: concurrently with the load;
* ``after_load``: once every load run has ended, before the cancel;
* ``around_cancel``: around the one cancel of the victim (owner and asker known);
* ``cleanup``: after the verdicts, whatever happened: undo what is left, so the
  shared cluster resets (its reset waits until no run is ``running``).

``side_effects`` are the invariants the row's damage may also break, each
argued from the mechanism next to the row; every other invariant must judge
exactly as the control did.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field

from chaos.cluster.cluster import Cluster
from chaos.cluster.view import client_for
from chaos.faults import REPLICAS_SWEEPER_LOCK_KEY, AdvisoryLockHold, Fault, PgCredentials
from chaos.faults.replica import freeze_replica
from chaos.scenario.run import ScenarioRun
from chaos.sut.base import RunRequest
from chaos.testing.outside_sabotage import (
    RewriteTrigger,
    Strike,
    execute,
    fetch,
    link_cut,
    sql_literal,
    unrecorded,
)
from chaos.wait import eventually


@dataclass
class Scene:
    """What the hooks may touch: the cluster and the workload's ids (never the History)."""

    cluster: Cluster
    run: ScenarioRun
    load: Sequence[RunRequest]
    victim: RunRequest
    rng: random.Random


@dataclass
class Sabotage:
    """The control: no sabotage at all.  Rows override the hooks they need."""

    invariant: str = ""
    what: str = "none (control)"
    #: The workload the row sabotages: ``matrix`` (short runs, a cancel) or ``kill``.
    scenario: str = "matrix"
    side_effects: frozenset[str] = frozenset()
    strike: Strike = field(default_factory=lambda: Strike("none"))

    @property
    def key(self) -> str:
        return self.invariant or "control"

    async def arm(self, scene: Scene) -> None:
        pass

    async def during_load(self, scene: Scene) -> None:
        pass

    async def after_load(self, scene: Scene) -> None:
        pass

    def around_cancel(
        self, scene: Scene, owner: str, via: str
    ) -> AbstractAsyncContextManager[None]:
        return _nothing()

    async def after_kill(self, scene: Scene, kill_mono: float) -> None:
        """Runs beside the kill's effect proof (the reap), from the kill's moment on."""

    async def cleanup(self, scene: Scene) -> None:
        pass


@asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield


async def completed_run_id(scene: Scene) -> str:
    """One completed load run, drawn from the row's seed (the load has ended)."""
    rows = await fetch(
        scene.cluster.pg_dsn,
        "SELECT id FROM runs WHERE agent_id = ANY($1::text[]) AND status = 'completed' ORDER BY id",
        [r.agent_id for r in scene.load],
    )
    if not rows:
        raise AssertionError("no completed load run to sabotage: the workload did not run")
    return str(scene.rng.choice(rows)["id"])


class _TriggerRow(Sabotage):
    """A row whose damage is a rewrite of the target's own finishing write."""

    trigger: RewriteTrigger | None = None

    def make_trigger(self, scene: Scene) -> RewriteTrigger:
        raise NotImplementedError

    async def arm(self, scene: Scene) -> None:
        self.trigger = self.make_trigger(scene)
        await self.trigger.install()

    async def after_fired(self) -> None:
        """Read when the trigger fired (the database's clock), then remove it."""
        if self.trigger is None:
            return
        fired = await self.trigger.fired_walls()
        if fired:
            self.strike.hit(fired[0], firings=len(fired))
        await self.trigger.remove()

    async def cleanup(self, scene: Scene) -> None:
        await self.after_fired()


def _finishing(agent_id: str, new_status: str) -> str:
    """The WHEN clause of one run's own finishing write (``status='running'`` guard)."""
    return (
        f"OLD.status = 'running' AND NEW.{_status_test(new_status)} "
        f"AND NEW.agent_id = {sql_literal(agent_id)}"
    )


def _reason_rewrite(
    scene: Scene, name: str, agent_id: str, new_status: str, reason: str
) -> RewriteTrigger:
    """One run's finishing write to ``new_status`` keeps its status, with ``reason`` instead."""
    return RewriteTrigger(
        scene.cluster.pg_dsn,
        name,
        "runs",
        _finishing(agent_id, new_status),
        {"stop_reason": sql_literal(reason)},
    )


def _status_test(new_status: str) -> str:
    return "status <> 'running'" if new_status == "*" else f"status = {sql_literal(new_status)}"


@dataclass
class LostFinish(_TriggerRow):
    """no_zombies: the owner's FinishRun for one load run is dropped by a row trigger, as
    if the write were lost: the UPDATE reports no row, which loomcycle does not treat as
    an error (store/postgres FinishRun ignores the row count), so the owner forgets the
    run while its row stays ``running``.

    Side effects, by mechanism: ``one_truth`` (its client got ``done``, the row says
    running) and ``no_quota_leaks`` (the owner gave the slot back: at quiescence the
    user holds 0 slots for 1 running run).
    """

    invariant: str = "no_zombies"
    what: str = (
        "a row trigger drops one run's finishing write (status stays running, "
        "the owner has forgotten it)"
    )
    side_effects: frozenset[str] = frozenset({"one_truth", "no_quota_leaks"})
    strike: Strike = field(default_factory=lambda: Strike("lost finish"))

    def make_trigger(self, scene: Scene) -> RewriteTrigger:
        self.agent_id = scene.load[0].agent_id
        return RewriteTrigger(
            scene.cluster.pg_dsn, "lost_finish", "runs", _finishing(self.agent_id, "*"), None
        )

    async def cleanup(self, scene: Scene) -> None:
        await self.after_fired()
        # The zombie must end, or the shared cluster's reset waits for it forever.
        await execute(
            scene.cluster.pg_dsn,
            "UPDATE runs SET status = 'cancelled', stop_reason = 'loomchaos sabotage cleanup', "
            "completed_at = now() WHERE agent_id = $1 AND status = 'running'",
            self.agent_id,
        )


@dataclass
class QuotaPlusOne(Sabotage):
    """no_quota_leaks: ``active_count + 1`` on one user's quota row while its runs run.

    loomcycle only ever decrements a slot it took, so the extra one stays held after
    the user's last run: a leak, as a lost release would leave.  No side effect: the
    gated driver may see a ``per_user_quota_exhausted`` refusal for that user, which
    no other invariant judges as a fault.
    """

    invariant: str = "no_quota_leaks"
    what: str = "user_quotas.active_count + 1 for one user while its runs run"
    strike: Strike = field(default_factory=lambda: Strike("quota +1"))

    async def during_load(self, scene: Scene) -> None:
        self.user_id = scene.load[0].user_id or ""

        async def bumped() -> bool:
            hit = await execute(
                scene.cluster.pg_dsn,
                "UPDATE user_quotas SET active_count = active_count + 1 "
                "WHERE user_id = $1 AND active_count > 0",
                self.user_id,
            )
            if hit:
                self.strike.hit(user_id=self.user_id)
            return hit > 0

        await eventually(
            bumped, what=f"{self.user_id} holding a quota slot to add one to", timeout=30
        )

    async def cleanup(self, scene: Scene) -> None:
        if self.strike.wall is not None:
            await execute(
                scene.cluster.pg_dsn,
                "UPDATE user_quotas SET active_count = active_count - 1 "
                "WHERE user_id = $1 AND active_count > 0",
                self.user_id,
            )


@dataclass
class CancelReasonRewritten(_TriggerRow):
    """stop_reason_fits_cause: the acknowledged cancel's terminal write is rewritten from
    the caller's reason to ``client disconnected``.  The row is in the contract's table
    (cancelled, a reason, no error), written once (terminal_is_final has nothing to see),
    and its client got no ``done`` (one_truth has nothing to compare): only the cause,
    an ack for a cancel with another reason and no stream cut, contradicts it.
    """

    invariant: str = "stop_reason_fits_cause"
    what: str = (
        "a row trigger rewrites an acked cancel's stop_reason to 'client disconnected' "
        "(no client went away)"
    )
    strike: Strike = field(default_factory=lambda: Strike("cancel reason rewritten"))

    def make_trigger(self, scene: Scene) -> RewriteTrigger:
        return _reason_rewrite(
            scene, "cancel_reason", scene.victim.agent_id, "cancelled", "client disconnected"
        )


@dataclass
class TerminalBlink(Sabotage):
    """terminal_is_final: a completed run reopened (running, no completed_at, no reason)
    and restored at once, in two commits.  The final state is exactly the original one and
    a 1 s snapshot almost never sees the blink: only the audit log holds it.
    """

    invariant: str = "terminal_is_final"
    what: str = "a completed run set back to running and restored at once (two commits)"
    strike: Strike = field(default_factory=lambda: Strike("terminal blink"))

    async def after_load(self, scene: Scene) -> None:
        run_id = await completed_run_id(scene)
        dsn = scene.cluster.pg_dsn
        (before,) = await fetch(
            dsn, "SELECT status, stop_reason, completed_at FROM runs WHERE id = $1", run_id
        )
        reopened = await execute(
            dsn,
            "UPDATE runs SET status = 'running', completed_at = NULL, stop_reason = NULL "
            "WHERE id = $1 AND status = 'completed'",
            run_id,
        )
        if reopened:
            self.strike.hit(run_id=run_id)
        await execute(
            dsn,
            "UPDATE runs SET status = $2, stop_reason = $3, completed_at = $4 WHERE id = $1",
            run_id,
            before["status"],
            before["stop_reason"],
            before["completed_at"],
        )


@dataclass
class RunRowDeleted(Sabotage):
    """nothing_lost: a completed run's row deleted (its events go with it: ON DELETE
    CASCADE).  Every other checker judges rows that exist, so none can see it."""

    invariant: str = "nothing_lost"
    what: str = "a completed run's row deleted after it ended"
    strike: Strike = field(default_factory=lambda: Strike("run row deleted"))

    async def after_load(self, scene: Scene) -> None:
        run_id = await completed_run_id(scene)
        if await execute(scene.cluster.pg_dsn, "DELETE FROM runs WHERE id = $1", run_id):
            self.strike.hit(run_id=run_id)


@dataclass
class StopReasonSwapped(_TriggerRow):
    """one_truth: one load run's finishing write rewritten from ``end_turn`` to
    ``max_iterations``.  Still a legal completed row written once (stop_reason_fits_cause
    and terminal_is_final accept it); only the client, which saw ``done`` with
    ``end_turn``, tells another story.
    """

    invariant: str = "one_truth"
    what: str = (
        "a row trigger rewrites one run's completed stop_reason end_turn -> max_iterations "
        "(both legal)"
    )
    strike: Strike = field(default_factory=lambda: Strike("stop reason swapped"))

    def make_trigger(self, scene: Scene) -> RewriteTrigger:
        return _reason_rewrite(
            scene, "stop_reason_swap", scene.load[1].agent_id, "completed", "max_iterations"
        )


@dataclass
class DoneEventDeleted(Sabotage):
    """no_silent_regressions: the ``done`` event of a completed run deleted from events.
    The run row is untouched, and its client did get ``done``: nothing else can tell."""

    invariant: str = "no_silent_regressions"
    what: str = "a completed run's done event deleted from the events table"
    strike: Strike = field(default_factory=lambda: Strike("done event deleted"))

    async def after_load(self, scene: Scene) -> None:
        run_id = await completed_run_id(scene)
        deleted = await execute(
            scene.cluster.pg_dsn,
            "DELETE FROM events WHERE run_id = $1 AND type = 'done'",
            run_id,
        )
        if deleted:
            self.strike.hit(run_id=run_id, events_deleted=deleted)


class _AtCancel(Sabotage):
    """A row whose damage is a nemesis in force, unrecorded, around the victim's cancel."""

    async def fault_at_cancel(self, scene: Scene, owner: str, via: str) -> Fault:
        raise NotImplementedError

    @asynccontextmanager
    async def _held(self, scene: Scene, owner: str, via: str) -> AsyncIterator[None]:
        async with unrecorded(await self.fault_at_cancel(scene, owner, via), self.strike):
            yield

    def around_cancel(
        self, scene: Scene, owner: str, via: str
    ) -> AbstractAsyncContextManager[None]:
        return self._held(scene, owner, via)


@dataclass
class OwnerPausedAtCancel(_AtCancel):
    """bounded_recovery: the cancelled run's owner frozen (``docker pause``, unrecorded)
    across the cancel, so no ack comes within the ack timeout: ``owner_replica_unreachable``
    from an owner the history says was healthy.  Thawed, the owner reads the cancel it
    missed and the run ends cancelled with the caller's reason, which fits the cause.

    Side effect ``one_truth``, seen here and read in loomcycle v1.59.0: the run's ~2 s
    provider call runs out while the owner is frozen, so on thaw the owner ends the
    loop (``loop.Run`` streams ``done``, end_turn, to the client: internal/api/http/
    server.go:4281) and reads the missed cancel at once; the terminal status is decided
    after that, at the write, from the run context's cause (``finishRunWithCancel``,
    server.go:4288 and 7244-7253), so the row may say ``cancelled`` for a run whose
    client got ``done``.  Whether it does depends on which of the two the thawed
    process does first (it did in three of four runs here).
    """

    invariant: str = "bounded_recovery"
    what: str = "docker pause of the cancelled run's owner across the cancel (not recorded)"
    side_effects: frozenset[str] = frozenset({"one_truth"})
    strike: Strike = field(default_factory=lambda: Strike("owner paused"))

    async def fault_at_cancel(self, scene: Scene, owner: str, via: str) -> Fault:
        return await freeze_replica(scene.cluster, owner)


@dataclass
class LbLinksCut(Sabotage):
    """load_spread: nginx's links to two of the three replicas cut (Toxiproxy, unrecorded)
    for the whole load: nginx skips the refused upstreams and one replica owns every run.
    No run is lost or cut (no stream was open when the links went)."""

    invariant: str = "load_spread"
    what: str = "Toxiproxy: nginx's links to 2 of 3 replicas disabled during the load"
    strike: Strike = field(default_factory=lambda: Strike("lb links cut"))
    _held: list[AbstractAsyncContextManager[None]] = field(default_factory=list)

    async def arm(self, scene: Scene) -> None:
        for rid in scene.cluster.replica_ids[1:]:
            held = unrecorded(link_cut(scene.cluster, "lb", rid), self.strike)
            await held.__aenter__()
            self._held.append(held)

    async def after_load(self, scene: Scene) -> None:
        await self._heal(scene)

    async def _heal(self, scene: Scene) -> None:
        if not self._held:
            return
        while self._held:
            await self._held.pop().__aexit__(None, None, None)
        await nginx_reaches_all(scene.cluster)

    async def cleanup(self, scene: Scene) -> None:
        await self._heal(scene)


async def nginx_reaches_all(cluster: Cluster, timeout: float = 30.0) -> None:
    """Wait until requests through nginx reach every replica again.

    nginx takes an upstream that refused a connection out of rotation for its
    ``fail_timeout`` (10 s by default): healed links alone would leave the next
    test's load on one replica.  Each replica names itself in ``/healthz``.
    """
    seen: set[str] = set()
    client = client_for(cluster, cluster.lb_url)

    async def all_seen() -> bool:
        with contextlib.suppress(Exception):
            health = await client.health()
            if health.replica_id:
                seen.add(health.replica_id)
        return set(cluster.replica_ids) <= seen

    try:
        await eventually(
            all_seen,
            what=f"nginx to route to every replica again (seen {seen})",
            timeout=timeout,
            interval=0.2,
        )
    finally:
        await client.aclose()


@dataclass
class AskerPgCut(_AtCancel):
    """cancel_classification: the asked replica's Postgres link cut (Toxiproxy, unrecorded)
    during the cancel: its handler's run lookup fails and it answers 500 with a bare
    error text, an answer the contract does not describe (classified ``unknown``).  The
    asker owns no run then (the load has ended), and the victim, never cancelled, runs to
    its end: no other invariant has anything to see.
    """

    invariant: str = "cancel_classification"
    what: str = "Toxiproxy: the asked replica's Postgres link disabled during the cancel"
    strike: Strike = field(default_factory=lambda: Strike("asker pg cut"))

    async def fault_at_cancel(self, scene: Scene, owner: str, via: str) -> Fault:
        return link_cut(scene.cluster, "pg", via)


@dataclass
class SweeperLockHeld(Sabotage):
    """bounded_recovery, the reap half (the kill scenario): the dead-replica sweeper's
    advisory lock held from a raw superuser connection (unrecorded) from before a replica
    is killed until ``late_by_s`` past the reap bound, so no survivor can win a sweep round
    and the killed replica's runs and row are reaped a few seconds late.  Everything else
    happens as without it: the runs end ``failed``/``replica_died`` after a recorded kill.
    """

    invariant: str = "bounded_recovery"
    what: str = (
        "the replicas sweeper's advisory lock held from a raw connection until 5 s past "
        "the reap bound after a kill (not recorded)"
    )
    scenario: str = "kill"
    late_by_s: float = 5.0
    strike: Strike = field(default_factory=lambda: Strike("sweeper lock held"))
    _held: AbstractAsyncContextManager[None] | None = None

    async def arm(self, scene: Scene) -> None:
        creds = scene.cluster.pg_credentials
        lock = AdvisoryLockHold(
            ("127.0.0.1", scene.cluster.pg_port),
            PgCredentials(creds.user, creds.password, creds.database),
            REPLICAS_SWEEPER_LOCK_KEY,
        )
        self._held = unrecorded(lock, Strike("lock taken"))
        await self._held.__aenter__()

    async def after_kill(self, scene: Scene, kill_mono: float) -> None:
        """Let go ``late_by_s`` past the bound: a chosen instant, not a synchronisation."""
        params = scene.run.params
        bound_s = params.reap_bound_s + params.reap_margin_s
        await asyncio.sleep(max(0.0, kill_mono + bound_s + self.late_by_s - time.monotonic()))
        # The reap was due at the bound: from then on it is late (the sabotage's effect).
        self.strike.hit(time.time() - self.late_by_s, late_by_s=self.late_by_s)
        await self.cleanup_lock()

    async def cleanup_lock(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            await held.__aexit__(None, None, None)

    async def cleanup(self, scene: Scene) -> None:
        await self.cleanup_lock()


def all_rows() -> list[Sabotage]:
    """A fresh instance of every row (rows keep state between their hooks)."""
    return [
        LostFinish(),
        QuotaPlusOne(),
        CancelReasonRewritten(),
        TerminalBlink(),
        RunRowDeleted(),
        StopReasonSwapped(),
        DoneEventDeleted(),
        OwnerPausedAtCancel(),
        LbLinksCut(),
        AskerPgCut(),
        SweeperLockHeld(),
    ]
