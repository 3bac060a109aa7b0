"""``LiveMachineBase``: one example of the live machine, without its rules.

What every rule group (``rules_*.py``) leans on: the example's lifecycle
(reset, scenario frame, model, drivers), the helpers rules share (start runs,
cancel through a replica, kill, snapshot), the per-step invariant, and the
teardown that heals, converges and hands the history to every checker
(:mod:`.judging`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

from hypothesis.stateful import invariant

from chaos.cluster.view import client_for
from chaos.faults.replica import reap_wait_s, survivors_list
from chaos.machine.base import ChaosMachine, MachineRuntime
from chaos.machine.live.constants import (
    CANCEL_REASON,
    POLL_TIMEOUT_S,
    REPLICAS,
    RUNS_DRAIN_S,
    SETTLE_S,
    START_SETTLE_S,
)
from chaos.machine.live.model import LiveModel, replica_for
from chaos.machine.live.setup import LiveSetup
from chaos.record.vocabulary import FAULT_KILL, Snapshot
from chaos.scenario.cancels import recorded_cancel
from chaos.scenario.killed_owner import kill_seen_dead
from chaos.scenario.run import ScenarioRun
from chaos.scenario.steps import DEFAULT_AGENT, running_row
from chaos.sut.base import CancelResult, RunClient, RunRequest
from chaos.sut.loomcycle.ports import gated_policy, scenario_run
from chaos.sut.loomcycle.settings import settings_of
from chaos.wait import WaitTimeout, eventually
from chaos.workload.driver import Driver
from chaos.workload.gates import CapPolicy, RetryPolicy, UserGate

T = TypeVar("T")

#: The drivers' key suffix of a route's ungated driver (``start_over_the_cap``).
UNGATED = "+ungated"
#: An ungated start refused at the cap retries until a slot is free: runs last ~3 s, and
#: 12 tries of 0.5-2 s backoff outlast several of them.
OVER_CAP_RETRY = RetryPolicy(attempts=12, base_s=0.5, max_s=2.0)


class LiveMachineBase(ChaosMachine):
    """One example: reset, frame, model, drivers; rules come from the ``rules_*`` mixins."""

    #: The fault and time rules this class runs (None: all of them); subclasses narrow it.
    enabled_rules: frozenset[str] | None = None

    def __init__(self, runtime: MachineRuntime, setup: LiveSetup) -> None:
        self.serial = setup.next_serial()
        runtime.history = setup.new_history(self.serial)  # one History per example
        super().__init__(runtime)
        self.setup = setup
        self.cluster = setup.cluster
        if tuple(self.cluster.replica_ids) != REPLICAS:
            raise ValueError(f"the live machine needs replicas {REPLICAS}")
        self.began = time.monotonic()
        self.prefix = f"{setup.prefix}-e{self.serial}"
        settings = settings_of(self.cluster.spec)
        self.cap = settings.max_runs_per_user
        self._reset()
        with self.timed("open_frame"):
            self.frame_cm = scenario_run(self.cluster, self.history, self.prefix, settle_s=SETTLE_S)
            self.frame: ScenarioRun = self.run(self.frame_cm.__aenter__(), what="open the frame")
        params = self.frame.params
        self.model = LiveModel(
            REPLICAS,
            self.cap,
            reap_bound_s=params.reap_bound_s + params.reap_margin_s,
            release_bound_s=params.replica_sweep_s + params.reap_margin_s,
            replica_died=params.terminal.replica_died,
            judge_replica_rows=True,
        )
        self.users = UserGate(self.cap)  # one per-user gate for every driver
        self.drivers: dict[str, Driver] = {}
        #: Each started run's driver call, by agent id (done once its stream ended; the
        #: three runs of a circuit share their group's call).
        self.pending: dict[str, concurrent.futures.Future[Any]] = {}
        #: Agent ids of the example's circuit runs, and each circuit as (id, user id).
        self.circuits: set[str] = set()
        self.circuit_users: list[tuple[str, str]] = []
        #: Clients of drivers replaced after a restart; their streams may still be open.
        self.retired: list[RunClient] = []
        self.closed = False
        #: SIGKILLs this example may do (``initial_load`` draws it; None: no limit) and did.
        self.kill_budget: int | None = None
        self.kills = 0
        #: Circuits this example may start (``initial_load`` draws it; None: one), and
        #: how often ``start_circuit`` ran (what the budget counts: a program decides it).
        self.circuit_budget: int | None = None
        self.circuit_rules = 0
        #: Whether ``start_over_the_cap`` ran (once per example).
        self.over_cap_started = False
        setup.stats.examples += 1

    def _reset(self) -> None:
        if self.setup.fresh:
            self.setup.fresh = False
            return
        took = self.run(self.cluster.reset(), what="reset the cluster", timeout=300.0)
        self.setup.stats.add_time("reset", took)
        self.setup.stats.reset_s.append(took)
        self.history.note("machine_reset", seconds=round(took, 3))

    # -- helpers ---------------------------------------------------------------------
    @contextlib.contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Add the block's wall time to ``phase`` in the setup's stats (where time goes)."""
        began = time.monotonic()
        try:
            yield
        finally:
            self.setup.stats.add_time(phase, time.monotonic() - began)

    def enabled(self, rule_name: str) -> bool:
        """Whether this machine class runs ``rule_name`` (faults and time rules only)."""
        return self.enabled_rules is None or rule_name in self.enabled_rules

    def step(self, name: str, **data: Any) -> None:
        self.begin_step(name, **data)
        self.setup.stats.steps += 1
        self.setup.stats.rules[name] = self.setup.stats.rules.get(name, 0) + 1

    def run_timed(
        self, work: Coroutine[Any, Any, T], *, what: str, phase: str, timeout: float | None = None
    ) -> T:
        with self.timed(phase):
            return self.run(work, what=what, timeout=timeout)

    def wait_until(
        self,
        condition: Callable[[], Awaitable[bool]],
        *,
        what: str,
        timeout: float,
        phase: str,
        interval: float = 0.5,
    ) -> None:
        """``eventually(condition)`` on the session loop, its time added to ``phase``; raises
        :class:`WaitTimeout` (saying what it waited for) after ``timeout``."""
        self.run_timed(
            eventually(condition, what=what, timeout=timeout, interval=interval),
            what=what,
            phase=phase,
            timeout=timeout + 15.0,
        )

    def driver(self, via: str, *, gated: bool = True) -> Driver:
        """The driver that starts runs through ``via``: gated at the per-user cap (the
        write-up's driver, sharing one gate), or ``gated=False``: sends every start and
        retries a cap refusal with backoff (:data:`OVER_CAP_RETRY`)."""
        key = via if gated else via + UNGATED
        if key not in self.drivers:
            url = self.cluster.lb_url if via == "lb" else self.cluster.replica_url(via)
            driver = Driver(
                client_for(self.cluster, url),
                self.history,
                via=via,
                policy=(
                    gated_policy(self.cap)
                    if gated
                    else CapPolicy.send_anyway(self.cap, OVER_CAP_RETRY)
                ),
                poll_timeout_s=POLL_TIMEOUT_S,
                name=f"machine-{key}",
            )
            if gated:
                driver.users = self.users
            self.drivers[key] = driver
        return self.drivers[key]

    def forget_client(self, via: str) -> None:
        """A restarted replica has a new host port: its next driver dials the new one.
        The old client stays open for streams still reading from it; closed at the end."""
        for key in (via, via + UNGATED):
            old = self.drivers.pop(key, None)
            if old is not None:
                self.retired.append(old.client)

    def snapshot(self) -> Snapshot:
        return self.run(self.frame.sample(), what="sample the database", timeout=30.0)

    def start(self, via: str, user: int | str, count: int, *, gated: bool = True) -> list[str]:
        """Start ``count`` runs for user ``user``; returns their agent ids at once."""
        driver = self.driver(via, gated=gated)
        agents = []
        for _ in range(count):
            n = self.runtime.next_id("machine_run")
            agent_id = f"{self.prefix}-a{n}"
            user_id = f"{self.prefix}-u{user}"
            self.model.started(agent_id, user_id, via)
            req = RunRequest(
                agent=DEFAULT_AGENT, agent_id=agent_id, prompt="loomchaos machine", user_id=user_id
            )
            self.pending[agent_id] = self.setup.bridge.submit(driver.run(req))
            agents.append(agent_id)
        return agents

    def settle_starts(self, agents: list[str]) -> None:
        """Wait (bounded) until every new run has a row, unless its start call ended or its
        user is at the cap (the rest wait for a slot: ``LiveModel.unsettled``); a start
        still unsettled after the bound (a stalled replica) is noted."""

        async def rows() -> bool:
            snap = await self.frame.peek()
            ended = [a for a in agents if self.pending[a].done()]
            return not self.model.unsettled(snap, agents, ended)

        try:
            self.wait_until(
                rows,
                what=f"rows of {agents}",
                timeout=START_SETTLE_S,
                phase="settle_starts",
                interval=0.2,
            )
        except WaitTimeout as exc:
            self.history.note("machine_start_unsettled", agents=agents, wait=str(exc)[:300])

    def starts_in_flight(self, snap: Snapshot) -> list[str]:
        """Runs the example asked for whose start has not ended and that have no row yet
        (gated on their user's slot, or still being admitted)."""
        with_rows = {r.agent_id for r in snap.runs}
        return [a for a, f in self.pending.items() if not f.done() and a not in with_rows]

    def via_for(self, choice: str, owner: str | None) -> str:
        return replica_for(choice, owner, self.model.up(), REPLICAS)

    async def cancel_through(self, via: str, agent_id: str) -> CancelResult | None:
        client = client_for(self.cluster, self.cluster.replica_url(via))
        try:
            return await recorded_cancel(
                self.history, client, agent_id, via=via, reason=CANCEL_REASON
            )
        finally:
            with contextlib.suppress(Exception):
                await client.aclose()

    def cancelled(self, agent_id: str, result: CancelResult | None) -> None:
        if result is not None and result.classification == "acknowledged":
            self.model.cancel_acknowledged(agent_id, time.monotonic())

    def owner_of(self, agent_id: str) -> str | None:
        row = running_row(self.snapshot(), agent_id)
        return None if row is None else row.replica_id

    def owned_running(self, replica_id: str, snap: Snapshot | None = None) -> list[str]:
        snap = self.snapshot() if snap is None else snap
        return [
            r.agent_id
            for r in snap.runs
            if r.status == "running"
            and r.replica_id == replica_id
            and r.agent_id in self.model.runs
        ]

    def may_kill(self) -> bool:
        """One replica out at a time, and the example's kill budget not spent."""
        spent = self.kill_budget is not None and self.kills >= self.kill_budget
        return not self.model.down() and not spent

    def kill(self, replica_id: str) -> None:
        self.kills += 1
        owned = self.owned_running(replica_id)
        fault = self.run(kill_seen_dead(self.cluster, replica_id), what="build the kill")
        self.setup.stats.fault(FAULT_KILL)
        self.inject(fault)
        self.model.killed(replica_id, time.monotonic(), owned)

    def wait_reaped(self, replica: str) -> None:
        """Until the survivors reaped killed ``replica`` (bounded by the reap bound)."""
        listed = survivors_list(self.cluster, replica)

        async def gone() -> bool:
            return not await listed()

        self.wait_until(
            gone,
            what=f"the survivors to reap killed {replica}",
            timeout=reap_wait_s(self.frame.params),
            phase="wait_reaped",
            interval=1.0,
        )
        self.model.reaped(replica, time.monotonic())

    # -- the per-step invariant -------------------------------------------------------------
    @invariant()
    def cluster_matches_the_model(self) -> None:
        """No run past the moment the model says it must have ended; no user above the cap;
        no terminal row changed; no reap while the sweeper's lock is held; every up replica
        has its row."""
        if self.closed:
            return
        with self.timed("invariant"):
            snap = self.snapshot()
        problems = self.model.problems(snap, time.monotonic())
        if problems:
            self.history.note("machine_model_violation", problems=problems[:20])
            raise AssertionError("the cluster broke the model: " + "; ".join(problems[:5]))

    async def path_answers(self) -> bool:
        """The load balancer answers its health check (after the last heal)."""
        client = client_for(self.cluster, self.cluster.lb_url)
        try:
            return (await client.health()).ok
        except Exception:
            return False
        finally:
            with contextlib.suppress(Exception):
                await client.aclose()

    async def close_clients(self) -> None:
        """Started runs get RUNS_DRAIN_S to end (they are ~seconds long), then are cut."""
        futures = [asyncio.wrap_future(f) for f in self.pending.values()]
        if futures:
            _, late = await asyncio.wait(futures, timeout=RUNS_DRAIN_S)
            for f in late:
                f.cancel()
            await asyncio.gather(*futures, return_exceptions=True)
        clients = [d.client for d in self.drivers.values()] + self.retired
        self.drivers.clear()
        self.retired.clear()
        await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)
