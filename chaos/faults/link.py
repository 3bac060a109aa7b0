"""Network faults on one Toxiproxy link, each proven through the proxy's published port.

Toxiproxy semantics these faults rely on, each checked by
``tests/chaos/test_faults_link.py`` against the Toxiproxy on this machine:

* ``enabled=false`` closes the listener AND every open connection through
  the proxy; re-enabling does not revive them.  Between containers a new
  connect is refused; from the host, through Docker's userland port proxy,
  it is accepted and closed at once.  Either way it fails fast.
* ``timeout`` toxic with ``timeout=0``: data vanishes and Toxiproxy closes
  nothing itself, so a client hangs until its own deadline (a close the server
  starts, e.g. after ``Connection: close``, still passes through: probes keep
  their connections open, as nginx does with a replica).  Removing the toxic does NOT let
  the connections it held flow again: Toxiproxy closes them.  New
  connections work at once.
* ``latency`` toxic with a huge latency (a stall): data is held, not lost.
  Removing the toxic delivers what it held: a query in flight completes.
* ``timeout`` with ``timeout>0`` and ``reset_peer`` close the connection
  after that many ms (reset_peer with an RST).
* ``bandwidth`` ``rate`` is in KB/s with K = 1000 bytes.
* ``limit_data`` counts bytes per connection: new connections get a fresh
  budget, so a small query passes while a large one is cut.
* ``slow_close`` delays the close that the server started by ``delay`` ms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from chaos.cluster.toxiproxy import Stream, ToxiproxyClient, ToxiproxyError
from chaos.faults.base import Fault
from chaos.faults.probes import (
    PathResult,
    PgCredentials,
    pg_bulk,
    pg_close_delay,
    pg_roundtrip,
)
from chaos.record.vocabulary import LINK_FAULT_PREFIX

Direction = Literal["both", "up", "down"]
_STREAMS: dict[Direction, tuple[Stream, ...]] = {
    "both": ("upstream", "downstream"),
    "up": ("upstream",),
    "down": ("downstream",),
}
#: A failure this fast counts as "at once" (refused, reset), not a hang.
FAST_FAILURE_S = 1.0
#: A hang is proven when a round trip gets no answer for this long.
HANG_S = 1.5


class LinkPath(Protocol):
    """How to exercise what a link carries (Postgres here; HTTP for load-balancer links later)."""

    async def roundtrip(self, host: str, port: int, *, timeout: float) -> PathResult: ...

    async def bulk(
        self, host: str, port: int, *, nbytes: int, direction: Literal["down", "up"], timeout: float
    ) -> PathResult: ...

    async def close_delay(self, host: str, port: int, *, timeout: float) -> PathResult: ...


@dataclass(frozen=True)
class PgPath:
    """A link that carries Postgres: round trips are ``connect + SELECT 1``."""

    creds: PgCredentials

    async def roundtrip(self, host: str, port: int, *, timeout: float) -> PathResult:
        return await pg_roundtrip(host, port, self.creds, timeout=timeout)

    async def bulk(
        self, host: str, port: int, *, nbytes: int, direction: Literal["down", "up"], timeout: float
    ) -> PathResult:
        return await pg_bulk(
            host, port, self.creds, nbytes=nbytes, direction=direction, timeout=timeout
        )

    async def close_delay(self, host: str, port: int, *, timeout: float) -> PathResult:
        return await pg_close_delay(host, port, timeout=timeout)


@dataclass
class LinkTarget:
    """One Toxiproxy proxy and the published address that reaches it.

    ``label`` is the link's name in the history (``pg:r1``, ``lb:r1``);
    ``replica`` the replica at its end, when there is one.
    """

    toxiproxy: ToxiproxyClient
    proxy_name: str
    probe_addr: tuple[str, int]
    path: LinkPath
    label: str = ""
    replica: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.label or self.proxy_name

    async def roundtrip(self, timeout: float) -> PathResult:
        return await self.path.roundtrip(*self.probe_addr, timeout=timeout)


class LinkFault(Fault):
    """Common ground: names, history data, and "healthy = a prompt round trip"."""

    kind: str = ""

    def __init__(self, link: LinkTarget) -> None:
        self.link = link
        self._seen: dict[str, Any] = {}

    @property
    def name(self) -> str:
        return LINK_FAULT_PREFIX + self.kind

    @property
    def target(self) -> str:
        return self.link.name

    def describe(self) -> dict[str, Any]:
        data: dict[str, Any] = {"link": self.link.name, "proxy": self.link.proxy_name}
        if self.link.replica is not None:
            data["replica"] = self.link.replica
        return {**data, **self.params()}

    def params(self) -> dict[str, Any]:
        return {}

    async def evidence(self) -> dict[str, Any]:
        return dict(self._seen)

    def _saw(self, key: str, result: PathResult) -> PathResult:
        self._seen[key] = result.to_dict()
        return result

    async def healthy(self) -> bool:
        result = self._saw("healthy", await self.link.roundtrip(timeout=HANG_S * 2))
        return result.ok


class ResetCut(LinkFault):
    """Proxy disabled: every open connection is closed, new ones fail at once.

    Effect: a round trip fails (refused, or accepted and closed by Docker's
    port proxy) within ``FAST_FAILURE_S``, not by hanging.  Heal: enable the
    proxy; proven by a prompt round trip.
    """

    kind = "reset_cut"

    async def inject(self) -> None:
        await self.link.toxiproxy.set_enabled(self.link.proxy_name, False)

    async def heal(self) -> None:
        await self.link.toxiproxy.set_enabled(self.link.proxy_name, True)

    async def effect_present(self) -> bool:
        r = self._saw("effect", await self.link.roundtrip(timeout=HANG_S))
        return r.outcome in ("refused", "closed") and r.elapsed < FAST_FAILURE_S


class ToxicFault(LinkFault):
    """A fault made of Toxiproxy toxics, one per stream; heal removes exactly those."""

    toxic_type: str = ""
    direction: Direction = "both"

    def attributes(self) -> dict[str, Any]:
        return {}

    def params(self) -> dict[str, Any]:
        return {"direction": self.direction, "toxic": self.toxic_type, **self.attributes()}

    def _toxic_name(self, stream: Stream) -> str:
        return f"loomchaos_{self.kind}_{stream}"

    async def inject(self) -> None:
        for stream in _STREAMS[self.direction]:
            await self.link.toxiproxy.add_toxic(
                self.link.proxy_name,
                name=self._toxic_name(stream),
                type=self.toxic_type,
                stream=stream,
                attributes=self.attributes(),
            )

    async def heal(self) -> None:
        present = {t.get("name") for t in await self.link.toxiproxy.toxics(self.link.proxy_name)}
        for stream in _STREAMS[self.direction]:
            name = self._toxic_name(stream)
            if name in present:
                try:
                    await self.link.toxiproxy.remove_toxic(self.link.proxy_name, name)
                except ToxiproxyError as exc:  # removed meanwhile: the heal's goal holds
                    if "404" not in str(exc):
                        raise


def _one_way(kind: str, direction: Direction) -> str:
    return kind if direction == "both" else f"{kind}_{direction}"


class ResetPeer(ToxicFault):
    """``reset_peer``: the connection is reset (RST) ``timeout_ms`` after data flows.

    Effect: a round trip fails with the connection closed, within
    ``timeout_ms`` + ``FAST_FAILURE_S``.  Heal: remove the toxics.
    """

    toxic_type = "reset_peer"

    def __init__(
        self, link: LinkTarget, timeout_ms: int = 0, direction: Direction = "both"
    ) -> None:
        super().__init__(link)
        self.timeout_ms = timeout_ms
        self.direction = direction
        self.kind = _one_way("reset_peer", direction)

    def attributes(self) -> dict[str, Any]:
        return {"timeout": self.timeout_ms}

    async def effect_present(self) -> bool:
        r = self._saw("effect", await self.link.roundtrip(timeout=self.timeout_ms / 1000 + HANG_S))
        return r.outcome == "closed" and r.elapsed < self.timeout_ms / 1000 + FAST_FAILURE_S


class BlackHole(ToxicFault):
    """``timeout`` toxic with ``timeout=0``: bytes vanish; Toxiproxy closes nothing itself.

    Effect: a round trip hangs (no answer, no error) for ``HANG_S``.
    One-way variants (``direction="up"``: requests vanish; ``"down"``:
    answers vanish) are named ``link:black_hole_up`` / ``_down``.
    Heal: remove the toxics.  Connections that were open during the fault
    are closed by Toxiproxy on removal (clients must reconnect); new ones
    work at once, which is the proof.
    """

    toxic_type = "timeout"

    def __init__(self, link: LinkTarget, direction: Direction = "both") -> None:
        super().__init__(link)
        self.direction = direction
        self.kind = _one_way("black_hole", direction)

    def attributes(self) -> dict[str, Any]:
        return {"timeout": 0}

    async def effect_present(self) -> bool:
        r = self._saw("effect", await self.link.roundtrip(timeout=HANG_S))
        return r.outcome == "timeout"


class Stall(ToxicFault):
    """``latency`` toxic with a latency far beyond any test (default 10 min): bytes are held.

    Effect: a round trip hangs for ``HANG_S``, like a black hole.  The
    difference shows at the heal: removing the toxic delivers the held
    bytes, so a query in flight completes instead of its connection being
    closed.  Heal: remove the toxics; proven by a prompt round trip.
    """

    toxic_type = "latency"

    def __init__(
        self, link: LinkTarget, direction: Direction = "both", hold_ms: int = 600_000
    ) -> None:
        super().__init__(link)
        self.direction = direction
        self.hold_ms = hold_ms
        self.kind = _one_way("stall", direction)

    def attributes(self) -> dict[str, Any]:
        return {"latency": self.hold_ms, "jitter": 0}

    async def effect_present(self) -> bool:
        r = self._saw("effect", await self.link.roundtrip(timeout=HANG_S))
        return r.outcome == "timeout"


class Latency(ToxicFault):
    """``latency`` toxic: every chunk is delayed by ``latency_ms`` ± ``jitter_ms``.

    Effect: a round trip (connect + query: several chunks each way) takes at
    least ``latency_ms - jitter_ms``; with the toxics gone it takes under
    half that.  Needs ``latency_ms - jitter_ms >= 100`` so the difference is
    measurable above scheduling noise.  Heal: remove the toxics.
    """

    toxic_type = "latency"

    def __init__(
        self, link: LinkTarget, latency_ms: int, jitter_ms: int = 0, direction: Direction = "down"
    ) -> None:
        if latency_ms - jitter_ms < 100:
            raise ValueError("latency_ms - jitter_ms must be >= 100 ms to be provable")
        super().__init__(link)
        self.latency_ms = latency_ms
        self.jitter_ms = jitter_ms
        self.direction = direction
        self.kind = "latency"

    @property
    def floor_s(self) -> float:
        return (self.latency_ms - self.jitter_ms) / 1000

    def attributes(self) -> dict[str, Any]:
        return {"latency": self.latency_ms, "jitter": self.jitter_ms}

    async def effect_present(self) -> bool:
        r = self._saw("effect", await self.link.roundtrip(timeout=self.floor_s * 20 + HANG_S))
        return r.ok and r.elapsed >= self.floor_s

    async def heal_present(self) -> bool:
        r = self._saw("heal", await self.link.roundtrip(timeout=self.floor_s * 20 + HANG_S))
        return r.ok and r.elapsed < self.floor_s / 2


class Bandwidth(ToxicFault):
    """``bandwidth`` toxic: at most ``rate_kb`` KB/s (K = 1000 bytes).

    Effect: moving ``rate_kb * 1000 * probe_s`` bytes takes at least 70 % of
    ``probe_s``; healed, it takes under 35 %.  ``rate_kb`` is capped at 5000
    so the healthy transfer stays measurably faster.  Heal: remove the toxics.
    """

    toxic_type = "bandwidth"

    def __init__(
        self, link: LinkTarget, rate_kb: int, direction: Direction = "down", probe_s: float = 1.0
    ) -> None:
        if not 0 < rate_kb <= 5000:
            raise ValueError("rate_kb must be in 1..5000 to be provable")
        if direction == "both":
            raise ValueError("bandwidth is proven one way at a time: direction 'up' or 'down'")
        super().__init__(link)
        self.rate_kb = rate_kb
        self.direction = direction
        self.probe_s = probe_s
        self.kind = _one_way("bandwidth", direction)

    def attributes(self) -> dict[str, Any]:
        return {"rate": self.rate_kb}

    async def _transfer(self, key: str) -> PathResult:
        d: Literal["up", "down"] = "up" if self.direction == "up" else "down"
        nbytes = int(self.rate_kb * 1000 * self.probe_s)
        result = await self.link.path.bulk(
            *self.link.probe_addr, nbytes=nbytes, direction=d, timeout=self.probe_s * 5 + HANG_S
        )
        return self._saw(key, result)

    async def effect_present(self) -> bool:
        r = await self._transfer("effect")
        return r.ok and r.elapsed >= 0.7 * self.probe_s

    async def heal_present(self) -> bool:
        r = await self._transfer("heal")
        return r.ok and r.elapsed < 0.35 * self.probe_s


class SlowClose(ToxicFault):
    """``slow_close`` toxic: a close started by the server reaches the client ``delay_ms`` late.

    Effect: the time from asking the server to hang up to EOF is at least
    80 % of ``delay_ms``; healed, under 40 %.  Heal: remove the toxic.
    """

    toxic_type = "slow_close"

    def __init__(self, link: LinkTarget, delay_ms: int = 1500) -> None:
        if delay_ms < 250:
            raise ValueError("delay_ms must be >= 250 to be provable")
        super().__init__(link)
        self.delay_ms = delay_ms
        self.direction = "down"
        self.kind = "slow_close"

    def attributes(self) -> dict[str, Any]:
        return {"delay": self.delay_ms}

    async def _close(self, key: str) -> PathResult:
        r = await self.link.path.close_delay(
            *self.link.probe_addr, timeout=self.delay_ms / 1000 * 3 + HANG_S
        )
        return self._saw(key, r)

    async def effect_present(self) -> bool:
        r = await self._close("effect")
        return r.ok and r.elapsed >= 0.8 * self.delay_ms / 1000

    async def heal_present(self) -> bool:
        r = await self._close("heal")
        return r.ok and r.elapsed < 0.4 * self.delay_ms / 1000


class LimitData(ToxicFault):
    """``limit_data`` toxic: each connection is closed after ``limit_bytes`` bytes.

    Effect: moving ``4 * limit_bytes`` (at least 64 KB) fails with the
    connection closed, promptly (not a hang).  The byte budget is per
    connection.  Heal: remove the toxics; proven by the same transfer
    succeeding.
    """

    toxic_type = "limit_data"

    def __init__(
        self, link: LinkTarget, limit_bytes: int = 4096, direction: Direction = "down"
    ) -> None:
        if direction == "both":
            raise ValueError("limit_data is proven one way at a time: direction 'up' or 'down'")
        super().__init__(link)
        self.limit_bytes = limit_bytes
        self.direction = direction
        self.kind = _one_way("limit_data", direction)

    def attributes(self) -> dict[str, Any]:
        return {"bytes": self.limit_bytes}

    async def _transfer(self, key: str) -> PathResult:
        d: Literal["up", "down"] = "up" if self.direction == "up" else "down"
        nbytes = max(4 * self.limit_bytes, 64 * 1024)
        r = await self.link.path.bulk(
            *self.link.probe_addr, nbytes=nbytes, direction=d, timeout=HANG_S * 2
        )
        return self._saw(key, r)

    async def effect_present(self) -> bool:
        r = await self._transfer("effect")
        return r.outcome == "closed"

    async def heal_present(self) -> bool:
        return (await self._transfer("heal")).ok
