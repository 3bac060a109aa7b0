"""Launch gates and the per-user cap policy.

Two gates bound what the driver asks of the target at once:

* the **launch gate** caps open streams overall, so the suite never opens more
  sockets than the load balancer (or this 2-core machine) can carry and a
  latency measured under load is the target's, not the driver's;
* the **per-user gate** keeps each user at or under the target's
  ``max_concurrent_runs_per_user``, so a 429 ``per_user_quota_exhausted`` in a
  gated workload means the target leaked a quota slot, not that we asked too much.
  One exception, measured on loomcycle: a slot is given back *asynchronously*
  after the run's stream ends (a background goroutine with its own 5 s bound),
  so a client that starts the next run the moment it sees ``done`` can be
  refused for a slot that is still on its way back.  A refusal within
  ``CapPolicy.release_lag_s`` of one of that user's runs ending is therefore
  retried (bounded, recorded as its own attempt); a refusal with no recent
  release, or one that outlasts the retries, stays a finding.

Circuits start three runs that depend on each other (the editor waits for the
researcher's message).  If those three took their slots one by one, a gate
full of editors and evaluators could starve the researchers they wait for.
So a group takes all its slots as one unit: :meth:`SlotGate.hold` with ``n > 1``
acquires under a lock, so at most one group is ever part-way through acquiring
and no two groups can each hold part of what the other needs.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

QUOTA_CODE = "per_user_quota_exhausted"


class SlotGate:
    """A counting gate over :class:`asyncio.Semaphore` that can take several slots at once.

    ``held`` and ``peak`` are kept so tests and reports can show the bound held.
    """

    def __init__(self, slots: int, name: str = "gate") -> None:
        if slots < 1:
            raise ValueError(f"{name}: a gate needs at least one slot, got {slots}")
        self.slots = slots
        self.name = name
        self.held = 0
        self.peak = 0
        self._sem = asyncio.Semaphore(slots)
        self._group_lock = asyncio.Lock()

    @asynccontextmanager
    async def hold(self, n: int = 1) -> AsyncIterator[None]:
        if not 1 <= n <= self.slots:
            raise ValueError(f"{self.name}: cannot hold {n} of {self.slots} slots at once")
        await self._acquire(n)
        self.held += n
        self.peak = max(self.peak, self.held)
        try:
            yield
        finally:
            self.held -= n
            for _ in range(n):
                self._sem.release()

    async def _acquire(self, n: int) -> None:
        if n == 1:
            await self._sem.acquire()
            return
        async with self._group_lock:
            taken = 0
            try:
                while taken < n:
                    await self._sem.acquire()
                    taken += 1
            except BaseException:
                # Cancelled part-way: give back what we took, or the gate shrinks for good.
                for _ in range(taken):
                    self._sem.release()
                raise


class UserGate:
    """One :class:`SlotGate` per user id, each of ``cap`` slots; ``cap == 0`` gates nothing."""

    def __init__(self, cap: int) -> None:
        if cap < 0:
            raise ValueError(f"per-user cap must be >= 0, got {cap}")
        self.cap = cap
        self._gates: dict[str, SlotGate] = {}
        self._last_release: dict[str, float] = {}

    @asynccontextmanager
    async def hold(self, user_id: str | None, n: int = 1) -> AsyncIterator[None]:
        # No user id: the target checks no quota (a per-user quota needs a user id).
        if self.cap == 0 or user_id is None:
            yield
            return
        gate = self._gates.get(user_id)
        if gate is None:
            gate = self._gates[user_id] = SlotGate(self.cap, name=f"user {user_id}")
        try:
            async with gate.hold(n):
                yield
        finally:
            self._last_release[user_id] = time.monotonic()

    def released_since(self, user_id: str | None, since: float) -> bool:
        """Whether one of ``user_id``'s slots was given back at or after ``since`` (monotonic)."""
        if user_id is None:
            return False
        return self._last_release.get(user_id, float("-inf")) >= since

    def peak(self, user_id: str) -> int:
        gate = self._gates.get(user_id)
        return 0 if gate is None else gate.peak

    def forget_idle(self) -> None:
        """Drop idle gates: each wave uses fresh user ids, so memory stays bounded."""
        for uid in [u for u, g in self._gates.items() if g.held == 0]:
            del self._gates[uid]
            self._last_release.pop(uid, None)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries of rejected starts, with exponential backoff and equal jitter.

    ``attempts`` counts every try (1 = never retry).  Only rejections whose
    code is in ``codes`` are retried; everything else is an answer to record.
    """

    attempts: int = 1
    base_s: float = 0.2
    max_s: float = 2.0
    codes: frozenset[str] = field(default_factory=lambda: frozenset({QUOTA_CODE}))

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {self.attempts}")
        if self.base_s < 0 or self.max_s < self.base_s:
            raise ValueError(f"bad backoff {self.base_s}..{self.max_s}")

    def should_retry(self, code: str | None, attempt: int) -> bool:
        return attempt < self.attempts and code is not None and code in self.codes

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Backoff after the ``attempt``-th try: half fixed, half random, so retries spread out."""
        ceiling = min(self.max_s, self.base_s * 2.0 ** (attempt - 1))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)

    def worst_case_s(self) -> float:
        return sum(min(self.max_s, self.base_s * 2.0 ** (a - 1)) for a in range(1, self.attempts))


@dataclass(frozen=True)
class CapPolicy:
    """How a workload treats the target's per-user cap.

    Default (``gate=True``): never have more than ``per_user_cap`` runs of one
    user open, so every 429 quota answer is a finding.  Option
    (``gate=False``): send anyway; a 429 ``per_user_quota_exhausted`` is then
    its own outcome (``fail`` with that code) and is retried per ``retry``.
    ``per_user_cap`` must equal the cluster's ``max_concurrent_runs_per_user``
    (0 = the target checks nothing, so nothing is gated).
    """

    per_user_cap: int = 0
    gate: bool = True
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: How long after a slot is given back the target may still count it (0 = at once).
    release_lag_s: float = 0.0
    #: Retries of a gated refusal that falls inside ``release_lag_s`` of a release.
    lag_retry: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(attempts=6, base_s=0.1, max_s=1.0)
    )

    @classmethod
    def gated(cls, per_user_cap: int, *, release_lag_s: float = 0.0) -> CapPolicy:
        return cls(per_user_cap=per_user_cap, gate=True, release_lag_s=release_lag_s)

    def is_release_lag(self, code: str | None, released_recently: bool) -> bool:
        """A gated quota refusal that a slot still on its way back explains."""
        return self.gate and self.release_lag_s > 0 and code == QUOTA_CODE and released_recently

    @classmethod
    def send_anyway(cls, per_user_cap: int, retry: RetryPolicy | None = None) -> CapPolicy:
        return cls(
            per_user_cap=per_user_cap,
            gate=False,
            retry=retry if retry is not None else RetryPolicy(attempts=4),
        )

    @property
    def gate_cap(self) -> int:
        """The per-user gate's size: the cap when gating, else 0 (no gate)."""
        return self.per_user_cap if self.gate else 0
