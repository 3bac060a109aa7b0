"""Rules that make load and cancel it: the initial load, starts, a circuit, cancels, a
double cancel."""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import initialize, precondition, rule

from chaos.machine.live.constants import (
    CANCEL_WAIT_S,
    CIRCUIT_BUDGETS,
    KILL_BUDGETS,
    MAX_RUNS,
    REPLICAS,
    USERS,
    VIAS,
)
from chaos.machine.live.example import LiveMachineBase
from chaos.sut.base import CancelResult
from chaos.sut.loomcycle.settings import settings_of
from chaos.workload.circuits import circuit_requests

#: Circuit ids used so far, per cluster.  Each id's two channels are global queues that
#: outlive an example (a cut circuit may leave a message behind for the next circuit of that
#: id), and the suite has no drain for them, so an id is used once per cluster: a cluster
#: runs at most its ``circuits`` (the spec's CIRCUIT_IDS), then the rule does nothing.
_CIRCUITS_USED: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()


def next_circuit_id(cluster: Any) -> int | None:
    """A circuit id no example on ``cluster`` used yet (1, 2, ...), or None when all are."""
    used = _CIRCUITS_USED.get(cluster, 0)
    if used >= settings_of(cluster.spec).circuits:
        return None
    _CIRCUITS_USED[cluster] = used + 1
    return used + 1


class RunRules(LiveMachineBase):
    @initialize(
        users=st.integers(1, USERS),
        runs=st.integers(0, 6),
        kill_budget=st.sampled_from(KILL_BUDGETS),
        circuit_budget=st.sampled_from(CIRCUIT_BUDGETS),
    )
    def initial_load(
        self,
        users: int,
        runs: int,
        kill_budget: int | None = None,
        circuit_budget: int | None = None,
    ) -> None:
        """Load every example starts under (through the balancer, round-robin over users),
        so that faults and cancels meet running runs; shrinks to none.  ``kill_budget`` and
        ``circuit_budget``: how many SIGKILLs and circuits the example may do
        (:data:`KILL_BUDGETS`, :data:`CIRCUIT_BUDGETS`; absent: no limit, one circuit)."""
        self.kill_budget = kill_budget
        self.circuit_budget = circuit_budget
        self.step(
            "initial_load",
            users=users,
            runs=runs,
            kill_budget=kill_budget,
            circuit_budget=circuit_budget,
        )
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

    @precondition(
        lambda self: not self.over_cap_started and len(self.model.runs) + self.cap + 1 <= MAX_RUNS
    )
    @rule(via=st.sampled_from(VIAS))
    def start_over_the_cap(self, via: str) -> None:
        """cap + 1 runs of a user of their own, at once and without the client-side gate:
        the target must refuse the one too many (``per_user_quota_exhausted``, retried with
        backoff until a slot is free), so the user never holds more than the cap (the
        per-step quota check and ``no_quota_leaks``'s samples).  Every other start goes
        through the gate, which never sends a start above the cap, so without this rule a
        cap check that admits one too many (planted defect 02) is out of reach.  Once per
        example: the user is the example's own."""
        actual = via if via == "lb" or via in self.model.up() else "lb"
        self.over_cap_started = True
        self.step("start_over_the_cap", via=actual, asked_via=via, count=self.cap + 1)
        self.settle_starts(self.start(actual, "cap", self.cap + 1, gated=False))

    @precondition(
        lambda self: (
            self.enabled("start_circuit")
            and self.circuit_rules < (1 if self.circuit_budget is None else self.circuit_budget)
            and len(self.model.runs) + 3 <= MAX_RUNS
        )
    )
    @rule(via=st.sampled_from(VIAS), user=st.integers(0, USERS - 1))
    def start_circuit(self, via: str, user: int) -> None:
        """A three-agent circuit (researcher, editor, evaluator) for one user, its three
        runs started together and holding three of the user's slots as a unit (at most the
        example's budget, one at most: it outlasts the example's other runs, ~40 s of 3 s
        provider calls and channel waits, and the teardown cuts what is left after
        RUNS_DRAIN_S).  The model
        gives its runs no deadline of their own: a member waits on its channel while the
        one before it runs, so only the causes every run has (a kill, an acked cancel)
        bound them; the per-user cap covers its slots."""
        actual = via if via == "lb" or via in self.model.up() else "lb"
        self.circuit_rules += 1
        circuit = next_circuit_id(self.cluster)
        self.step("start_circuit", via=actual, asked_via=via, user=user, circuit=circuit)
        if circuit is None:
            self.history.note("machine_circuit_skipped", why="every circuit id is used")
            return
        user_id = f"{self.prefix}-u{user}"
        reqs = circuit_requests(circuit, user_id, self.prefix)
        self.circuit_users.append((f"c{circuit}", user_id))
        group = self.setup.bridge.submit(
            self.driver(actual).run_group(reqs, tags={"circuit": f"c{circuit}"})
        )
        for req in reqs:
            self.model.started(req.agent_id, str(req.user_id), actual)
            self.pending[req.agent_id] = group
            self.circuits.add(req.agent_id)
        self.settle_starts([r.agent_id for r in reqs])

    @precondition(lambda self: bool(self.model.runs))
    @rule(pick=st.integers(0, MAX_RUNS - 1), via=st.sampled_from(("owner", "non_owner", *REPLICAS)))
    def cancel(self, pick: int, via: str) -> None:
        run = self.model.pick(pick)
        assert run is not None
        actual = self.via_for(via, self.owner_of(run.agent_id))
        self.step("cancel", agent_id=run.agent_id, via=actual, asked_via=via)
        result = self.run_timed(
            self.cancel_through(actual, run.agent_id),
            what="cancel",
            phase="rule:cancel",
            timeout=CANCEL_WAIT_S,
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

        for result in self.run_timed(
            both(), what="two cancels at once", phase="rule:cancel", timeout=CANCEL_WAIT_S
        ):
            self.cancelled(run.agent_id, result)
