"""Replica ids to fault targets, with probes that say what a replica fault means.

The process faults (:mod:`chaos.faults.process`) act on a
:class:`~chaos.faults.ContainerTarget` and judge effect and heal with its
probe (healthy = probe true; effect = probe false).  For a replica:

* kill / graceful stop: healthy means every surviving replica that answers
  lists it in its ``/healthz`` (they all read the same ``replicas`` table),
  and the effect means none does.  For a graceful stop that is the promised
  row deletion (~5 s); for a kill it is the reap, so the kill's effect
  timeout is the reap bound.  Survivors that disagree, or no survivor
  answering, prove nothing either way (:class:`ProbeInconclusive`: both
  proofs keep waiting).
* freeze: healthy means the replica itself answers its ``/healthz`` within a
  short timeout (a frozen process accepts the TCP connection but never answers).

The fault's history target is the replica id, which is how the checkers
find a replica's fault windows.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any, Protocol

from chaos.checks.params import CheckParams
from chaos.cluster.view import ScenarioCluster, client_for
from chaos.faults import ContainerTarget, Freeze, GracefulStop, Kill, Probe
from chaos.sut.base import Health
from chaos.wait import eventually

#: A replica restarted by a heal boots, migrates nothing, and heartbeats its row: generous.
REJOIN_TIMEOUT_S = 120.0
SURVIVOR_PROBE_TIMEOUT_S = 3.0
HEALTHZ_PROBE_TIMEOUT_S = 2.0


class ProbeInconclusive(Exception):
    """The survivors gave no usable answer: neither effect nor heal can be judged yet."""


def listed_by_survivors(answers: Mapping[str, Health | BaseException], replica_id: str) -> bool:
    """True when every answering survivor lists ``replica_id``, False when none does.

    Raises :class:`ProbeInconclusive` when no survivor gave a usable answer or
    they disagree (one sweep round apart); the fault proofs count that as "not yet".
    """
    usable = {
        rid: h.replica_ids
        for rid, h in answers.items()
        if isinstance(h, Health) and h.ok and h.replica_ids is not None
    }
    if not usable:
        raise ProbeInconclusive(
            f"no survivor listed its replicas: {sorted(answers)} answered "
            + ", ".join(f"{k}={v!r}" for k, v in sorted(answers.items(), key=lambda kv: kv[0]))[
                :300
            ]
        )
    seen = {rid: replica_id in ids for rid, ids in usable.items()}
    if all(seen.values()):
        return True
    if not any(seen.values()):
        return False
    raise ProbeInconclusive(f"survivors disagree on {replica_id}: {seen}")


async def _health(cluster: ScenarioCluster, replica_id: str, timeout_s: float) -> Health:
    client = client_for(cluster, cluster.replica_url(replica_id))
    try:
        async with asyncio.timeout(timeout_s):
            return await client.health()
    finally:
        with contextlib.suppress(Exception):
            await client.aclose()


def survivors_list(
    cluster: ScenarioCluster, replica_id: str, *, timeout_s: float = SURVIVOR_PROBE_TIMEOUT_S
) -> Probe:
    """Probe: ``replica_id`` is listed by the other replicas' ``/healthz`` (see the module doc)."""
    survivors = [r for r in cluster.replica_ids if r != replica_id]
    if not survivors:
        raise ValueError("a survivors' view needs at least two replicas")

    async def probe() -> bool:
        answers = await asyncio.gather(
            *(_health(cluster, s, timeout_s) for s in survivors), return_exceptions=True
        )
        return listed_by_survivors(dict(zip(survivors, answers, strict=True)), replica_id)

    return probe


def answers_healthz(
    cluster: ScenarioCluster, replica_id: str, *, timeout_s: float = HEALTHZ_PROBE_TIMEOUT_S
) -> Probe:
    """Probe: the replica itself answers ``/healthz`` with ok, within ``timeout_s``."""

    async def probe() -> bool:
        try:
            return (await _health(cluster, replica_id, timeout_s)).ok
        except Exception:  # refused, reset or timed out: not answering is the observation
            return False

    return probe


async def container_target(
    cluster: ScenarioCluster, replica_id: str, probe: Probe
) -> ContainerTarget:
    """The replica's container, named by its replica id in the history."""
    container = await cluster.container(replica_id)
    return ContainerTarget(container.client, container.id, replica_id, probe)


def reap_wait_s(params: CheckParams) -> float:
    """How long a reap may take: the documented bound, the margin, and one more sweep."""
    return params.reap_bound_s + params.reap_margin_s + params.replica_sweep_s


async def kill_replica(cluster: ScenarioCluster, replica_id: str, params: CheckParams) -> Kill:
    """SIGKILL; effect proven when the survivors no longer list it (the reap), heal when
    they list it again (restarted under the same id)."""
    fault = Kill(await container_target(cluster, replica_id, survivors_list(cluster, replica_id)))
    fault.effect_timeout = reap_wait_s(params)
    fault.heal_timeout = REJOIN_TIMEOUT_S
    return fault


async def stop_replica(
    cluster: ScenarioCluster, replica_id: str, *, grace_s: int = 10
) -> GracefulStop:
    """SIGTERM; effect proven when the survivors no longer list it (its own row deletion)."""
    target = await container_target(cluster, replica_id, survivors_list(cluster, replica_id))
    fault = GracefulStop(target, grace_s=grace_s)
    fault.heal_timeout = REJOIN_TIMEOUT_S
    return fault


async def freeze_replica(cluster: ScenarioCluster, replica_id: str) -> Freeze:
    """``docker pause``; effect proven when its own ``/healthz`` stops answering."""
    return Freeze(await container_target(cluster, replica_id, answers_healthz(cluster, replica_id)))


async def rejoin(
    cluster: ScenarioCluster, replica_id: str, *, timeout_s: float = REJOIN_TIMEOUT_S
) -> None:
    """After a restart: learn its new host port, then wait until it lists every replica."""
    await cluster.refresh_endpoints()
    wanted = set(cluster.replica_ids)

    async def ready() -> bool:
        health = await _health(cluster, replica_id, SURVIVOR_PROBE_TIMEOUT_S)
        return health.ok and wanted <= set(health.replica_ids or ())

    await eventually(
        ready,
        what=f"replica {replica_id} to answer on its new port and list {sorted(wanted)}",
        timeout=timeout_s,
        interval=0.5,
    )


class RecreatingCluster(ScenarioCluster, Protocol):
    """A cluster that can bring a replica node back under another replica id."""

    def replica_identity(self, node: str) -> str: ...

    async def recreate_replica(self, node: str, replica_id: str | None = None) -> str: ...


class KillRejoin(Kill):
    """SIGKILL replica node ``node``, healed by bringing it back as replica ``as_id``.

    Issue 10's scenario 8: a replica killed and restarted before it is reaped,
    under the same id (``as_id == node``: the same container starts again, as a
    supervisor restarting a crashed process would) or under a new one (the
    node's container is re-created with the target's replica id set to ``as_id`` and
    hostname ``<as_id>-host``, same address and links: a replacement pod).

    Effect: the container no longer runs (at once; unlike :func:`kill_replica`
    the reap is not awaited, so the heal comes well within the stale threshold).
    Heal: start or re-create; proven when the node itself answers ``/healthz``
    as ``as_id`` listing ``as_id`` (its first heartbeat upsert is in), and every
    answering other node lists ``as_id`` too.  The history target is the killed
    id (``node``), so the checkers time the dead incarnation's reap against it.
    """

    def __init__(self, target: ContainerTarget, cluster: RecreatingCluster, as_id: str) -> None:
        super().__init__(target)
        self.cluster = cluster
        self.as_id = as_id
        self.heal_timeout = REJOIN_TIMEOUT_S
        self._seen: dict[str, Any] = {}

    def describe(self) -> dict[str, Any]:
        return {"rejoin_as": self.as_id}

    async def evidence(self) -> dict[str, Any]:
        return {**await super().evidence(), **self._seen}

    async def effect_present(self) -> bool:
        return bool((await self.container.state())["status"] != "running")

    async def heal(self) -> None:
        node = self.container.name
        if self.as_id == self.cluster.replica_identity(node):
            await self.container.ensure_running()
        else:
            await self.cluster.recreate_replica(node, self.as_id)
            fresh = await self.cluster.container(node)
            self.container.container_id = fresh.id
        await self.cluster.refresh_endpoints()

    async def heal_present(self) -> bool:
        node = self.container.name
        if (await self.container.state())["status"] != "running":
            return False
        try:
            own = await _health(self.cluster, node, SURVIVOR_PROBE_TIMEOUT_S)
        except Exception as exc:  # still booting: not yet
            self._seen["own_health"] = f"{type(exc).__name__}: {exc}"[:200]
            return False
        self._seen["own_health"] = {"replica_id": own.replica_id, "replicas": own.replica_ids}
        if not (own.ok and own.replica_id == self.as_id and self.as_id in (own.replica_ids or ())):
            return False
        others = [n for n in self.cluster.replica_ids if n != node]
        answers = await asyncio.gather(
            *(_health(self.cluster, n, SURVIVOR_PROBE_TIMEOUT_S) for n in others),
            return_exceptions=True,
        )
        try:
            return listed_by_survivors(dict(zip(others, answers, strict=True)), self.as_id)
        except ProbeInconclusive:
            return False

    async def healthy(self) -> bool:
        return await self.heal_present()


async def kill_rejoin(
    cluster: RecreatingCluster, node: str, as_id: str | None = None
) -> KillRejoin:
    """:class:`KillRejoin` of ``node``, back as ``as_id`` (default: the same id)."""
    container = await cluster.container(node)
    target = ContainerTarget(container.client, container.id, node, survivors_list(cluster, node))
    return KillRejoin(target, cluster, as_id or node)
