"""Running a concrete schedule against the callables a test supplies.

``actions`` maps each ``load``/``fault``/``until`` step's ``op`` (and,
optionally, ``"quiesce"``) to ``async fn(step)``:

* a load's or a fault's action returns what is now open: an async context
  manager (entered here, exited at its ``heal``/``end`` step: ``injected(...)``
  fits as it is), an ``async fn()`` that heals it, or None (nothing to close);
* a gate's (``until``) action returns once its condition holds; the next
  phase's times count from then;
* ``quiesce`` runs after every heal and end the quiesce step implied.

Steps run one after another in the schedule's order, each within its
``timeout_s``.  A step whose work takes long (a kill whose effect proof is the
reap) makes the following ones late: each step's note says when it was due
and when it really ran.  Whatever is still open when the schedule ends, or
when a step fails, is closed latest first before the error propagates.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from chaos.record.history import History
from chaos.record.vocabulary import NOTE_SCHEDULE
from chaos.schedule.plan import ACTION_KINDS, Schedule, ScheduleError, Step

Closer: TypeAlias = Callable[[], Awaitable[object]]
#: What a load's or fault's action returns: what to close later, if anything.
Opened: TypeAlias = AbstractAsyncContextManager[Any] | Closer | None
Action: TypeAlias = Callable[[Step], Awaitable[Opened]]
StepOutcome = Literal["ok", "tolerated", "skipped", "error"]
#: The action name a quiesce step runs, when the test supplies it.
QUIESCE = "quiesce"


class StepTimeout(TimeoutError):
    """A step's action (or its heal, or a gate's wait) outlasted the step's ``timeout_s``."""


@dataclass(frozen=True)
class StepRun:
    """When a step was due and really ran, in seconds from the start of the run."""

    step: Step
    due_s: float
    started_s: float
    ended_s: float
    outcome: StepOutcome
    error: str | None = None

    @property
    def late_s(self) -> float:
        return self.started_s - self.due_s


@dataclass
class ScheduleRun:
    """What :func:`run_schedule` did: every step's timing, and the errors it tolerated."""

    schedule: Schedule
    ran: list[StepRun] = field(default_factory=list)
    tolerated: list[BaseException] = field(default_factory=list)

    def of(self, index: int) -> StepRun:
        return next(r for r in self.ran if r.step.index == index)


async def run_schedule(
    schedule: Schedule,
    actions: Mapping[str, Action],
    *,
    history: History | None = None,
    tolerate: tuple[type[BaseException], ...] = (),
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> ScheduleRun:
    """Run ``schedule`` (see the module doc); record the plan and every step in ``history``.

    An exception of a ``tolerate`` type from a step is recorded (outcome
    ``tolerated``, kept in :attr:`ScheduleRun.tolerated`) and the schedule goes
    on; a fault that failed to open leaves nothing for its heal, which is then
    ``skipped``.  Any other exception closes what is open and propagates.
    ``clock`` and ``sleep`` are injectable so that a unit test can run a
    schedule on a fake clock.
    """
    missing = sorted({s.op for s in schedule.steps if s.kind in ACTION_KINDS} - set(actions))
    if missing:
        raise ScheduleError(f"no action for {missing}; the schedule needs one per name")
    return await _Runner(schedule, actions, history, tolerate, clock, sleep).run()


class _Runner:
    def __init__(
        self,
        schedule: Schedule,
        actions: Mapping[str, Action],
        history: History | None,
        tolerate: tuple[type[BaseException], ...],
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[object]],
    ) -> None:
        self.schedule = schedule
        self.actions = actions
        self.history = history
        self.tolerate = tolerate
        self.clock = clock
        self.sleep = sleep
        self.open: dict[int, Closer] = {}  # step index -> how to close it; insertion order
        self.result = ScheduleRun(schedule)
        self.start = 0.0

    def since_start(self, t: float) -> float:
        return round(t - self.start, 3)

    async def run(self) -> ScheduleRun:
        if self.history is not None:
            self.schedule.record(self.history)
        self.start = self.clock()
        anchors = {0: self.start}  # phase -> the moment its times count from
        try:
            for step in self.schedule.steps:
                due = anchors[step.phase] + step.at_s
                # Pacing, on purpose: the schedule's moments ARE the experiment (where
                # in the load the fault lands), not a wait for some state; every state
                # the schedule depends on is an ``until`` step with its own deadline.
                delay = due - self.clock()
                if delay > 0:
                    await self.sleep(delay)
                started = self.clock()
                outcome, error = await self.execute(step, due, started)
                ended = self.clock()
                if step.kind == "until":
                    anchors[step.phase + 1] = ended
                self.ran(step, due, started, ended, outcome, error)
        except BaseException:
            await self.close_all(raise_first=False)
            raise
        await self.close_all(raise_first=True)
        return self.result

    async def execute(
        self, step: Step, due: float, started: float
    ) -> tuple[StepOutcome, str | None]:
        deadline = asyncio.timeout(step.timeout_s)
        try:
            async with deadline:
                return await self.perform(step), None
        except TimeoutError as exc:
            if not deadline.expired():
                return self.failed(step, due, started, exc)  # the action's own timeout
            error = StepTimeout(f"{step.describe()} outlasted its {step.timeout_s}s")
            self.ran(step, due, started, self.clock(), "error", str(error))
            raise error from exc
        except BaseException as exc:
            return self.failed(step, due, started, exc)

    def failed(
        self, step: Step, due: float, started: float, exc: BaseException
    ) -> tuple[StepOutcome, str | None]:
        """A tolerated error is the step's outcome; any other is recorded and raised."""
        if isinstance(exc, self.tolerate):
            self.result.tolerated.append(exc)
            return "tolerated", _describe(exc)
        self.ran(step, due, started, self.clock(), "error", _describe(exc))
        raise exc

    async def perform(self, step: Step) -> StepOutcome:
        if step.kind in ("load", "fault"):
            closer = await _enter(await self.actions[step.op](step))
            if closer is not None:
                self.open[step.index] = closer
        elif step.kind == "until":
            await self.actions[step.op](step)
        elif step.kind in ("heal", "end"):
            opened = self.open.pop(int(step.params["of"]), None)
            if opened is None:
                return "skipped"  # it never opened (a tolerated failure), or closed itself
            await opened()
        elif step.kind == "quiesce" and QUIESCE in self.actions:
            await self.actions[QUIESCE](step)
        return "ok"

    def ran(
        self,
        step: Step,
        due: float,
        started: float,
        ended: float,
        outcome: StepOutcome,
        error: str | None,
    ) -> None:
        record = StepRun(
            step,
            self.since_start(due),
            self.since_start(started),
            self.since_start(ended),
            outcome,
            error,
        )
        self.result.ran.append(record)
        if self.history is not None:
            self.history.note(
                NOTE_SCHEDULE,
                ran=step.index,
                kind=step.kind,
                name=step.op,
                target=step.target,
                phase=step.phase,
                due_s=record.due_s,
                started_s=record.started_s,
                ended_s=record.ended_s,
                late_s=round(record.late_s, 3),
                outcome=outcome,
                error=error,
            )

    async def close_all(self, *, raise_first: bool) -> None:
        """Close whatever is still open, latest first; every one is tried."""
        first: BaseException | None = None
        for index in reversed(list(self.open)):
            closer = self.open.pop(index)
            error: str | None = None
            try:
                await closer()
            except Exception as exc:
                first = first or exc
                error = _describe(exc)
            if self.history is not None:
                self.history.note(NOTE_SCHEDULE, closed_at_exit=index, error=error)
        if raise_first and first is not None:
            raise first


async def _enter(opened: Opened) -> Closer | None:
    if opened is None:
        return None
    if isinstance(opened, AbstractAsyncContextManager):
        stack = AsyncExitStack()
        await stack.enter_async_context(opened)
        return stack.aclose
    return opened


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:1000]
