"""The three-agent circuit: researcher, editor and evaluator talking over channels.

A circuit ``c<N>`` is three runs for one user, started together, whose prompt
names ``c<N>`` (the mock models find it with ``\\bc\\d+\\b``).  Its channels
``research-done/c<N>`` and ``editing-done/c<N>`` are declared in the target's
config at boot, so circuit ids come from a fixed pool.  Those channels are
global queues that outlive a wave: a message left behind by an earlier
circuit (one that was killed mid-way, say) would be read by the next circuit
that reuses the id, and the editor would edit the wrong research.  So before
an id is reused, the pool proves its queues empty (or drains them) through an
injected callable, and records what it found.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

from chaos.errors import SetupError
from chaos.record.history import History
from chaos.record.vocabulary import OP_CIRCUIT_DRAIN
from chaos.sut.base import RunRequest
from chaos.workload.driver import Driver, RunResult
from chaos.workload.shapes import WaveContext, run_all

ROLES: tuple[str, str, str] = ("researcher", "editor", "evaluator")
DEFAULT_QUESTION = "What limits the throughput of a replicated job queue?"
_CIRCUIT_TOKEN = re.compile(r"\bc\d+\b")


@dataclass(frozen=True)
class DrainResult:
    """What the drain callable found: messages removed, and whether both queues are now empty."""

    circuit: int
    drained: int
    empty: bool
    detail: str = ""


#: Given a circuit number, empty its two channel queues and prove it (needs the target).
Drain = Callable[[int], Awaitable[DrainResult]]


def circuit_prompt(circuit: int, question: str = DEFAULT_QUESTION) -> str:
    if _CIRCUIT_TOKEN.search(question):
        raise ValueError(f"question {question!r} names a circuit id; the mock would read it")
    return f"Your circuit_id is c{circuit}. Question: {question}"


def circuit_requests(
    circuit: int,
    user_id: str,
    prefix: str,
    *,
    question: str = DEFAULT_QUESTION,
    agents: Mapping[str, str] | None = None,
) -> list[RunRequest]:
    """The circuit's three runs: ids ``<role>-c<N>-<prefix>``, one user, one prompt.

    ``agents`` maps a role to the agent name declared in the target's config
    (default: the role itself).
    """
    prompt = circuit_prompt(circuit, question)
    names = dict(agents or {})
    return [
        RunRequest(
            agent=names.get(role, role),
            agent_id=f"{role}-c{circuit}-{prefix}",
            prompt=prompt,
            user_id=user_id,
        )
        for role in ROLES
    ]


class CircuitPool:
    """The circuit ids declared at boot, leased to waves and proven clean before reuse.

    ``fresh=True`` says the cluster was booted for this pool, so an id's first
    lease needs no drain; with a shared cluster pass ``fresh=False`` and every
    lease is proven.  An id whose queues cannot be proven empty is quarantined
    (recorded) and never leased again.
    """

    def __init__(
        self,
        ids: Iterable[int],
        drain: Drain,
        history: History,
        *,
        fresh: bool = True,
        drain_timeout_s: float = 30.0,
    ) -> None:
        self._free: deque[int] = deque(dict.fromkeys(ids))
        if not self._free:
            raise ValueError("a circuit pool needs at least one id")
        self.size = len(self._free)
        self.history = history
        self.fresh = fresh
        self.drain_timeout_s = drain_timeout_s
        self._drain = drain
        self._used: set[int] = set()
        self._leased: set[int] = set()
        self.quarantined: set[int] = set()
        self._lock = asyncio.Lock()

    async def lease(self, n: int) -> list[int]:
        """Take ``n`` ids, least recently used first; raises SetupError if the pool is short."""
        async with self._lock:
            out: list[int] = []
            for _ in range(len(self._free)):  # every free id is examined at most once
                if len(out) == n:
                    break
                cid = self._free.popleft()
                needs_proof = cid in self._used or not self.fresh
                if needs_proof and not await self._prove_empty(cid):
                    self.quarantined.add(cid)
                    continue
                out.append(cid)
            if len(out) < n:
                self._free.extendleft(reversed(out))
                raise SetupError(
                    f"circuit pool short: a wave needs {n} circuit ids, {len(out)} usable "
                    f"(size {self.size}, leased {len(self._leased)}, quarantined "
                    f"{sorted(self.quarantined)}); declare more circuit channels at boot"
                )
            self._leased.update(out)
            self._used.update(out)
            return out

    def release(self, ids: Iterable[int]) -> None:
        for cid in ids:
            if cid in self._leased:
                self._leased.discard(cid)
                self._free.append(cid)

    @asynccontextmanager
    async def leased(self, n: int) -> AsyncIterator[list[int]]:
        ids = await self.lease(n)
        try:
            yield ids
        finally:
            self.release(ids)

    async def _prove_empty(self, cid: int) -> bool:
        """Drain the id's queues, record what was found; False when emptiness is not proven."""
        reused = cid in self._used
        try:
            async with asyncio.timeout(self.drain_timeout_s):
                found = await self._drain(cid)
        except Exception as exc:
            self.history.note(
                OP_CIRCUIT_DRAIN,
                circuit=cid,
                reused=reused,
                empty=False,
                error=f"{type(exc).__name__}: {exc}"[:500],
            )
            return False
        self.history.note(
            OP_CIRCUIT_DRAIN,
            circuit=cid,
            reused=reused,
            drained=found.drained,
            empty=found.empty,
            detail=found.detail,
        )
        return found.empty


@dataclass(frozen=True)
class CircuitWorkload:
    """``scale`` circuits per wave, ``circuits_per_user`` of them sharing a user.

    Each circuit takes three slots of its user's gate at once, so a gated
    driver needs a per-user cap of at least 3 (and ``3 * circuits_per_user``
    to run a user's circuits side by side).
    """

    pool: CircuitPool
    circuits_per_user: int = 1
    question: str = DEFAULT_QUESTION
    agents: Mapping[str, str] | None = None
    name: str = "circuit"
    runs_per_unit: int = 3

    async def wave(self, driver: Driver, ctx: WaveContext) -> list[RunResult]:
        async with self.pool.leased(ctx.scale) as ids:
            return await run_all(self._circuit(driver, ctx, i, cid) for i, cid in enumerate(ids))

    async def _circuit(self, driver: Driver, ctx: WaveContext, i: int, cid: int) -> list[RunResult]:
        user = ctx.user_id(i // max(1, self.circuits_per_user))
        reqs = circuit_requests(cid, user, ctx.prefix, question=self.question, agents=self.agents)
        return await driver.run_group(reqs, tags={**ctx.tags, "circuit": f"c{cid}"})
