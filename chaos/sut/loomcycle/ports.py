"""The loomcycle wiring of a scenario: ports over a real cluster, audit triggers, clients.

The one module of :mod:`chaos.scenario` that knows the target: it reads state
through :class:`~chaos.sut.loomcycle.LoomcycleStateReader` and the audit
helpers, asks owners through the adapter's client, and owns the asyncpg pool
those reads share (a pool, not one connection: the background sampler and a
scenario's own reads run at the same time).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from chaos.record.history import History
from chaos.record.vocabulary import AuditRow, Snapshot
from chaos.scenario.base import ScenarioCluster, client_for, describe_error
from chaos.scenario.convergence import OwnerAnswer
from chaos.scenario.run import ScenarioRun
from chaos.scenario.steps import run_many
from chaos.sut.base import RunClient, RunRequest
from chaos.sut.loomcycle.adapter import QUOTA_RELEASE_LAG_S
from chaos.sut.loomcycle.audit import install_audit, read_audit, uninstall_audit
from chaos.sut.loomcycle.params import params_for
from chaos.sut.loomcycle.settings import settings_of
from chaos.sut.loomcycle.sql import LoomcycleStateReader
from chaos.workload.driver import Driver, RunResult
from chaos.workload.gates import CapPolicy

#: An owner that does not answer within this is reported as not serving (a frozen replica).
OWNER_PROBE_TIMEOUT_S = 5.0
#: Database calls at the edges (pool open, audit install/uninstall) must not hang a test.
DB_SETUP_TIMEOUT_S = 20.0


async def served_by(cluster: ScenarioCluster, prefix: str) -> dict[tuple[str, str], int]:
    """``{(provider, status): runs}`` of the prefix: which provider carried each run."""
    async with asyncio.timeout(DB_SETUP_TIMEOUT_S):
        conn = await asyncpg.connect(cluster.pg_dsn)
    try:
        return await LoomcycleStateReader(conn).provider_counts(prefix)
    finally:
        await conn.close()


def gated_policy(per_user_cap: int) -> CapPolicy:
    """The per-user gate for loomcycle: at the cap, allowing for its asynchronous slot release."""
    return CapPolicy.gated(per_user_cap, release_lag_s=QUOTA_RELEASE_LAG_S)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


class LoomcyclePorts:
    """:class:`~chaos.scenario.run.ScenarioPorts` over one cluster and one asyncpg pool."""

    def __init__(
        self,
        cluster: ScenarioCluster,
        pool: Any,
        prefix: str,
        *,
        owner_timeout_s: float = OWNER_PROBE_TIMEOUT_S,
    ) -> None:
        self.cluster = cluster
        self.pool = pool
        self.prefix = prefix
        self.reader = LoomcycleStateReader(pool)
        self.owner_timeout_s = owner_timeout_s

    async def snapshot(self) -> Snapshot:
        return await self.reader.snapshot(self.prefix)

    async def audit_after(self, seq: int) -> Sequence[AuditRow]:
        return await read_audit(self.pool, self.prefix, after_seq=seq)

    async def done_run_ids(self, run_ids: Sequence[str]) -> set[str]:
        # One query per run: tens to a few hundred per scenario, after the load.
        done: set[str] = set()
        for run_id in run_ids:
            if any(e.type == "done" for e in await self.reader.events(run_id)):
                done.add(run_id)
        return done

    async def ask_owner(self, replica_id: str, agent_id: str) -> OwnerAnswer:
        try:
            url = self.cluster.replica_url(replica_id)
        except (LookupError, RuntimeError) as exc:
            return OwnerAnswer(live=False, error=f"no address for {replica_id}: {exc}")
        client = client_for(self.cluster, url)
        try:
            async with asyncio.timeout(self.owner_timeout_s):
                answer = await client.status(agent_id)
        except Exception as exc:
            return OwnerAnswer(live=False, error=describe_error(exc))
        finally:
            with contextlib.suppress(Exception):
                await client.aclose()
        if answer is None:
            return OwnerAnswer(live=False, error="404 unknown_agent_id")
        return OwnerAnswer(
            live=answer.get("live") is True,
            run_id=_opt_str(answer.get("run_id")),
            status=_opt_str(answer.get("status")),
        )


async def _audit_teardown(pool: Any) -> None:
    """Remove the triggers (rows kept); a courtesy, so it never masks the test's outcome."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(DB_SETUP_TIMEOUT_S), pool.acquire() as conn:
            await uninstall_audit(conn)


async def _close_pool(pool: Any) -> None:
    try:
        async with asyncio.timeout(DB_SETUP_TIMEOUT_S):
            await pool.close()
    except Exception:
        pool.terminate()


@asynccontextmanager
async def scenario_run(
    cluster: ScenarioCluster,
    history: History,
    prefix: str,
    *,
    sample_interval_s: float = 1.0,
    settle_s: float = 30.0,
    **param_overrides: Any,
) -> AsyncIterator[ScenarioRun]:
    """A :class:`ScenarioRun` on a ready cluster, with the audit triggers installed.

    ``param_overrides`` are CheckParams fields this scenario sets on purpose
    (see :func:`chaos.sut.loomcycle.params.params_for`).
    """
    params = params_for(cluster.spec, cluster.replica_ids, prefix, **param_overrides)
    async with asyncio.timeout(DB_SETUP_TIMEOUT_S):
        pool = await asyncpg.create_pool(cluster.pg_dsn, min_size=1, max_size=4)
    try:
        async with asyncio.timeout(DB_SETUP_TIMEOUT_S), pool.acquire() as conn:
            await install_audit(conn)
        ports = LoomcyclePorts(cluster, pool, prefix)
        async with ScenarioRun(
            history, params, ports, sample_interval_s=sample_interval_s, settle_s=settle_s
        ) as run:
            yield run
    finally:
        await _audit_teardown(pool)
        await _close_pool(pool)


@asynccontextmanager
async def replica_clients(cluster: ScenarioCluster) -> AsyncIterator[Mapping[str, RunClient]]:
    """One client per replica, on its own published port (for picking who cancels).

    Ports change when a replica restarts: open these after any restart.
    """
    clients = {rid: client_for(cluster, cluster.replica_url(rid)) for rid in cluster.replica_ids}
    try:
        yield clients
    finally:
        await asyncio.gather(*(c.aclose() for c in clients.values()), return_exceptions=True)


@asynccontextmanager
async def started_runs(
    cluster: ScenarioCluster,
    history: History,
    reqs: Sequence[RunRequest],
    *,
    via: str = "lb",
    poll_timeout_s: float = 30.0,
    run_timeout_s: float = 120.0,
) -> AsyncIterator[asyncio.Task[list[RunResult]]]:
    """Runs started in the background, under the per-user gate, through the load balancer
    (``via="lb"``) or straight to one replica; awaited (or cancelled) on the way out.
    ``run_timeout_s`` bounds each run, queue wait included (see :class:`Driver`)."""
    url = cluster.lb_url if via == "lb" else cluster.replica_url(via)
    client = client_for(cluster, url)
    try:
        driver = Driver(
            client,
            history,
            via=via,
            policy=gated_policy(settings_of(cluster.spec).max_runs_per_user),
            poll_timeout_s=poll_timeout_s,
            run_timeout_s=run_timeout_s,
        )
        task = asyncio.create_task(run_many(driver, reqs))
        try:
            yield task
            await task
        finally:
            if not task.done():
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        await client.aclose()


@asynccontextmanager
async def lb_client(cluster: ScenarioCluster) -> AsyncIterator[RunClient]:
    client = client_for(cluster, cluster.lb_url)
    try:
        yield client
    finally:
        await client.aclose()
