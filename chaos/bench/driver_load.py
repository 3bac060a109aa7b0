"""The driver benchmark's two measured phases, against a running load sink.

* :func:`measure_cpu`: ``runs`` short runs with ``in_flight`` of them open at
  a time; the driver process's CPU (``time.process_time``: user+sys, all its
  threads) per 1,000 completed runs, with loop lag over the same stretch.
* :func:`ramp_streams`: open streams in cumulative steps and hold them; a
  step counts as held when every stream of it has seen its ``agent`` event
  and none ended during the hold window.  Loop lag is sampled both while a
  step's streams are being opened and while they are only held.

Both use the real :class:`~chaos.workload.driver.Driver` and
:class:`~chaos.sut.loomcycle.client.LoomcycleClient`; the only addition is
:class:`CountingClient`, one generator hop per event that counts open streams.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import math
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from chaos.bench.process import own_rss_mib
from chaos.bench.stats import Spread
from chaos.record.history import History
from chaos.sut.base import CancelResult, Health, RunRequest, StreamEvent
from chaos.sut.loomcycle.client import LoomcycleClient
from chaos.wait import WaitTimeout, eventually
from chaos.workload.driver import Driver, RunResult
from chaos.workload.lag import LagSampler

LAG_INTERVAL_S = 0.02
#: Connections the client pool may open beyond the streams a phase holds (status polls).
POOL_MARGIN = 100


class CountingClient:
    """A :class:`~chaos.sut.base.RunClient` counting streams open past their ``agent`` event.

    Given several clients (``--pools`` > 1, an experiment, not the suite's
    set-up) it deals streams to them in turn, so each httpx pool holds
    1/k of them; everything else goes to the first.
    """

    def __init__(self, inners: Sequence[LoomcycleClient]) -> None:
        if not inners:
            raise ValueError("need at least one client")
        self.inners = list(inners)
        self.inner = self.inners[0]
        self.base_url = self.inner.base_url
        self.open_streams = 0
        self.peak_open = 0
        self._turn = itertools.cycle(self.inners)

    @classmethod
    def for_streams(cls, base_url: str, streams: int, pools: int = 1) -> CountingClient:
        """``pools`` clients whose pools together allow ``streams`` connections, plus margin."""
        if pools < 1:
            raise ValueError(f"pools must be >= 1, got {pools}")
        per_pool = math.ceil(streams / pools) + POOL_MARGIN
        return cls(
            [LoomcycleClient(base_url, None, max_connections=per_pool) for _ in range(pools)]
        )

    async def start_run(self, req: RunRequest) -> AsyncIterator[StreamEvent]:
        opened = False
        try:
            # start_run is an async generator (annotated as an iterator): close it with us.
            events = cast(AsyncGenerator[StreamEvent, None], next(self._turn).start_run(req))
            async with contextlib.aclosing(events):
                async for ev in events:
                    if ev.type == "agent" and not opened:
                        opened = True
                        self.open_streams += 1
                        self.peak_open = max(self.peak_open, self.open_streams)
                    yield ev
        finally:
            if opened:
                self.open_streams -= 1

    async def status(self, agent_id: str) -> Mapping[str, Any] | None:
        return await self.inner.status(agent_id)

    async def cancel(self, agent_id: str, reason: str | None = None) -> CancelResult:
        return await self.inner.cancel(agent_id, reason)

    async def health(self) -> Health:
        return await self.inner.health()

    async def aclose(self) -> None:
        for inner in self.inners:
            await inner.aclose()


def _driver(client: CountingClient, slots: int, run_timeout_s: float, name: str) -> Driver:
    # A broken stream makes the driver poll the run's status; the sink keeps
    # no runs and answers 404 at once, and a short poll bound keeps a failing
    # ramp step from stalling on polls that cannot succeed (no fds left).
    return Driver(
        client,
        History(meta={"bench": name}),
        via="sink",
        launch_slots=slots,
        run_timeout_s=run_timeout_s,
        poll_timeout_s=1.0,
        poll_interval_s=0.2,
        name=name,
    )


def _request(agent_id: str, hold_ms: float) -> RunRequest:
    return RunRequest(agent="bench", agent_id=agent_id, prompt="x", metadata={"hold_ms": hold_ms})


def describe_failures(results: Sequence[RunResult], top: int = 3) -> str:
    """The most common non-``done`` endings, e.g. ``"12x broken: ConnectError: ..."``."""
    counts = collections.Counter(
        f"{r.end}: {(r.error or r.code or '')[:90]}" for r in results if not r.completed
    )
    return "; ".join(f"{n}x {what}" for what, n in counts.most_common(top)) or "none"


# -- CPU per 1,000 runs --------------------------------------------------------


@dataclass(frozen=True)
class CpuLevel:
    in_flight: int
    runs: int
    completed: int
    cpu_s: float
    wall_s: float
    sink_cpu_s: float
    lag: Spread
    latency: Spread
    failures: str = "none"

    @property
    def cpu_per_1000_s(self) -> float:
        return self.cpu_s / self.completed * 1000 if self.completed else float("nan")

    @property
    def runs_per_s(self) -> float:
        return self.completed / self.wall_s if self.wall_s > 0 else 0.0


async def measure_cpu(
    base_url: str,
    *,
    in_flight: int,
    runs: int,
    hold_ms: float,
    sink_cpu: Callable[[], float],
    timeout_s: float = 300.0,
    pools: int = 1,
) -> CpuLevel:
    """``runs`` runs, ``in_flight`` at a time (one worker coroutine per slot)."""
    if in_flight < 1 or runs < in_flight:
        raise ValueError(f"need runs >= in_flight >= 1, got runs={runs} in_flight={in_flight}")
    client = CountingClient.for_streams(base_url, in_flight, pools)
    driver = _driver(client, in_flight, run_timeout_s=60.0, name=f"cpu{in_flight}")
    results: list[RunResult] = []

    async def worker(w: int, count: int) -> None:
        for i in range(count):
            results.append(await driver.run(_request(f"cpu{in_flight}-{w}-{i}", hold_ms)))

    shares = [runs // in_flight + (1 if w < runs % in_flight else 0) for w in range(in_flight)]
    try:
        sink0, cpu0, wall0 = sink_cpu(), time.process_time(), time.monotonic()
        async with LagSampler(driver.history, interval_s=LAG_INTERVAL_S) as lag:
            async with asyncio.timeout(timeout_s):
                await asyncio.gather(*(worker(w, n) for w, n in enumerate(shares)))
        cpu, wall, sink = time.process_time() - cpu0, time.monotonic() - wall0, sink_cpu() - sink0
    finally:
        await client.aclose()
    completed = [r for r in results if r.completed]
    return CpuLevel(
        in_flight=in_flight,
        runs=runs,
        completed=len(completed),
        cpu_s=cpu,
        wall_s=wall,
        sink_cpu_s=sink,
        lag=Spread.of(lag.samples),
        latency=Spread.of([r.latency_s for r in completed]),
        failures=describe_failures(results),
    )


# -- the open-streams ramp ------------------------------------------------------


@dataclass(frozen=True)
class RampStep:
    target: int
    held: bool
    open_streams: int  # counted when the step ended
    open_s: float  # time to open this step's new streams
    open_cpu_s: float  # driver CPU spent opening them
    open_lag: Spread
    hold_lag: Spread
    hold_cpu_s: float  # driver CPU over the hold window (keepalives, lag sampler)
    rss_mib: float
    failure: str | None = None


@dataclass
class Ramp:
    steps: list[RampStep] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)  # steps not tried (time budget)
    drained: int = 0  # streams that ended with done after the release
    drain_failures: str = "none"

    @property
    def highest_held(self) -> RampStep | None:
        held = [s for s in self.steps if s.held]
        return held[-1] if held else None

    @property
    def first_failed(self) -> RampStep | None:
        return next((s for s in self.steps if not s.held), None)


class _RampRun:
    """The ramp's tasks and the counters it waits on (done-callbacks, not scans of 10^4 tasks)."""

    def __init__(self, driver: Driver, client: CountingClient, hold_ms: float) -> None:
        self.driver = driver
        self.client = client
        self.hold_ms = hold_ms
        self.tasks: list[asyncio.Task[RunResult]] = []
        self.ended = 0
        self._ended_event = asyncio.Event()

    def _on_done(self, _task: asyncio.Task[RunResult]) -> None:
        self.ended += 1
        self._ended_event.set()

    def open_more(self, n: int) -> None:
        for _ in range(n):
            agent_id = f"ramp-{len(self.tasks)}"
            task = asyncio.create_task(self.driver.run(_request(agent_id, self.hold_ms)))
            task.add_done_callback(self._on_done)
            self.tasks.append(task)

    async def opened_or_broke(self, target: int, timeout: float) -> None:
        """Wait until ``target`` streams are open, or any stream has ended (the step failed)."""

        async def probe() -> bool:
            return self.client.open_streams >= target or self.ended > 0

        await eventually(
            probe, what=f"{target} open streams", timeout=timeout, interval=LAG_INTERVAL_S
        )

    async def stays_open(self, window_s: float) -> bool:
        """True when no held stream ended during ``window_s`` (the window is the measurement)."""
        self._ended_event.clear()
        if self.ended:
            return False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(window_s):
                await self._ended_event.wait()
        return self.ended == 0

    def finished_results(self) -> list[RunResult]:
        return [
            t.result() for t in self.tasks if t.done() and not t.cancelled() and not t.exception()
        ]


async def _measured(
    what: Callable[[], Awaitable[Any]], history: History
) -> tuple[float, float, list[float]]:
    """Run ``what``; return its wall time, this process's CPU time over it, and the loop lag."""
    cpu0, wall0 = time.process_time(), time.monotonic()
    async with LagSampler(history, interval_s=LAG_INTERVAL_S) as lag:
        await what()
    return time.monotonic() - wall0, time.process_time() - cpu0, list(lag.samples)


async def ramp_streams(
    base_url: str,
    *,
    steps: Sequence[int],
    release: Callable[[], object],
    step_timeout_s: float = 60.0,
    hold_window_s: float = 5.0,
    budget_s: float = 180.0,
    drain_timeout_s: float = 60.0,
    open_batch: int = 250,
    pools: int = 1,
) -> Ramp:
    """Hold ``steps[0]``, then ``steps[1]``, ... streams at once; stop at the first failure.

    ``release`` makes the sink end every held stream (called once, at the end).
    The streams' hold asked of the sink outlasts the whole ramp, so only the
    release (or a failure) ends them.
    """
    if list(steps) != sorted(set(steps)) or not steps or steps[0] < 1:
        raise ValueError(f"steps must be increasing positive counts, got {list(steps)}")
    if open_batch < 1:
        raise ValueError(f"open_batch must be >= 1, got {open_batch}")
    top = steps[-1]
    hold_ms = (budget_s + step_timeout_s + hold_window_s + 60.0) * 1000
    client = CountingClient.for_streams(base_url, top, pools)
    driver = _driver(client, top, run_timeout_s=hold_ms / 1000 + 60.0, name="ramp")
    run = _RampRun(driver, client, hold_ms)
    ramp = Ramp()
    started = time.monotonic()
    finished = False
    try:
        for i, target in enumerate(steps):
            left = budget_s - (time.monotonic() - started)
            if left <= hold_window_s:
                ramp.skipped = list(steps[i:])
                break
            step = await _one_step(
                run, target, min(step_timeout_s, left), hold_window_s, open_batch
            )
            ramp.steps.append(step)
            if not step.held:
                ramp.skipped = list(steps[i + 1 :])
                break
        finished = True
    finally:
        if finished:
            await _drain(run, ramp, release, drain_timeout_s)
        else:  # interrupted (Ctrl-C) or failed: do not wait for a graceful drain
            await _abandon(run)
        await client.aclose()
    return ramp


async def _one_step(
    run: _RampRun, target: int, timeout_s: float, window_s: float, batch: int
) -> RampStep:
    failure: str | None = None

    async def open_step() -> None:
        """Open the step's new streams ``batch`` at a time, each batch open before the next.

        Batches because httpcore's pool rescans every queued request against
        every connection on each enqueue (encode/httpcore#1035): a burst of n
        new streams costs O(n^2) pool work in one loop iteration, which also
        starves every deadline on the loop.  ``batch`` bounds one iteration.
        """
        nonlocal failure
        deadline = time.monotonic() + timeout_s
        for _ in range(math.ceil(max(target - len(run.tasks), 0) / batch)):
            run.open_more(min(batch, target - len(run.tasks)))
            left = deadline - time.monotonic()
            try:
                await run.opened_or_broke(len(run.tasks), max(left, 0.0))
            except WaitTimeout:
                failure = (
                    f"only {run.client.open_streams} of {target} open after {timeout_s:.0f}s "
                    f"(time limit; {run.ended} stream(s) ended)"
                )
                return
            if run.ended:
                return

    open_s, open_cpu, open_lag = await _measured(open_step, run.driver.history)
    if failure is None and run.ended:
        failure = f"{run.ended} stream(s) ended while opening: " + describe_failures(
            run.finished_results()
        )
    hold_lag: list[float] = []
    hold_cpu = 0.0
    if failure is None:
        kept = True

        async def hold() -> None:
            nonlocal kept
            kept = await run.stays_open(window_s)

        _, hold_cpu, hold_lag = await _measured(hold, run.driver.history)
        if not kept:
            failure = f"{run.ended} stream(s) ended while held: " + describe_failures(
                run.finished_results()
            )
    return RampStep(
        target=target,
        held=failure is None,
        open_streams=run.client.open_streams,
        open_s=open_s,
        open_cpu_s=open_cpu,
        open_lag=Spread.of(open_lag),
        hold_lag=Spread.of(hold_lag),
        hold_cpu_s=hold_cpu,
        rss_mib=own_rss_mib(),
        failure=failure,
    )


async def _drain(
    run: _RampRun, ramp: Ramp, release: Callable[[], object], timeout_s: float
) -> None:
    """Let every held stream finish (``done``); cancel what has not within ``timeout_s``."""
    if not run.tasks:
        return
    release()
    _, pending = await asyncio.wait(run.tasks, timeout=timeout_s)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    results = run.finished_results()
    ramp.drained = sum(r.completed for r in results)
    ramp.drain_failures = describe_failures(results)
    if pending:
        ramp.drain_failures += f"; {len(pending)} cancelled after {timeout_s:.0f}s"


#: Closing thousands of cancelled streams takes a moment; an interrupt should not take longer.
ABANDON_TIMEOUT_S = 10.0


async def _abandon(run: _RampRun) -> None:
    """Cancel every run task (the driver closes its stream) and wait briefly for them."""
    for task in run.tasks:
        task.cancel()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(ABANDON_TIMEOUT_S):
            await asyncio.gather(*run.tasks, return_exceptions=True)
