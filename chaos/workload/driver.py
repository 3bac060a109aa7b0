"""The async driver: starts runs, keeps their streams open, records every outcome.

A run on the target is tied to its SSE request: closing the stream early
cancels the run (``client disconnected``).  So the driver reads each stream
until ``done``/``error`` and learns the outcome from the stream itself.  Only
when a stream breaks (or the driver cuts it on purpose) does it fall back to
polling the run's status, and it records that poll as its own operation,
``run_status``, so a checker can tell what the client saw from what it asked
afterwards.

History records follow :mod:`chaos.record.vocabulary` (``start_run``):

* ``done`` event  -> ``ok`` with ``end="done"``, ``run_id``, ``replica_id``, ``stop_reason``;
* ``error`` event -> ``ok`` with ``end="error"`` and ``error``: the run existed
  and ended failed, which the client knows for certain; ``fail`` is kept for
  "the target said no and no run exists";
* refused before the stream (HTTP 4xx/5xx) -> ``fail`` with ``status``, ``code``, ``error``;
* stream broke, no terminal event -> ``info`` with ``error`` (and ``run_id`` if known);
* the driver closed the stream itself -> ``info`` with ``cut=True`` (``timeout=True``
  when the reason was the run deadline, ``cancelled=True`` when the driver was cancelled).

Every attempt is its own ``start_run`` operation (invoke data ``attempt``), so
a retried 429 leaves one ``fail`` per refusal and one final outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from chaos.record.history import History, Outcome, Record
from chaos.record.vocabulary import OP_RUN_STATUS, OP_START_RUN, RECORDED_EVENTS, TERMINAL
from chaos.seeds import WORKLOAD, stream
from chaos.sut.base import RunClient, RunRejected, RunRequest, StreamEvent
from chaos.wait import WaitTimeout, eventually
from chaos.workload.gates import CapPolicy, SlotGate, UserGate

RunEnd = Literal["done", "error", "rejected", "broken", "cut", "timeout", "cancelled"]


@dataclass(frozen=True)
class CutPlan:
    """Close the stream on purpose: once ``after_event`` arrived, or ``after_s`` past the invoke.

    Whichever comes first.  The target should then end the run ``cancelled``
    with stop_reason ``client disconnected``.
    """

    after_event: str | None = None
    after_s: float | None = None

    def __post_init__(self) -> None:
        if self.after_event is None and self.after_s is None:
            raise ValueError("a CutPlan needs after_event or after_s")
        if self.after_s is not None and self.after_s < 0:
            raise ValueError(f"after_s must be >= 0, got {self.after_s}")


@dataclass(frozen=True)
class RunResult:
    """What the driver learned about one run (its final attempt)."""

    agent_id: str
    user_id: str | None
    outcome: Outcome
    end: RunEnd
    latency_s: float  # invoke -> completion of the final attempt, queue wait included
    attempts: int = 1
    run_id: str | None = None
    replica_id: str | None = None
    stop_reason: str | None = None
    error: str | None = None
    http_status: int | None = None
    code: str | None = None
    polled: Mapping[str, Any] | None = None  # the status poll's last answer, if one ran

    @property
    def completed(self) -> bool:
        return self.end == "done"


class _Cut(Exception):
    """Raised inside the stream loop when the cut plan's event arrived."""


@dataclass(frozen=True)
class _Ending:
    """How one attempt's stream ended, before it is written down."""

    outcome: Outcome
    end: RunEnd
    stop_reason: str | None = None
    error: str | None = None
    status: int | None = None
    code: str | None = None
    flags: Mapping[str, bool] = field(default_factory=dict)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


@dataclass
class _StreamState:
    events: list[dict[str, Any]] = field(default_factory=list)
    run_id: str | None = None
    replica_id: str | None = None
    terminal: StreamEvent | None = None

    def see(self, ev: StreamEvent) -> None:
        if ev.type in RECORDED_EVENTS:
            self.events.append({"type": ev.type, "mono": ev.mono})
        run_id = ev.data.get("run_id")
        if isinstance(run_id, str) and self.run_id is None:
            self.run_id = run_id
        replica = ev.data.get("replica_id")
        if isinstance(replica, str):
            self.replica_id = replica
        if ev.type in ("done", "error"):
            self.terminal = ev


class Driver:
    """Starts runs through one :class:`RunClient` and records them into one :class:`History`.

    ``via`` names where the client points ("lb" or a replica id) for the
    history.  ``launch_slots`` bounds open streams; ``policy`` decides the
    per-user gate and the retry of quota refusals.  Every run is bounded by
    ``run_timeout_s`` (queue wait included: a queued POST has no headers yet)
    and every status poll by ``poll_timeout_s``.
    """

    def __init__(
        self,
        client: RunClient,
        history: History,
        *,
        via: str = "lb",
        policy: CapPolicy | None = None,
        launch_slots: int = 64,
        run_timeout_s: float = 120.0,
        poll_timeout_s: float = 30.0,
        poll_interval_s: float = 0.5,
        name: str = "driver",
        seed: int | None = None,
    ) -> None:
        self.client = client
        self.history = history
        self.via = via
        self.policy = policy if policy is not None else CapPolicy()
        self.launch = SlotGate(launch_slots, name="launch")
        self.users = UserGate(self.policy.gate_cap)
        self.run_timeout_s = run_timeout_s
        self.poll_timeout_s = poll_timeout_s
        self.poll_interval_s = poll_interval_s
        self.name = name
        # The "workload" stream of the test's seed: independent of the fault schedule's
        # and chaos_rng's "faults" stream, which come from the same seed.
        self._rng = stream(history.seed, WORKLOAD) if seed is None else random.Random(seed)
        self._seq = itertools.count(1)

    @property
    def run_bound_s(self) -> float:
        """The longest one run can take once it holds its slots (all attempts, backoff, poll)."""
        retry, lag = self.policy.retry, self.policy.lag_retry
        attempts = retry.attempts + (lag.attempts - 1 if self.policy.release_lag_s > 0 else 0)
        backoff = retry.worst_case_s() + (lag.worst_case_s() if self.policy.release_lag_s else 0)
        return attempts * self.run_timeout_s + backoff + self.poll_timeout_s

    async def run(
        self,
        req: RunRequest,
        *,
        cut: CutPlan | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> RunResult:
        """Start one run and return once its outcome is known (or given up on, recorded)."""
        (result,) = await self.run_group([req], cuts=[cut], tags=tags)
        return result

    async def run_group(
        self,
        reqs: Sequence[RunRequest],
        *,
        cuts: Sequence[CutPlan | None] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> list[RunResult]:
        """Start runs that belong together (a circuit) at once, holding all their slots as a unit.

        All requests must share one user id, since they share that user's gate.
        """
        if not reqs:
            return []
        users = {r.user_id for r in reqs}
        if len(users) != 1:
            raise ValueError(f"a run group must share one user id, got {sorted(map(str, users))}")
        plans = list(cuts) if cuts is not None else [None] * len(reqs)
        if len(plans) != len(reqs):
            raise ValueError("cuts must match reqs one to one")
        # Order matters: the user's gate first, then a launch slot, so a run
        # waiting on its user never sits on a launch slot others could use.
        async with self.users.hold(reqs[0].user_id, len(reqs)), self.launch.hold(len(reqs)):
            return list(
                await asyncio.gather(
                    *(
                        self._run_with_retries(r, c, dict(tags or {}))
                        for r, c in zip(reqs, plans, strict=True)
                    )
                )
            )

    # -- one run -----------------------------------------------------------
    async def _run_with_retries(
        self, req: RunRequest, cut: CutPlan | None, tags: dict[str, Any]
    ) -> RunResult:
        retry, lag_retry = self.policy.retry, self.policy.lag_retry
        attempt = lag_attempts = 0
        while True:
            attempt += 1
            sent = time.monotonic()
            result = await self._attempt(req, attempt, cut, tags)
            if result.end != "rejected":
                return result
            lagging = self.policy.is_release_lag(
                result.code,
                self.users.released_since(req.user_id, sent - self.policy.release_lag_s),
            )
            if lagging and lag_retry.should_retry(result.code, lag_attempts + 1):
                lag_attempts += 1
                delay = lag_retry.delay(lag_attempts, self._rng)
            elif retry.should_retry(result.code, attempt - lag_attempts):
                delay = retry.delay(attempt - lag_attempts, self._rng)
            else:
                return result
            # Backoff between refused tries: pacing on purpose, not a wait for a condition.
            await asyncio.sleep(delay)

    async def _attempt(
        self, req: RunRequest, attempt: int, cut: CutPlan | None, tags: dict[str, Any]
    ) -> RunResult:
        inv = self.history.invoke(
            OP_START_RUN,
            f"{self.name}-{next(self._seq)}",
            key=req.agent_id,
            user_id=req.user_id,
            agent=req.agent,
            via=self.via,
            attempt=attempt,
            **tags,
        )
        state = _StreamState()
        try:
            ending = await self._read_stream(req, cut, state)
        except asyncio.CancelledError:
            # The scenario is tearing the workload down: the stream is closed,
            # so the run is cancelled on the target; say so, then go.
            why = "driver cancelled; stream closed"
            flags = {"cut": True, "cancelled": True}
            self._finish(
                inv, req, attempt, state, _Ending("info", "cancelled", error=why, flags=flags)
            )
            raise
        result = self._finish(inv, req, attempt, state, ending)
        if ending.outcome == "info":
            return await self._poll(result, req, tags)
        return result

    async def _read_stream(
        self, req: RunRequest, cut: CutPlan | None, state: _StreamState
    ) -> _Ending:
        """Read the stream to its end and say how it ended; never raises but for cancellation."""
        limit, limit_is_cut = self._deadline(cut)
        deadline = asyncio.timeout(limit)
        stream: AsyncIterator[StreamEvent] | None = None
        try:
            try:
                async with deadline:
                    # Inside the try: a client may refuse when called, not only when iterated.
                    stream = self.client.start_run(req)
                    async for ev in stream:
                        state.see(ev)
                        if state.terminal is not None:
                            break
                        if cut is not None and cut.after_event == ev.type:
                            raise _Cut
            finally:
                if stream is not None:
                    await _close(stream)
        except RunRejected as exc:
            rej = exc.rejection
            return _Ending(
                "fail", "rejected", status=rej.status, code=rej.code, error=rej.body[:500]
            )
        except _Cut:
            why = f"driver cut the stream after event {cut.after_event if cut else '?'}"
            return _Ending("info", "cut", error=why, flags={"cut": True})
        except TimeoutError as exc:
            if not deadline.expired():  # the client's own timeout, not ours: the stream broke
                return _Ending("info", "broken", error=_describe(exc))
            if limit_is_cut:
                why = f"driver cut the stream after {limit:.1f}s"
                return _Ending("info", "cut", error=why, flags={"cut": True})
            why = f"no done/error within {limit:.1f}s; driver closed the stream"
            return _Ending("info", "timeout", error=why, flags={"cut": True, "timeout": True})
        except Exception as exc:
            return _Ending("info", "broken", error=_describe(exc))

        if state.terminal is None:
            return _Ending("info", "broken", error="stream ended without done/error")
        if state.terminal.type == "done":
            stop = state.terminal.data.get("stop_reason")
            return _Ending("ok", "done", stop_reason=None if stop is None else str(stop))
        err = state.terminal.data.get("error")
        return _Ending("ok", "error", error=None if err is None else str(err)[:500])

    def _deadline(self, cut: CutPlan | None) -> tuple[float, bool]:
        """The stream's time limit and whether reaching it is a planned cut (vs. a timeout)."""
        if cut is not None and cut.after_s is not None and cut.after_s < self.run_timeout_s:
            return cut.after_s, True
        return self.run_timeout_s, False

    def _finish(
        self,
        inv: Record,
        req: RunRequest,
        attempt: int,
        state: _StreamState,
        ending: _Ending,
    ) -> RunResult:
        """Write the attempt's completion record (chaos.record.vocabulary); build its result."""
        data: dict[str, Any] = {"end": ending.end, "events": state.events}
        if ending.outcome == "fail":
            data.update(status=ending.status, code=ending.code, error=ending.error)
        elif ending.outcome == "ok":
            data.update(
                run_id=state.run_id, replica_id=state.replica_id, stop_reason=ending.stop_reason
            )
            if ending.error is not None:
                data["error"] = ending.error
        else:
            data.update(run_id=state.run_id, error=ending.error, cut=False)
            data.update(ending.flags)
        done = self.history.complete(inv, ending.outcome, **data)
        return RunResult(
            agent_id=req.agent_id,
            user_id=req.user_id,
            outcome=ending.outcome,
            end=ending.end,
            latency_s=done.mono - inv.mono,
            attempts=attempt,
            run_id=state.run_id,
            replica_id=state.replica_id,
            stop_reason=ending.stop_reason,
            error=ending.error,
            http_status=ending.status,
            code=ending.code,
        )

    # -- status poll after a broken stream ---------------------------------
    async def _poll(self, info: RunResult, req: RunRequest, tags: dict[str, Any]) -> RunResult:
        """Ask the target how the run ended, until terminal, "unknown" or the poll deadline.

        Recorded as a ``run_status`` operation: ``ok`` with the terminal answer
        (``found=False`` when the target never heard of the agent id), ``info``
        with the last answer when the run was still not terminal in time.
        """
        inv = self.history.invoke(
            OP_RUN_STATUS, f"{self.name}-poll", key=req.agent_id, reason=info.end, **tags
        )
        last: dict[str, Any] = {}
        polls = 0

        async def probe() -> bool:
            nonlocal last, polls
            polls += 1
            answer = await self.client.status(req.agent_id)
            last = {"found": False} if answer is None else {"found": True, **answer}
            return answer is None or answer.get("status") in TERMINAL

        try:
            await eventually(
                probe,
                what=f"a terminal status for {req.agent_id}",
                timeout=self.poll_timeout_s,
                interval=self.poll_interval_s,
            )
        except asyncio.CancelledError:
            self.history.complete(inv, "info", polls=polls, error="driver cancelled", **_slim(last))
            raise
        except WaitTimeout as exc:
            self.history.complete(inv, "info", polls=polls, error=str(exc)[:500], **_slim(last))
        else:
            self.history.complete(inv, "ok", polls=polls, **_slim(last))
        return _with_poll(info, last)


_STATUS_FIELDS = ("found", "status", "stop_reason", "error", "run_id", "replica_id", "live")


def _slim(answer: Mapping[str, Any]) -> dict[str, Any]:
    """The status fields a checker needs (the full answer carries usage and timestamps)."""
    return {k: answer[k] for k in _STATUS_FIELDS if k in answer}


def _with_poll(info: RunResult, last: Mapping[str, Any]) -> RunResult:
    run_id = last.get("run_id")
    replica = last.get("replica_id")
    return RunResult(
        agent_id=info.agent_id,
        user_id=info.user_id,
        outcome=info.outcome,
        end=info.end,
        latency_s=info.latency_s,
        attempts=info.attempts,
        run_id=info.run_id or (run_id if isinstance(run_id, str) else None),
        replica_id=info.replica_id or (replica if isinstance(replica, str) else None),
        stop_reason=info.stop_reason,
        error=info.error,
        polled=dict(last),
    )


#: A close that hangs (a dead peer) must not hold the run forever.
CLOSE_TIMEOUT_S = 5.0


async def _close(stream: AsyncIterator[StreamEvent]) -> None:
    """Close the stream (an async generator has ``aclose``); a failing close changes nothing."""
    aclose = getattr(stream, "aclose", None)
    if aclose is None:
        return
    with contextlib.suppress(Exception):
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await aclose()
