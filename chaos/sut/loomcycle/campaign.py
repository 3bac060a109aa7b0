"""The loomcycle side of a campaign: its /metrics gauges, the cluster a campaign asks for,
the single-binary launch of the baseline, and the test-only sabotage that breaks an
invariant behind the history's back.

The gauge names are read from v1.59.0's ``internal/api/http/metrics_prom.go``
(``handleMetricsProm``, served at ``GET /metrics`` with admin scope): a live
read of ``runtime.NumGoroutine()`` and the replica's semaphore (``active``,
``queued``).  Its ``loomcycle_process_rss_bytes`` is ``MemStats.Sys`` (memory
obtained from the OS, not resident), so a campaign takes RSS from the
container's cgroup instead.  A build without an endpoint or a gauge gives
``None`` for it (an empty cell), never an error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import asyncpg
from prometheus_client.parser import text_string_to_metric_families

from chaos.cluster.launch import ReplicaLaunch
from chaos.cluster.spec import ClusterSpec
from chaos.record.history import History
from chaos.record.readers import circuit_output_keys, record_circuit_outputs
from chaos.sut.base import Health
from chaos.sut.loomcycle.adapter import LoomcycleAdapter
from chaos.sut.loomcycle.client import LoomcycleClient
from chaos.sut.loomcycle.settings import CRASH_TIMERS, MockProvider, Timers, loomcycle_spec
from chaos.sut.postgres import like_prefix

METRICS_PATH = "/metrics"
GOROUTINES = "loomcycle_process_goroutines"
ACTIVE_RUNS = "loomcycle_concurrency_active"
QUEUED_RUNS = "loomcycle_concurrency_queued"
#: A scrape slower than this is a gap in the samples, not a stall of the sampler.
SCRAPE_TIMEOUT_S = 2.0
#: One memory read of a circuit's output.
MEMORY_READ_TIMEOUT_S = 10.0
#: The sabotage's one statement must not hang a test.
SABOTAGE_TIMEOUT_S = 20.0
SABOTAGE_REASON = "loomchaos sabotage: rewritten behind the history's back"


@dataclass(frozen=True)
class ReplicaGauges:
    """One replica's live gauges; ``None`` where the endpoint or the gauge is missing."""

    goroutines: float | None = None
    active_runs: float | None = None
    queued_runs: float | None = None


def parse_gauges(text: str) -> ReplicaGauges:
    """The three gauges from a Prometheus text page (the first sample of each name).

    A page the parser refuses gives an empty :class:`ReplicaGauges`.
    """
    found: dict[str, float] = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                found.setdefault(sample.name, float(sample.value))
    except ValueError:
        return ReplicaGauges()
    return ReplicaGauges(
        goroutines=found.get(GOROUTINES),
        active_runs=found.get(ACTIVE_RUNS),
        queued_runs=found.get(QUEUED_RUNS),
    )


class GaugeReader:
    """Reads each replica's ``/metrics`` on its own published port (one client per URL)."""

    def __init__(self, token: str) -> None:
        self.token = token
        self._clients: dict[str, LoomcycleClient] = {}

    async def read(self, url: str) -> ReplicaGauges:
        client = self._clients.get(url)
        if client is None:
            client = LoomcycleClient(url, self.token, max_connections=2, stream_pools=1)
            self._clients[url] = client
        try:
            async with asyncio.timeout(SCRAPE_TIMEOUT_S):
                status, text = await client.get_text(METRICS_PATH)
        except Exception:  # a replica that is down or slow leaves a gap in the samples
            return ReplicaGauges()
        return parse_gauges(text) if status == 200 else ReplicaGauges()

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)


def campaign_spec(
    *,
    replicas: int,
    latency_ms: int,
    jitter_ms: int,
    per_user_cap: int,
    max_concurrent_runs: int,
    pg_settings: Mapping[str, str] | None = None,
    replica_env: Mapping[str, str] | None = None,
    timers: Timers = CRASH_TIMERS,
    circuits: int = 0,
) -> ClusterSpec:
    """The cluster a campaign runs on.  Always ``destructive``: a campaign owns its cluster.

    ``circuits`` declares the channels of circuit ids ``c1..c<circuits>`` at boot.
    """
    return loomcycle_spec(
        circuits=circuits,
        replicas=replicas,
        timers=timers,
        mock=MockProvider(latency_ms=latency_ms, jitter_ms=jitter_ms),
        max_runs_per_user=per_user_cap,
        max_concurrent_runs=max_concurrent_runs,
        # Room for a queue as deep as the replica's slots: bursts above the knee queue
        # instead of being refused at once (the write-up's admission shape).
        max_queue_depth=max(64, max_concurrent_runs),
        pg_settings=tuple(sorted((pg_settings or {}).items())),
        replica_env=tuple(sorted((replica_env or {}).items())),
        destructive=True,
    )


# -- single-binary mode: the baseline (write-up experiment 1) ------------------------

#: Cluster mode's switch: loomcycle v1.59.0 enters it only when this is set
#: (cmd/loomcycle/main.go:2375-2386, internal/config/config.go:4242); unset, the
#: same binary on the same Postgres store runs without coord: no replicas table,
#: no LISTEN/NOTIFY backplane, per-user slots counted in the process.
REPLICA_ID_ENV = "LOOMCYCLE_REPLICA_ID"

#: Checkers with nothing to judge without cluster mode, and why (the campaign reports
#: them as not applicable, chaos.campaign.modes).
CLUSTER_ONLY: Mapping[str, str] = {
    "no_quota_leaks": (
        "per-user slots are counted inside the process without cluster mode "
        "(loomcycle internal/coord/user_quota_store.go:12-16); the user_quotas table "
        "this checker reads is never written"
    ),
    "load_spread": (
        "one process owns every run and runs.replica_id stays NULL without cluster "
        "mode (loomcycle internal/store/store.go:744): there is no spread to judge"
    ),
}


def single_binary_health(health: Health, replica_id: str) -> Health:
    """A single-binary ``/healthz`` read as the cluster's readiness wants it.

    Outside cluster mode ``/healthz`` has no cluster view (server.go:3301: no
    ``replica_id``, no ``replicas``), so the one process is ready when it says
    ok and has none: it is then listed as ``replica_id``, the one node the
    cluster started.  A body *with* a cluster view means the process is in
    cluster mode after all: not ready, so the leg fails at start instead of
    measuring the wrong mode.
    """
    if not health.ok or health.replica_id is not None or health.replica_ids is not None:
        return Health(
            ok=False, replica_id=health.replica_id, version=health.version, replica_ids=None
        )
    return Health(ok=True, replica_id=None, version=health.version, replica_ids=(replica_id,))


class SingleBinaryClient(LoomcycleClient):
    """A client of the one single-binary process; only its health reading differs."""

    def __init__(self, base_url: str, token: str | None, replica_id: str) -> None:
        super().__init__(base_url, token)
        self.replica_id = replica_id

    async def health(self) -> Health:
        return single_binary_health(await super().health(), self.replica_id)


class SingleBinaryAdapter(LoomcycleAdapter):
    """loomcycle without cluster mode: the replica launch minus the replica id.

    Everything else is the cluster replica's launch (Postgres store, timers,
    mock provider, caps), so the baseline differs from a one-replica cluster in
    the mode alone.  One node only: the cluster's node id (``r1``) names it.
    """

    replica_id = "r1"

    def replica_launch(self, spec: ClusterSpec, replica_id: str, pg_dsn: str) -> ReplicaLaunch:
        if spec.replicas != 1 or replica_id != self.replica_id:
            raise ValueError(
                f"single-binary mode runs one process ({self.replica_id}); got "
                f"{spec.replicas} replica(s), asked for {replica_id!r}"
            )
        launch = super().replica_launch(spec, replica_id, pg_dsn)
        env = {k: v for k, v in launch.env.items() if k != REPLICA_ID_ENV}
        return replace(launch, env=env)

    def client(self, base_url: str) -> SingleBinaryClient:
        return SingleBinaryClient(base_url, self.auth_token, self.replica_id)


async def read_circuit_outputs(
    url: str, token: str, history: History, circuits: Sequence[tuple[str, str]]
) -> int:
    """Read back each completed circuit's three user-memory outputs into the history
    (``circuit_outputs`` notes, which ``no_silent_regressions`` judges); returns how many.

    ``circuits`` are ``(circuit id, user id)`` pairs.  A read that fails is recorded
    as the error text, so the checker reports it instead of a silent gap.
    """
    async with LoomcycleClient(url, token, max_connections=8, stream_pools=1) as client:
        for circuit, user in circuits:
            outputs: dict[str, Any] = {}
            for key in circuit_output_keys(circuit):
                try:
                    async with asyncio.timeout(MEMORY_READ_TIMEOUT_S):
                        outputs[key] = await client.memory_value(user, key)
                except Exception as exc:
                    outputs[key] = None
                    outputs[f"{key}:error"] = f"{type(exc).__name__}: {exc}"[:200]
            record_circuit_outputs(history, circuit, user, outputs)
    return len(circuits)


async def sabotage_completed_run(pg_dsn: str, prefix: str) -> str | None:
    """Turn one completed run of ``prefix`` into ``failed`` behind the history's back.

    For the suite's own test that a campaign exits non-zero when an invariant
    breaks (``terminal_is_final``: a terminal row left its state).  Returns the
    run id, or None when no run of the prefix had completed.
    """
    async with asyncio.timeout(SABOTAGE_TIMEOUT_S):
        conn: Any = await asyncpg.connect(pg_dsn)
        try:
            run_id = await conn.fetchval(
                "UPDATE runs SET status = 'failed', stop_reason = $2 WHERE id = ("
                "  SELECT id FROM runs WHERE agent_id LIKE $1 AND status = 'completed'"
                "  ORDER BY id LIMIT 1) RETURNING id",
                like_prefix(prefix),
                SABOTAGE_REASON,
            )
        finally:
            await conn.close()
    return None if run_id is None else str(run_id)
