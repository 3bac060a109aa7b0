"""``LiveClusterMachine``: Hypothesis rules over one live 3-replica cluster of the target.

Rules are the operations and faults the scenarios already use: start runs
(through the load balancer or one replica), cancel a run (through its owner,
a non-owner or a named replica), cancel one run from two replicas at once,
SIGKILL a replica (restarted under the same id only once the survivors
reaped it), freeze one briefly, stop one gracefully, restart, let the next
sweep or the stale threshold pass, and kill a run's owner while a cancel of
that run is in flight.  One replica is out at a time.

Each example resets the cluster, runs under its own id prefix and History in
a scenario frame (:func:`chaos.sut.loomcycle.ports.scenario_run`), checks the
model's invariant after every step (:meth:`LiveModel.problems`), and on
teardown heals everything, converges and hands the whole history to the full
checkers.  A failing verdict whose signature a write-up in ``docs/findings/``
explains is counted as known (``LiveSetup.explain``), not failed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import time
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule

from chaos.checks import ALL_CHECKS
from chaos.cluster.topology import replica_ids
from chaos.cluster.view import client_for
from chaos.faults.replica import freeze_replica, reap_wait_s, rejoin, stop_replica, survivors_list
from chaos.machine.base import ChaosMachine, MachineRuntime
from chaos.machine.live.model import LiveModel, replica_for
from chaos.machine.live.setup import ExampleFacts, LiveSetup
from chaos.record.vocabulary import FAULT_KILL, FAULT_PAUSE, FAULT_STOP, Snapshot
from chaos.scenario.cancels import recorded_cancel
from chaos.scenario.killed_owner import kill_seen_dead
from chaos.scenario.run import ScenarioRun
from chaos.scenario.steps import DEFAULT_AGENT, row_of, running_row
from chaos.sut.base import CancelResult, RunClient, RunRequest
from chaos.sut.loomcycle.ports import gated_policy, scenario_run
from chaos.sut.loomcycle.settings import settings_of
from chaos.verdict import Verdict
from chaos.wait import WaitTimeout, eventually
from chaos.workload.driver import Driver, RunResult
from chaos.workload.gates import UserGate

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
#: Moments after a cancel is sent at which its run's owner is killed.
KILL_DELAYS_S = (0.0, 0.05, 0.2, 0.5)
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


class LiveClusterMachine(ChaosMachine):
    """See the module docstring.  Build with ``lambda: LiveClusterMachine(runtime, setup)``."""

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
        self.frame_cm = scenario_run(self.cluster, self.history, self.prefix, settle_s=SETTLE_S)
        self.frame: ScenarioRun = self.run(self.frame_cm.__aenter__(), what="open the frame")
        self.model = LiveModel(
            REPLICAS,
            self.cap,
            reap_bound_s=self.frame.params.reap_bound_s + self.frame.params.reap_margin_s,
        )
        self.users = UserGate(self.cap)  # one per-user gate for every driver
        self.drivers: dict[str, Driver] = {}
        self.pending: list[concurrent.futures.Future[RunResult]] = []
        #: Clients of drivers replaced after a restart; their streams may still be open.
        self.retired: list[RunClient] = []
        self.closed = False
        setup.stats.examples += 1

    def _reset(self) -> None:
        if self.setup.fresh:
            self.setup.fresh = False
            return
        took = self.run(self.cluster.reset(), what="reset the cluster", timeout=300.0)
        self.setup.stats.reset_s.append(took)
        self.history.note("machine_reset", seconds=round(took, 3))

    # -- helpers ---------------------------------------------------------------------
    def enabled(self, rule_name: str) -> bool:
        """Whether this machine class runs ``rule_name`` (faults and time rules only)."""
        return self.enabled_rules is None or rule_name in self.enabled_rules

    def step(self, name: str, **data: Any) -> None:
        self.begin_step(name, **data)
        self.setup.stats.steps += 1

    def driver(self, via: str) -> Driver:
        if via not in self.drivers:
            url = self.cluster.lb_url if via == "lb" else self.cluster.replica_url(via)
            driver = Driver(
                client_for(self.cluster, url),
                self.history,
                via=via,
                policy=gated_policy(self.cap),
                poll_timeout_s=POLL_TIMEOUT_S,
                name=f"machine-{via}",
            )
            driver.users = self.users
            self.drivers[via] = driver
        return self.drivers[via]

    def forget_client(self, via: str) -> None:
        """A restarted replica has a new host port: its next driver dials the new one.
        The old client stays open for streams still reading from it; closed at the end."""
        old = self.drivers.pop(via, None)
        if old is not None:
            self.retired.append(old.client)

    def snapshot(self) -> Snapshot:
        return self.run(self.frame.sample(), what="sample the database", timeout=30.0)

    def start(self, via: str, user: int, count: int) -> list[str]:
        """Start ``count`` runs for user ``user``; returns their agent ids at once."""
        driver = self.driver(via)
        agents = []
        for _ in range(count):
            n = self.runtime.next_id("machine_run")
            agent_id = f"{self.prefix}-a{n}"
            user_id = f"{self.prefix}-u{user}"
            self.model.started(agent_id, user_id, via)
            req = RunRequest(
                agent=DEFAULT_AGENT, agent_id=agent_id, prompt="loomchaos machine", user_id=user_id
            )
            self.pending.append(self.setup.bridge.submit(driver.run(req)))
            agents.append(agent_id)
        return agents

    def settle_starts(self, agents: list[str]) -> None:
        """Wait (bounded) until every new run has a row; a gated or stalled start is noted."""

        async def rows() -> bool:
            snap = await self.frame.peek()
            return all(row_of(snap, a) is not None for a in agents)

        try:
            self.run(
                eventually(rows, what=f"rows of {agents}", timeout=START_SETTLE_S, interval=0.2),
                what="new runs' rows",
                timeout=START_SETTLE_S + 15.0,
            )
        except WaitTimeout as exc:
            self.history.note("machine_start_unsettled", agents=agents, wait=str(exc)[:300])

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

    def owned_running(self, replica_id: str) -> list[str]:
        snap = self.snapshot()
        return [
            r.agent_id
            for r in snap.runs
            if r.status == "running"
            and r.replica_id == replica_id
            and r.agent_id in self.model.runs
        ]

    def kill(self, replica_id: str) -> None:
        owned = self.owned_running(replica_id)
        fault = self.run(kill_seen_dead(self.cluster, replica_id), what="build the kill")
        self.setup.stats.fault(FAULT_KILL)
        self.inject(fault)
        self.model.killed(replica_id, time.monotonic(), owned)

    # -- rules: load and cancels ----------------------------------------------------------
    @initialize(users=st.integers(1, USERS), runs=st.integers(0, 6))
    def initial_load(self, users: int, runs: int) -> None:
        """Load every example starts under (through the balancer, round-robin over users),
        so that faults and cancels meet running runs; shrinks to none."""
        self.step("initial_load", users=users, runs=runs)
        agents: list[str] = []
        for n in range(runs):
            agents += self.start("lb", n % users, 1)
        if agents:
            self.settle_starts(agents)

    @precondition(lambda self: len(self.model.runs) < MAX_RUNS)
    @rule(via=st.sampled_from(VIAS), user=st.integers(0, USERS - 1), count=st.integers(1, 3))
    def start_runs(self, via: str, user: int, count: int) -> None:
        """A replica that is out is not dialled: the start goes through the balancer."""
        actual = via if via == "lb" or via in self.model.up() else "lb"
        self.step("start_runs", via=actual, asked_via=via, user=user, count=count)
        self.settle_starts(self.start(actual, user, count))

    @precondition(lambda self: bool(self.model.runs))
    @rule(pick=st.integers(0, MAX_RUNS - 1), via=st.sampled_from(("owner", "non_owner", *REPLICAS)))
    def cancel(self, pick: int, via: str) -> None:
        run = self.model.pick(pick)
        assert run is not None
        actual = self.via_for(via, self.owner_of(run.agent_id))
        self.step("cancel", agent_id=run.agent_id, via=actual, asked_via=via)
        result = self.run(
            self.cancel_through(actual, run.agent_id), what="cancel", timeout=CANCEL_WAIT_S
        )
        self.cancelled(run.agent_id, result)

    @precondition(lambda self: bool(self.model.runs) and len(self.model.up()) >= 2)
    @rule(pick=st.integers(0, MAX_RUNS - 1))
    def cancel_twice_at_once(self, pick: int) -> None:
        """The same run cancelled through two replicas at the same moment (non-owners first)."""
        run = self.model.pick(pick)
        assert run is not None
        owner = self.owner_of(run.agent_id)
        up = self.model.up()
        vias = ([r for r in up if r != owner] + [r for r in up if r == owner])[:2]
        self.step("cancel_twice_at_once", agent_id=run.agent_id, vias=vias)

        async def both() -> list[CancelResult | None]:
            return list(await asyncio.gather(*(self.cancel_through(v, run.agent_id) for v in vias)))

        for result in self.run(both(), what="two cancels at once", timeout=CANCEL_WAIT_S):
            self.cancelled(run.agent_id, result)

    # -- rules: replica faults ----------------------------------------------------------
    @precondition(lambda self: self.enabled("kill_replica") and not self.model.down())
    @rule(replica=st.sampled_from(REPLICAS))
    def kill_replica(self, replica: str) -> None:
        """SIGKILL; it stays dead until the survivors reap it (a restart earlier would
        heartbeat its old row back and leave its runs to the per-run sweeper)."""
        self.step("kill_replica", replica=replica)
        self.kill(replica)

    @precondition(
        lambda self: (
            self.enabled("kill_owner_during_cancel")
            and not self.model.down()
            and bool(self.model.runs)
        )
    )
    @rule(pick=st.integers(0, MAX_RUNS - 1), delay=st.sampled_from(KILL_DELAYS_S))
    def kill_owner_during_cancel(self, pick: int, delay: float) -> None:
        """A non-owner's cancel of a running run is sent; ``delay`` later its owner dies."""
        run = self.model.pick(pick)
        assert run is not None
        owner = self.owner_of(run.agent_id)
        self.step("kill_owner_during_cancel", agent_id=run.agent_id, owner=owner, delay=delay)
        if owner is None or owner not in self.model.up():
            self.history.note(
                "machine_race_skipped", why="the run is not running", agent_id=run.agent_id
            )
            return
        via = self.via_for("non_owner", owner)
        in_flight = self.setup.bridge.submit(self.cancel_through(via, run.agent_id))
        self.run(let_time_pass(delay), what="the race's delay", timeout=delay + 5.0)
        self.kill(owner)
        result = in_flight.result(timeout=CANCEL_WAIT_S)
        self.cancelled(run.agent_id, result)

    @precondition(lambda self: self.enabled("freeze_briefly") and not self.model.down())
    @rule(
        replica=st.sampled_from(REPLICAS),
        hold=st.sampled_from(FREEZE_HOLDS_S),
        during=st.sampled_from(FREEZE_DURING),
    )
    def freeze_briefly(self, replica: str, hold: float, during: str) -> None:
        """Frozen and thawed inside one rule, so no freeze reaches the stale threshold."""
        self.step("freeze_briefly", replica=replica, hold=hold, during=during)
        owned = self.owned_running(replica)
        fault = self.run(freeze_replica(self.cluster, replica), what="build the freeze")
        self.setup.stats.fault(FAULT_PAUSE)
        self.inject(fault)
        self.model.frozen(replica, time.monotonic())
        if during == "cancel_its_run" and owned:
            via = self.via_for("non_owner", replica)
            result = self.run(
                self.cancel_through(via, owned[0]),
                what="cancel to a frozen owner",
                timeout=CANCEL_WAIT_S,
            )
            self.cancelled(owned[0], result)
        elif during == "start_via_lb" and len(self.model.runs) < MAX_RUNS:
            self.start("lb", 0, 1)
        self.run(let_time_pass(hold), what="the freeze's hold", timeout=hold + 5.0)
        self.heal(replica)
        self.model.restarted(replica, time.monotonic())

    @precondition(lambda self: self.enabled("graceful_stop") and not self.model.down())
    @rule(replica=st.sampled_from(REPLICAS))
    def graceful_stop(self, replica: str) -> None:
        self.step("graceful_stop", replica=replica)
        fault = self.run(stop_replica(self.cluster, replica), what="build the stop")
        self.setup.stats.fault(FAULT_STOP)
        self.inject(fault)
        self.model.stopped(replica, time.monotonic())

    @precondition(lambda self: any(self.model.may_restart(r) for r in self.model.down()))
    @rule()
    def restart(self) -> None:
        """The replica that is out comes back under its own id and rejoins."""
        replica = next(r for r in self.model.down() if self.model.may_restart(r))
        self.step("restart", replica=replica)
        self.restart_replica(replica)

    def restart_replica(self, replica: str) -> None:
        self.heal(replica)
        self.run(rejoin(self.cluster, replica), what=f"{replica} rejoins", timeout=150.0)
        self.forget_client(replica)
        self.model.restarted(replica, time.monotonic())

    # -- rules: time ----------------------------------------------------------------------
    @precondition(lambda self: self.enabled("pass_one_sweep"))
    @rule()
    def pass_one_sweep(self) -> None:
        """One sweep interval of the target's clock."""
        sweep = self.frame.params.replica_sweep_s
        self.step("pass_one_sweep", seconds=sweep)
        self.run(let_time_pass(sweep), what="one sweep interval", timeout=sweep + 5.0)

    @precondition(lambda self: any(self.model.status(r) == "killed" for r in REPLICAS))
    @rule()
    def pass_the_stale_threshold(self) -> None:
        """Until the survivors reaped the killed replica (bounded by the reap bound)."""
        replica = next(r for r in REPLICAS if self.model.status(r) == "killed")
        self.step("pass_the_stale_threshold", replica=replica)
        self.wait_reaped(replica)

    def wait_reaped(self, replica: str) -> None:
        listed = survivors_list(self.cluster, replica)

        async def gone() -> bool:
            return not await listed()

        bound = reap_wait_s(self.frame.params)
        self.run(
            eventually(
                gone, what=f"the survivors to reap killed {replica}", timeout=bound, interval=1.0
            ),
            what=f"reap of {replica}",
            timeout=bound + 30.0,
        )
        self.model.reaped(replica, time.monotonic())

    # -- the per-step invariant -------------------------------------------------------------
    @invariant()
    def cluster_matches_the_model(self) -> None:
        """No run past the moment the model says it must have ended; no user above the cap;
        no terminal row changed."""
        if self.closed:
            return
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

    # -- teardown: heal, converge, judge ---------------------------------------------------
    async def close_clients(self) -> None:
        """Started runs get RUNS_DRAIN_S to end (they are ~seconds long), then are cut."""
        futures = [asyncio.wrap_future(f) for f in self.pending]
        if futures:
            _, late = await asyncio.wait(futures, timeout=RUNS_DRAIN_S)
            for f in late:
                f.cancel()
            await asyncio.gather(*futures, return_exceptions=True)
        clients = [d.client for d in self.drivers.values()] + self.retired
        self.drivers.clear()
        self.retired.clear()
        await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)

    def teardown(self) -> None:
        """Reap the killed, heal everything (base), bring replicas back, converge, judge."""
        failures: list[str] = []
        teardown_began = time.monotonic()
        try:
            for replica in [r for r in REPLICAS if self.model.status(r) == "killed"]:
                self.wait_reaped(replica)
        except Exception as exc:
            failures.append(f"reap before teardown: {type(exc).__name__}: {exc}"[:500])
        out = [r for r in REPLICAS if r in self.active]
        try:
            super().teardown()  # heals (and proves) every fault, drains runs, closes clients
        except Exception as exc:
            failures.append(f"{type(exc).__name__}: {exc}"[:800])
        for replica in out:
            try:
                self.run(rejoin(self.cluster, replica), what=f"{replica} rejoins", timeout=150.0)
            except Exception as exc:
                failures.append(f"{replica} rejoin: {type(exc).__name__}: {exc}"[:500])
        self.closed = True
        unexplained = self.judge() if not failures else []
        self.setup.stats.example_s.append(time.monotonic() - self.began)
        self.setup.stats.teardown_s.append(time.monotonic() - teardown_began)
        self.setup.stats.programs.append(list(self.steps))
        if failures or unexplained:
            self.setup.stats.failed_examples += 1
            self.save_history()
            lines = failures + [
                f"[{v.status.value.upper()}] {v.invariant}: {v.summary}" for v in unexplained
            ]
            raise AssertionError(f"example {self.serial} ({self.prefix}): " + " | ".join(lines))

    def judge(self) -> list[Verdict]:
        """Converge, run every checker, count known findings; the unexplained failures."""
        try:
            convergence = self.run(
                self.frame.converge(),
                what="convergence",
                timeout=reap_wait_s(self.frame.params) + 120.0,
            )
            verdicts = self.frame.verdicts(
                # A random program may give an invariant nothing to judge (no cancel, no
                # kill, no completed run): vacuity is the program's, not the check's.
                allow_vacuous=list(ALL_CHECKS)
            )
        finally:
            self.run(
                self.frame_cm.__aexit__(None, None, None), what="close the frame", timeout=60.0
            )
        facts = ExampleFacts(
            ctx=self.frame.context(),
            final=convergence.final,
            windows=tuple(self.history.fault_windows()),
            cancel_reason=CANCEL_REASON,
        )
        unexplained = []
        for verdict in verdicts:
            status = verdict.status.value
            self.setup.stats.verdicts[status] = self.setup.stats.verdicts.get(status, 0) + 1
            if verdict.ok:
                continue
            finding = self.setup.explain(verdict, facts)
            if finding is None:
                unexplained.append(verdict)
            else:
                self.setup.stats.known[finding] = self.setup.stats.known.get(finding, 0) + 1
                self.history.note(
                    "machine_known_finding", finding=finding, invariant=verdict.invariant
                )
        self.history.note(
            "machine_verdicts",
            example=self.serial,
            verdicts={v.invariant: v.status.value for v in verdicts},
            unexplained=[v.invariant for v in unexplained],
        )
        return unexplained

    def save_history(self) -> None:
        if self.setup.artifacts is None:
            return
        path = self.setup.artifacts / f"machine-example-{self.serial}.jsonl"
        with contextlib.suppress(Exception):
            self.history.save(path)
