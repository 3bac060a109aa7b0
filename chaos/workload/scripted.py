"""A scripted :class:`~chaos.sut.base.RunClient` for unit-testing the driver.

This is a test double for *our* driver, not a stand-in for any target: it
knows nothing of loomcycle and does only what each test scripts (these
events, this refusal, a break here, these status answers).  It also measures
what the driver did to it: open streams per user (current and peak), streams
closed before their terminal event, and how many starts it saw.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from chaos.record.vocabulary import CancelClass
from chaos.sut.base import (
    CancelResult,
    Health,
    Rejection,
    RunRejected,
    RunRequest,
    StreamEvent,
)

After = Literal["end", "hang", "break"]


class StreamBroke(ConnectionError):
    """What a scripted ``break`` raises mid-stream (a reset connection)."""


@dataclass(frozen=True)
class Script:
    """One attempt's behaviour.

    ``events`` are yielded in order, each after ``delay_s`` (the simulated run
    length, spread over the events).  Then ``after`` decides: ``end`` stops
    the stream, ``hang`` never yields again, ``break`` raises
    :class:`StreamBroke`.  ``reject`` refuses the run before any event.
    """

    events: Sequence[tuple[str, Mapping[str, Any]]] = ()
    delay_s: float = 0.0
    after: After = "end"
    reject: Rejection | None = None

    @classmethod
    def done(cls, run_id: str = "r_1", *, delay_s: float = 0.0, **extra: Any) -> Script:
        events = [*_started(run_id, extra), _ev("done", stop_reason="end_turn")]
        return cls(events=events, delay_s=delay_s)

    @classmethod
    def error(cls, run_id: str = "r_1", message: str = "boom", *, delay_s: float = 0.0) -> Script:
        events = [*_started(run_id, {}), _ev("error", error=message)]
        return cls(events=events, delay_s=delay_s)

    @classmethod
    def rejected(cls, status: int = 429, code: str | None = "per_user_quota_exhausted") -> Script:
        body = "{}" if code is None else f'{{"code":"{code}"}}'
        return cls(reject=Rejection(status=status, code=code, body=body))

    @classmethod
    def broken(cls, run_id: str = "r_1", *, delay_s: float = 0.0) -> Script:
        return cls(events=_started(run_id, {}), delay_s=delay_s, after="break")

    @classmethod
    def hanging(cls, run_id: str = "r_1") -> Script:
        return cls(events=_started(run_id, {}), after="hang")


def _ev(type_: str, **data: Any) -> tuple[str, Mapping[str, Any]]:
    return (type_, data)


def _started(run_id: str, extra: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    return [_ev("session", session_id="s_1"), _ev("agent", run_id=run_id, **extra)]


ScriptFor = Callable[[RunRequest, int], Script]


@dataclass
class ScriptedRunClient:
    """Answers ``start_run`` from ``script(req, attempt)``; ``status`` from ``statuses``.

    ``statuses[agent_id]`` is the sequence of answers to successive status
    calls (the last one repeats; ``None`` means 404).  Unknown ids answer None.
    """

    script: ScriptFor
    statuses: dict[str, list[Mapping[str, Any] | None]] = field(default_factory=dict)
    base_url: str = "scripted://"
    open_by_user: Counter[str] = field(default_factory=Counter)
    peak_by_user: Counter[str] = field(default_factory=Counter)
    open_total: int = 0
    peak_total: int = 0
    starts: Counter[str] = field(default_factory=Counter)
    closed_early: list[str] = field(default_factory=list)
    status_calls: Counter[str] = field(default_factory=Counter)

    def start_run(self, req: RunRequest) -> AsyncIterator[StreamEvent]:
        return self._stream(req)

    async def _stream(self, req: RunRequest) -> AsyncIterator[StreamEvent]:
        self.starts[req.agent_id] += 1
        plan = self.script(req, self.starts[req.agent_id])
        if plan.reject is not None:
            raise RunRejected(plan.reject)
        user = req.user_id or ""
        self._opened(user)
        finished = False
        try:
            for type_, data in plan.events:
                if plan.delay_s:
                    await asyncio.sleep(plan.delay_s)  # simulated run length
                # Set before yielding: the driver closes us right after a terminal event.
                finished = type_ in ("done", "error")
                yield StreamEvent(type=type_, data=data, mono=time.monotonic())
            if plan.after == "break":
                raise StreamBroke("connection reset by peer")
            if plan.after == "hang":
                await asyncio.Event().wait()  # never set: the target went silent
        finally:
            if not finished:
                self.closed_early.append(req.agent_id)
            self.open_by_user[user] -= 1
            self.open_total -= 1

    def _opened(self, user: str) -> None:
        self.open_by_user[user] += 1
        self.peak_by_user[user] = max(self.peak_by_user[user], self.open_by_user[user])
        self.open_total += 1
        self.peak_total = max(self.peak_total, self.open_total)

    async def status(self, agent_id: str) -> Mapping[str, Any] | None:
        self.status_calls[agent_id] += 1
        answers = self.statuses.get(agent_id) or [None]
        return answers[min(self.status_calls[agent_id], len(answers)) - 1]

    async def cancel(self, agent_id: str, reason: str | None = None) -> CancelResult:
        cls: CancelClass = "unknown"
        return CancelResult(http_status=501, body={}, classification=cls, latency_s=0.0)

    async def health(self) -> Health:
        return Health(ok=True, replica_id=None, version=None, replica_ids=None)

    async def aclose(self) -> None:
        return None
