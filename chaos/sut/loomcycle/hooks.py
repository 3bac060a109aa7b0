"""Cluster hooks that need loomcycle's semantics: backplane readiness and idleness.

``/healthz`` says nothing about the LISTEN connections (CONTRACT.md): after a
Postgres disruption they reconnect with a backoff of up to 30 s and messages
sent meanwhile are lost.  So "ready" is proven by using the backplane: a run
started on one replica is cancelled through another, and the owner's ack must
come back.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import TYPE_CHECKING

import asyncpg

from chaos.sut.base import RunRequest
from chaos.sut.loomcycle.adapter import LoomcycleAdapter
from chaos.sut.loomcycle.config import CHAOS_AGENT
from chaos.sut.loomcycle.sql import LoomcycleStateReader
from chaos.wait import eventually

if TYPE_CHECKING:
    # Annotations only: the cluster module must not depend on this adapter at run time.
    from chaos.cluster.cluster import Cluster

#: Agent ids of readiness probes: never under a test's prefix, so checkers ignore them.
PROBE_PREFIX = "lcready"


async def verify_backplane(cluster: Cluster, *, timeout: float = 60.0) -> None:
    """Start a run on the first replica, cancel it through the second; require the ack.

    With one replica there is no cross-replica path to prove; the check is a
    local cancel then.  Retries until ``timeout`` because LISTEN connections
    may still be reconnecting after a reset.
    """
    ids = cluster.replica_ids
    owner_id, other_id = ids[0], ids[1 % len(ids)]
    adapter = LoomcycleAdapter.for_spec(cluster.spec)
    owner = adapter.client(cluster.replica_url(owner_id))
    other = adapter.client(cluster.replica_url(other_id))

    async def one_probe() -> str:
        agent_id = f"{PROBE_PREFIX}-{secrets.token_hex(6)}"
        req = RunRequest(agent=CHAOS_AGENT, agent_id=agent_id, prompt="backplane probe")
        stream = owner.start_run(req)
        try:
            async for event in stream:
                if event.type == "agent":
                    result = await other.cancel(agent_id, reason="loomchaos readiness")
                    return "" if result.classification != "acknowledged" else "acked"
                if event.type in ("done", "error"):
                    return ""  # ended before we could cancel: try again
            return ""
        finally:
            # Closing the stream ends the probe run on the owner if the cancel did not.
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()

    try:
        await eventually(
            one_probe,
            what=f"a cancel of a run on {owner_id} through {other_id} to be acknowledged",
            timeout=timeout,
            interval=1.0,
        )
    finally:
        await asyncio.gather(owner.aclose(), other.aclose())


async def wait_idle(cluster: Cluster, *, timeout: float = 120.0) -> None:
    """Wait until no run is ``running`` anywhere in the cluster's database."""
    conn = await asyncpg.connect(cluster.pg_dsn)
    try:
        reader = LoomcycleStateReader(conn)

        async def idle() -> bool:
            return not [r for r in await reader.runs("") if r.status == "running"]

        await eventually(idle, what="no run left running", timeout=timeout, interval=0.5)
    finally:
        await conn.close()
