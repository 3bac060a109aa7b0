"""The scenario runner: bounds recorded, evidence sampled, convergence awaited, checks run.

Every chaos scenario has the same frame around its own workload and faults::

    async with scenario_run(cluster, history, prefix) as run:   # chaos.sut.loomcycle.ports
        ...                                    # workload, faults
        await run.converge()
    chaos_verdicts(run.verdicts())

:class:`ScenarioRun` is that frame, written against :class:`ScenarioPorts`
(four reads of the target) so it can be unit-tested with fakes.  It records,
in the shapes :mod:`chaos.record.readers` defines:

* the :class:`~chaos.checks.params.CheckParams` once, on entry;
* a database snapshot every ``sample_interval_s`` in the background (bounded
  in count), because quota and terminal-transition checks judge samples
  taken *under load*, not only the end state;
* the event loop's lag, so a latency measured on a stalled loop is visible;
* on :meth:`ScenarioRun.converge`: snapshots until converged (or the budget
  runs out), then the final snapshot, a live probe for every run it still
  shows running, the ``done`` events of its completed runs, and the audit
  rows written since entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol

from chaos.checks import ALL_CHECKS, run_checks
from chaos.checks.context import CheckContext
from chaos.checks.params import CheckParams, record_params
from chaos.record.history import History
from chaos.record.readers import (
    record_audit,
    record_done_events,
    record_live_probe,
    record_snapshot,
)
from chaos.record.vocabulary import NOTE_CONVERGE, NOTE_SAMPLE_ERROR, AuditRow, Snapshot
from chaos.scenario.base import describe_error
from chaos.scenario.convergence import (
    OwnerAnswer,
    convergence_budget,
    running_rows,
    unsettled,
)
from chaos.verdict import Verdict
from chaos.wait import WaitTimeout, eventually
from chaos.workload.lag import LagSampler

#: At most this many sampler errors are written down (the rest only counted).
MAX_SAMPLE_ERRORS_NOTED = 20
#: Owners asked at once during convergence (each ask is one short HTTP call).
OWNER_PROBE_CONCURRENCY = 8


class ScenarioPorts(Protocol):
    """The target reads a scenario needs; the loomcycle wiring is in ``cluster_ports``."""

    async def snapshot(self) -> Snapshot:
        """Runs under the test prefix, replicas and the prefix's quotas, as of one instant."""
        ...

    async def audit_after(self, seq: int) -> Sequence[AuditRow]:
        """Audit rows of the test (and every replicas row) with a sequence above ``seq``."""
        ...

    async def done_run_ids(self, run_ids: Sequence[str]) -> set[str] | None:
        """Which of ``run_ids`` have a ``done`` event in the database.

        ``None`` when the target keeps no record of the events it sent: nothing is
        written down, and no_silent_regressions judges from the client's streams.
        """
        ...

    async def ask_owner(self, replica_id: str, agent_id: str) -> OwnerAnswer:
        """Ask ``replica_id`` on its own address about ``agent_id``'s newest run; never raises."""
        ...


@dataclass(frozen=True)
class Convergence:
    """How :meth:`ScenarioRun.converge` ended.  Not converging is evidence, not an error:
    the checkers read the final snapshot and say what is wrong."""

    converged: bool
    waited_s: float
    budget_s: float
    unsettled: tuple[str, ...]
    final: Snapshot


class ScenarioRun:
    """See the module docstring.  Use as ``async with``; call :meth:`converge` once."""

    def __init__(
        self,
        history: History,
        params: CheckParams,
        ports: ScenarioPorts,
        *,
        sample_interval_s: float = 1.0,
        max_samples: int = 3_600,
        settle_s: float = 30.0,
        probe_interval_s: float = 1.0,
        lag_interval_s: float = 0.25,
        read_timeout_s: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if sample_interval_s <= 0 or probe_interval_s <= 0:
            raise ValueError("sample and probe intervals must be > 0")
        self.history = history
        self.params = params
        self.ports = ports
        self.sample_interval_s = sample_interval_s
        self.max_samples = max_samples
        self.settle_s = settle_s
        self.probe_interval_s = probe_interval_s
        self.read_timeout_s = read_timeout_s
        self._clock = clock
        self._lag = LagSampler(history, interval_s=lag_interval_s)
        self._stop = asyncio.Event()
        self._sampler: asyncio.Task[None] | None = None
        self._audit_seq = 0
        self.samples_taken = 0
        self.sample_errors = 0
        self.convergence: Convergence | None = None

    # -- lifecycle ---------------------------------------------------------------
    async def __aenter__(self) -> ScenarioRun:
        record_params(self.history, self.params)
        # Only audit rows written from here on are this scenario's evidence; the
        # table outlives tests on a shared cluster.
        before = await self.ports.audit_after(0)
        self._audit_seq = max((r.seq for r in before), default=0)
        await self._lag.__aenter__()
        self._sampler = asyncio.create_task(self._sample_loop(), name="scenario-sampler")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop_sampler()
        await self._lag.__aexit__(exc_type, exc, tb)

    async def _stop_sampler(self) -> None:
        self._stop.set()
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
            self._sampler = None

    async def _sample_loop(self) -> None:
        for _ in range(self.max_samples):
            if self._stop.is_set():
                return
            try:
                await self.sample()
            except Exception as exc:  # a failed sample is a gap in evidence, not a test error
                self.sample_errors += 1
                if self.sample_errors <= MAX_SAMPLE_ERRORS_NOTED:
                    self.history.note(NOTE_SAMPLE_ERROR, error=describe_error(exc))
            # Pacing: wake at the next interval, or at once when stopped.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.sample_interval_s):
                    await self._stop.wait()

    # -- reads for the scenario's own steps ------------------------------------------
    async def _read(self) -> Snapshot:
        # Bounded: a stalled database must fail a read, not hang the scenario.
        async with asyncio.timeout(self.read_timeout_s):
            return await self.ports.snapshot()

    async def peek(self) -> Snapshot:
        """A snapshot that is NOT recorded (for choosing what to cancel, many times a second)."""
        return await self._read()

    async def sample(self) -> Snapshot:
        """A snapshot, recorded as evidence.  Not after :meth:`converge`: the final one is last."""
        if self.convergence is not None:
            raise RuntimeError("the final snapshot is taken; record nothing after converge()")
        snap = await self._read()
        record_snapshot(self.history, snap)
        self.samples_taken += 1
        return snap

    async def wait_for(
        self,
        condition: Callable[[Snapshot], object],
        *,
        what: str,
        timeout: float,
        interval: float = 0.2,
    ) -> Snapshot:
        """Poll (unrecorded) snapshots until ``condition`` holds; record and return that one."""

        async def probe() -> Snapshot | None:
            snap = await self.peek()
            return snap if condition(snap) else None

        found = await eventually(probe, what=what, timeout=timeout, interval=interval)
        assert found is not None  # eventually returns only a truthy value
        if self.convergence is None:
            record_snapshot(self.history, found)
        return found

    # -- convergence -------------------------------------------------------------------
    async def _ask_owners(self, snap: Snapshot) -> dict[str, OwnerAnswer]:
        alive = {r.replica_id for r in snap.replicas}
        rows = [r for r in running_rows(snap) if r.replica_id in alive]
        gate = asyncio.Semaphore(OWNER_PROBE_CONCURRENCY)

        async def ask(replica_id: str, agent_id: str) -> OwnerAnswer:
            async with gate:
                return await self.ports.ask_owner(replica_id, agent_id)

        answers = await asyncio.gather(*(ask(r.replica_id or "", r.agent_id) for r in rows))
        return {r.run_id: a for r, a in zip(rows, answers, strict=True)}

    async def converge(self, timeout: float | None = None) -> Convergence:
        """Wait until converged (see :mod:`chaos.scenario.convergence`), then record the end state.

        ``timeout`` defaults to :func:`convergence_budget` (the reap bound from
        the latest fault, plus ``settle_s``).  Returns even when the cluster did
        not converge: the checkers then judge what it left behind.
        """
        if self.convergence is not None:
            raise RuntimeError("converge() was already called for this scenario")
        await self._stop_sampler()
        began = self._clock()
        budget = (
            convergence_budget(self.history.fault_windows(), self.params, began, self.settle_s)
            if timeout is None
            else timeout
        )
        last: list[str] = []

        async def settled() -> bool:
            nonlocal last
            snap = await self.sample()
            last = unsettled(snap, await self._ask_owners(snap))
            return not last

        converged = True
        try:
            await eventually(
                settled,
                what="no run of the test left running without a live owner, quotas given back",
                timeout=budget,
                interval=self.probe_interval_s,
            )
        except WaitTimeout:
            converged = False
        final = await self.sample()
        await self._record_end_state(final)
        result = Convergence(
            converged=converged,
            waited_s=self._clock() - began,
            budget_s=budget,
            unsettled=tuple(last),
            final=final,
        )
        self.convergence = result
        self.history.note(
            NOTE_CONVERGE,
            converged=converged,
            waited_s=round(result.waited_s, 3),
            budget_s=round(budget, 3),
            unsettled=last[: self.params.evidence_limit],
            samples=self.samples_taken,
            sample_errors=self.sample_errors,
        )
        return result

    async def _record_end_state(self, final: Snapshot) -> None:
        """Live probes (after the final snapshot, as no_zombies requires), done events, audit."""
        for row in running_rows(final):
            if row.replica_id is None:
                answer = OwnerAnswer(live=False, error="the row names no owner")
            else:
                answer = await self.ports.ask_owner(row.replica_id, row.agent_id)
            record_live_probe(
                self.history,
                agent_id=row.agent_id,
                run_id=row.run_id,
                replica_id=row.replica_id or "",
                live=answer.live and answer.run_id in (None, row.run_id),
                status=answer.status,
                error=answer.error,
            )
        completed = [r.run_id for r in final.runs if r.status == "completed"]
        done = await self.ports.done_run_ids(completed)
        if done is not None:
            record_done_events(self.history, done)
        record_audit(self.history, await self.ports.audit_after(self._audit_seq))

    # -- judging -----------------------------------------------------------------------
    def context(self) -> CheckContext:
        if self.convergence is None:
            raise RuntimeError("call converge() before judging: the final snapshot is missing")
        return CheckContext.from_history(self.history)

    def verdicts(
        self, only: Sequence[str] | None = None, *, allow_vacuous: Collection[str] = ()
    ) -> list[Verdict]:
        """Every checker's verdict (or the named ones).

        ``allow_vacuous`` names invariants the scenario cannot give evidence for;
        the caller must say why next to the call.
        """
        unknown = [n for n in allow_vacuous if n not in ALL_CHECKS]
        if unknown:
            raise KeyError(f"allow_vacuous names unknown invariants {unknown}")
        verdicts = run_checks(self.context(), only)
        return [v.allowing_vacuous() if v.invariant in allow_vacuous else v for v in verdicts]
