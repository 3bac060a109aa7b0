"""The toy's wiring of a scenario: :class:`~chaos.scenario.run.ScenarioPorts` and the frame.

Mirrors :mod:`chaos.sut.loomcycle.ports` with the toy's reader, audit and client.
The one difference the seam has to allow: the toy keeps no table of the events
it sent, so :meth:`ToyPorts.done_run_ids` answers ``None`` and the checkers judge
``done`` from the client's streams.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import asyncpg

from chaos.checks.params import CheckParams
from chaos.checks.terminal_table import TerminalWords
from chaos.record.history import History
from chaos.record.vocabulary import AuditRow, Snapshot
from chaos.scenario.base import ScenarioCluster, client_for, describe_error
from chaos.scenario.convergence import OwnerAnswer
from chaos.scenario.run import ScenarioPorts, ScenarioRun
from tests.toy.adapter import toy_settings
from tests.toy.audit import install_audit, read_audit
from tests.toy.sql import ToyStateReader

OWNER_PROBE_TIMEOUT_S = 3.0
DB_SETUP_TIMEOUT_S = 20.0
#: The toy's own bounds (CheckParams fields): it heartbeats every second, gives a
#: slot back in the transaction that ends the run (before ``done`` is sent), and
#: its reaper is one short transaction, so the margins are small.
#: The toy's own stop-reason and error words (not loomcycle's): the checkers judge by these
#: because the toy's check parameters carry them, with nothing edited in chaos/checks.
TOY_WORDS = TerminalWords(
    replica_died="owner_lost",
    replica_died_error="owner lost",
    cancelled_by_api="stopped by request",
    client_disconnected="client gone",
)
TOY_BOUNDS: dict[str, Any] = {
    "replica_heartbeat_s": 1.0,
    "quota_grace_s": 1.0,
    "reap_margin_s": 3.0,
}


class ToyPorts:
    def __init__(self, cluster: ScenarioCluster, pool: Any, prefix: str) -> None:
        self.cluster = cluster
        self.pool = pool
        self.prefix = prefix
        self.reader = ToyStateReader(pool)

    async def snapshot(self) -> Snapshot:
        return await self.reader.snapshot(self.prefix)

    async def audit_after(self, seq: int) -> Sequence[AuditRow]:
        return await read_audit(self.pool, self.prefix, after_seq=seq)

    async def done_run_ids(self, run_ids: Sequence[str]) -> set[str] | None:
        return None  # no events table: see the module docstring

    async def ask_owner(self, replica_id: str, agent_id: str) -> OwnerAnswer:
        try:
            client = client_for(self.cluster, self.cluster.replica_url(replica_id))
        except (LookupError, RuntimeError) as exc:
            return OwnerAnswer(live=False, error=f"no address for {replica_id}: {exc}")
        try:
            async with asyncio.timeout(OWNER_PROBE_TIMEOUT_S):
                answer = await client.status(agent_id)
        except Exception as exc:
            return OwnerAnswer(live=False, error=describe_error(exc))
        finally:
            with contextlib.suppress(Exception):
                await client.aclose()
        if answer is None:
            return OwnerAnswer(live=False, error="404 unknown_agent_id")
        run_id, status = answer.get("run_id"), answer.get("status")
        return OwnerAnswer(
            live=answer.get("live") is True,
            run_id=None if run_id is None else str(run_id),
            status=None if status is None else str(status),
        )


def _as_ports(ports: ToyPorts) -> ScenarioPorts:
    return ports


@asynccontextmanager
async def toy_scenario_run(
    cluster: ScenarioCluster,
    history: History,
    prefix: str,
    *,
    settle_s: float = 10.0,
    **param_overrides: Any,
) -> AsyncIterator[ScenarioRun]:
    """A :class:`ScenarioRun` on a ready toy cluster, the toy's audit triggers installed."""
    settings = toy_settings(cluster.spec)
    base = CheckParams(
        per_user_cap=settings.cap,
        replica_stale_s=settings.stale_ms / 1000.0,
        replica_sweep_s=settings.sweep_ms / 1000.0,
        replica_ids=tuple(cluster.replica_ids),
        test_prefix=prefix,
        terminal=TOY_WORDS,
        completed_stop_reasons=("finished",),
    )
    params = replace(base, **{**TOY_BOUNDS, **param_overrides})
    async with asyncio.timeout(DB_SETUP_TIMEOUT_S):
        pool = await asyncpg.create_pool(cluster.pg_dsn, min_size=1, max_size=4)
    try:
        async with asyncio.timeout(DB_SETUP_TIMEOUT_S), pool.acquire() as conn:
            await install_audit(conn)
        async with ScenarioRun(
            history, params, ToyPorts(cluster, pool, prefix), settle_s=settle_s
        ) as run:
            yield run
    finally:
        try:
            async with asyncio.timeout(DB_SETUP_TIMEOUT_S):
                await pool.close()
        except Exception:
            pool.terminate()
