"""Readiness probes: one small async function per thing a cluster must answer.

Each returns a truthy value when ready and something falsy (or raises) when
not, so it can be handed to :func:`chaos.wait.eventually`, which turns a
missed deadline into a message with what was awaited and what was last seen.
They judge readiness the same way whatever image is used: from the host,
through the published 127.0.0.1 ports, never by reading a container's log.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import asyncpg
import httpx

from chaos.cluster.addresses import LOOPBACK, require_loopback
from chaos.cluster.toxiproxy import ToxiproxyClient
from chaos.sut.base import Health


class Pending(str):
    """A "not yet" answer that still says what it saw.

    Falsy, so :func:`chaos.wait.eventually` keeps polling, and a string, so the
    timeout message shows it ("missing proxies: pg_r2") instead of ``False``.
    """

    def __bool__(self) -> bool:
        return False


@dataclass(frozen=True)
class PgCredentials:
    user: str
    password: str
    database: str

    def url(self, host: str, port: int) -> str:
        """A URL-form DSN (loomcycle accepts only that form)."""
        return (
            f"postgres://{self.user}:{self.password}@{host}:{port}/{self.database}?sslmode=disable"
        )


async def pg_select_one(creds: PgCredentials, port: int, *, host: str = LOOPBACK) -> bool:
    """Postgres accepts a login and runs ``SELECT 1`` (a started postmaster alone is not enough)."""
    conn = await asyncpg.connect(
        host=require_loopback(host),
        port=port,
        user=creds.user,
        password=creds.password,
        database=creds.database,
        timeout=5,
    )
    try:
        return bool(await conn.fetchval("SELECT 1", timeout=5) == 1)
    finally:
        await conn.close(timeout=5)


async def proxies_ready(
    toxiproxy: ToxiproxyClient, expected: Iterable[str]
) -> Literal[True] | Pending:
    """Every expected proxy exists and is enabled (raises while the API is down)."""
    present = await toxiproxy.proxies()
    missing = sorted(set(expected) - set(present))
    disabled = sorted(n for n in expected if n in present and not present[n].enabled)
    if missing or disabled:
        return Pending(f"missing proxies: {missing}; disabled proxies: {disabled}")
    return True


def health_lists_all(health: Health, replica_ids: Iterable[str]) -> Literal[True] | Pending:
    """Ready when the replica's health lists every replica id (CONTRACT.md, "Starting")."""
    wanted = sorted(replica_ids)
    if not health.ok or health.replica_ids is None:
        return Pending(f"health ok={health.ok} replicas={health.replica_ids}")
    if not set(wanted) <= set(health.replica_ids):
        return Pending(f"health lists {sorted(health.replica_ids)}, want {wanted}")
    return True


async def nginx_self_check(
    http: httpx.AsyncClient, url: str, cluster_id: str
) -> Literal[True] | Pending:
    """This cluster's nginx answers its own probe path (``SELF_CHECK_PATH``).

    nginx answers it without an upstream, so with no replica behind it the
    check is immediate; a 502 on a proxied path would prove the same but only
    after the connection to every absent replica had failed (seconds each).
    The cluster id in the body shows the config is this cluster's.
    """
    resp = await http.get(url)
    if resp.status_code != 200 or cluster_id not in resp.text:
        server = resp.headers.get("server", "")
        return Pending(f"HTTP {resp.status_code} from {server!r}: {resp.text[:200]!r}")
    return True
