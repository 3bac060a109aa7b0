"""What one wave asks of the target: the single-agent and over-cap shapes.

A workload turns a :class:`WaveContext` (fresh ids, the wave's scale) into
runs through the :class:`~chaos.workload.driver.Driver`.  It knows nothing
of time or phases; :mod:`chaos.workload.phases` repeats it.  Circuits live in
:mod:`chaos.workload.circuits`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from chaos.sut.base import RunRequest
from chaos.workload.driver import CutPlan, Driver, RunResult


@dataclass(frozen=True)
class WaveContext:
    """One wave's identity. ``prefix`` already holds the test prefix, phase and wave.

    Every id a wave creates starts with ``prefix``, so no two waves (or tests)
    share an agent or user id, and a checker can select a wave's rows.
    """

    prefix: str
    phase: str
    phase_index: int
    wave: int
    scale: int

    @property
    def label(self) -> str:
        return f"p{self.phase_index}w{self.wave}"

    @property
    def tags(self) -> dict[str, Any]:
        """Added to every invoke, so summaries can be rebuilt from the history alone."""
        return {"phase": self.phase, "wave": self.label}

    def user_id(self, k: int) -> str:
        return f"{self.prefix}-u{k}"

    def agent_id(self, n: int) -> str:
        return f"{self.prefix}-a{n}"


class Workload(Protocol):
    """A wave shape. ``runs_per_unit`` is how many runs one unit of scale starts (1 or 3)."""

    @property
    def name(self) -> str: ...

    @property
    def runs_per_unit(self) -> int: ...

    async def wave(self, driver: Driver, ctx: WaveContext) -> list[RunResult]: ...


UnitRun = Coroutine[Any, Any, list[RunResult]]


async def run_all(units: Iterable[UnitRun]) -> list[RunResult]:
    """Run units concurrently; if one raises, the others are cancelled (and record that)."""
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(u) for u in units]
    return [r for t in tasks for r in t.result()]


@dataclass(frozen=True)
class SingleAgentWorkload:
    """``scale`` runs of one agent, spread over users ``runs_per_user`` at a time.

    Run length is the target's (mock latency).  ``runs_per_user=None`` uses the
    cap the driver's policy declares (1 when the target has no cap), so a
    gated driver never queues on its own per-user gate.  With ``cut`` set,
    every ``cut_every``-th run is closed on purpose (recorded ``cut=True``).
    """

    agent: str = "chaos"
    prompt: str = "loomchaos single-agent run"
    runs_per_user: int | None = None
    cut: CutPlan | None = None
    cut_every: int = 0
    metadata: Mapping[str, Any] | None = None
    name: str = "single"
    runs_per_unit: int = 1

    def requests(self, driver: Driver, ctx: WaveContext) -> list[RunRequest]:
        per_user = self.runs_per_user or driver.policy.per_user_cap or 1
        return [
            RunRequest(
                agent=self.agent,
                agent_id=ctx.agent_id(n),
                prompt=self.prompt,
                user_id=ctx.user_id(n // per_user),
                metadata=dict(self.metadata or {}),
            )
            for n in range(ctx.scale)
        ]

    def cut_for(self, n: int) -> CutPlan | None:
        if self.cut is None or self.cut_every <= 0:
            return None
        return self.cut if n % self.cut_every == 0 else None

    async def wave(self, driver: Driver, ctx: WaveContext) -> list[RunResult]:
        reqs = self.requests(driver, ctx)
        return await run_all(
            _one(driver.run(r, cut=self.cut_for(n), tags=ctx.tags)) for n, r in enumerate(reqs)
        )


async def _one(aw: Awaitable[RunResult]) -> list[RunResult]:
    return [await aw]


@dataclass(frozen=True)
class OverCapWorkload:
    """One user asks for ``scale`` runs at once, more than the cap, on purpose.

    The driver must send anyway (``CapPolicy.send_anyway``): a gated driver
    would only queue them and never test the target's quota.  Expect
    ``fail`` records with code ``per_user_quota_exhausted``, retried per the
    policy, and never more than the cap running for that user.
    """

    agent: str = "chaos"
    prompt: str = "loomchaos over-cap run"
    name: str = "over_cap"
    runs_per_unit: int = 1

    def check(self, driver: Driver, scale: int) -> None:
        cap = driver.policy.per_user_cap
        if driver.policy.gate:
            raise ValueError(
                "over_cap needs CapPolicy.send_anyway: a gated driver never exceeds it"
            )
        if cap <= 0:
            raise ValueError("over_cap needs the target's per-user cap (> 0) in the policy")
        if scale <= cap:
            raise ValueError(f"over_cap scale {scale} must exceed the per-user cap {cap}")

    async def wave(self, driver: Driver, ctx: WaveContext) -> list[RunResult]:
        self.check(driver, ctx.scale)
        user = ctx.user_id(0)
        reqs = [
            RunRequest(agent=self.agent, agent_id=ctx.agent_id(n), prompt=self.prompt, user_id=user)
            for n in range(ctx.scale)
        ]
        return await run_all(_one(driver.run(r, tags=ctx.tags)) for r in reqs)
