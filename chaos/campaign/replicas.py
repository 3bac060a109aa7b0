"""Per-replica resources: limits applied to a running replica, and the ~1 s resource sampler.

Limits are set with the engine's update call on the running container (CFS
quota for CPU, a memory limit with swap equal to it), so a replica killed
and started again keeps them.  The sampler reads each replica's cgroup
through the engine's one-shot stats (CPU as the usage delta between two
samples, in % of one core; memory as usage minus inactive file pages, which
is what the kernel would count as the container's working set) and the
target's live gauges through a reader the target supplies.  A replica that
is down leaves empty cells for that second, not an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from chaos.campaign.options import ReplicaLimit

CFS_PERIOD_US = 100_000
#: An engine call slower than this leaves a gap in the samples.
STATS_TIMEOUT_S = 5.0


class GaugeSource(Protocol):
    """The target's live gauges of one replica (None where it has none)."""

    async def read(self, url: str) -> Any: ...


class SampledCluster(Protocol):
    replica_ids: tuple[str, ...]

    async def container(self, node: str) -> Any: ...

    def replica_url(self, replica_id: str) -> str: ...


async def apply_limits(cluster: SampledCluster, limits: Sequence[tuple[str, ReplicaLimit]]) -> None:
    for replica_id, limit in limits:
        changes: dict[str, Any] = {}
        if limit.cpus is not None:
            changes.update(cpu_period=CFS_PERIOD_US, cpu_quota=int(limit.cpus * CFS_PERIOD_US))
        if limit.memory_mb is not None:
            changes.update(mem_limit=f"{limit.memory_mb}m", memswap_limit=f"{limit.memory_mb}m")
        if changes:
            container = await cluster.container(replica_id)
            await asyncio.to_thread(container.update, **changes)


@dataclass(frozen=True)
class CgroupReading:
    cpu_ns: int | None
    memory_bytes: int | None
    mono: float


def cgroup_reading(stats: Mapping[str, Any], mono: float) -> CgroupReading:
    """CPU nanoseconds used so far and working-set bytes from one engine stats answer."""
    cpu = (stats.get("cpu_stats") or {}).get("cpu_usage") or {}
    total = cpu.get("total_usage")
    memory = stats.get("memory_stats") or {}
    usage = memory.get("usage")
    detail = memory.get("stats") or {}
    inactive = detail.get("total_inactive_file", detail.get("inactive_file", 0)) or 0
    return CgroupReading(
        cpu_ns=int(total) if isinstance(total, int | float) else None,
        memory_bytes=max(0, int(usage) - int(inactive)) if isinstance(usage, int | float) else None,
        mono=mono,
    )


def cpu_percent(before: CgroupReading | None, after: CgroupReading) -> float | None:
    """CPU used between two readings in % of one core; None without a usable pair."""
    if before is None or before.cpu_ns is None or after.cpu_ns is None:
        return None
    elapsed = after.mono - before.mono
    used = after.cpu_ns - before.cpu_ns
    if elapsed <= 0 or used < 0:  # a restarted container starts its counter again
        return None
    return used / 1e9 / elapsed * 100.0


class ResourceSampler:
    """Every ``interval_s``: one row per replica to ``emit`` (the samples.csv columns
    ``t, replica, cpu_pct, rss_mb, goroutines, active_runs, queued_runs``)."""

    def __init__(
        self,
        cluster: SampledCluster,
        gauges: GaugeSource,
        emit: Callable[[dict[str, Any]], None],
        *,
        campaign_t: Callable[[], float],
        interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cluster = cluster
        self.gauges = gauges
        self.emit = emit
        self.campaign_t = campaign_t
        self.interval_s = interval_s
        self._clock = clock
        self._last: dict[str, CgroupReading] = {}
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def _cgroup(self, replica_id: str) -> CgroupReading | None:
        try:
            container = await self.cluster.container(replica_id)
            async with asyncio.timeout(STATS_TIMEOUT_S):
                stats = await asyncio.to_thread(container.stats, stream=False, one_shot=True)
        except Exception:  # down, restarting or slow: a gap in the samples
            return None
        return cgroup_reading(stats, self._clock())

    async def _one(self, replica_id: str, t: float) -> None:
        reading, gauges = await asyncio.gather(
            self._cgroup(replica_id), self._read_gauges(replica_id)
        )
        cpu = rss = None
        if reading is not None:
            cpu = cpu_percent(self._last.get(replica_id), reading)
            self._last[replica_id] = reading
            rss = None if reading.memory_bytes is None else reading.memory_bytes / 1048576.0
        self.emit(
            {
                "t": t,
                "replica": replica_id,
                "cpu_pct": cpu,
                "rss_mb": rss,
                "goroutines": getattr(gauges, "goroutines", None),
                "active_runs": getattr(gauges, "active_runs", None),
                "queued_runs": getattr(gauges, "queued_runs", None),
            }
        )

    async def _read_gauges(self, replica_id: str) -> Any:
        try:
            url = self.cluster.replica_url(replica_id)
        except (LookupError, RuntimeError):
            return None
        return await self.gauges.read(url)

    async def sample(self) -> None:
        t = self.campaign_t()
        await asyncio.gather(*(self._one(rid, t) for rid in self.cluster.replica_ids))

    async def _loop(self) -> None:
        while not self._stop.is_set():
            began = self._clock()
            await self.sample()
            # Fixed rate: the next tick is one interval after this one began, so a slow
            # engine or scrape shortens the pause instead of stretching the period.
            pause = max(0.0, self.interval_s - (self._clock() - began))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await self._stop.wait()

    async def __aenter__(self) -> ResourceSampler:
        self._task = asyncio.create_task(self._loop(), name="campaign-resource-sampler")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
