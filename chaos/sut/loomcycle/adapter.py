"""The loomcycle :class:`~chaos.sut.base.TargetAdapter`."""

from __future__ import annotations

from collections.abc import Iterable

from chaos.cluster.launch import ReplicaLaunch, TargetAdapter
from chaos.cluster.spec import ClusterSpec
from chaos.sut.base import Health, RunClient, StateReader
from chaos.sut.loomcycle import config
from chaos.sut.loomcycle.build import VERSION
from chaos.sut.loomcycle.client import LoomcycleClient
from chaos.sut.loomcycle.settings import LoomcycleSettings, settings_of
from chaos.sut.loomcycle.sql import LoomcycleStateReader, Queryable

NAME = "loomcycle"
#: In cluster mode a finished run's per-user slot is given back by a background
#: goroutine with its own 5 s context (v1.59.0 internal/concurrency/semaphore.go:285-295,
#: called at :366, :386, :419), after the stream has ended: a client can see ``done``
#: and be refused for that slot for up to this long.
QUOTA_RELEASE_LAG_S = 5.0


def cluster_ready(health: Health, replica_ids: Iterable[str]) -> bool:
    """A replica is ready when its /healthz lists every replica id.

    ``ok`` alone says nothing: it stays true when the replica cannot read
    its own table (then ``replica_ids`` is None).
    """
    if not health.ok or health.replica_ids is None:
        return False
    return set(replica_ids) <= set(health.replica_ids)


class LoomcycleAdapter:
    """Launch recipe, client factory and state reader for loomcycle.

    The bearer token is fixed per adapter because :meth:`client` gets only a
    URL; build the adapter with :meth:`for_spec` so token and replicas agree.
    """

    name: str = NAME
    version: str = VERSION

    def __init__(self, auth_token: str = LoomcycleSettings().auth_token) -> None:
        self.auth_token = auth_token

    @classmethod
    def for_spec(cls, spec: ClusterSpec) -> LoomcycleAdapter:
        return cls(auth_token=settings_of(spec).auth_token)

    def replica_launch(self, spec: ClusterSpec, replica_id: str, pg_dsn: str) -> ReplicaLaunch:
        if settings_of(spec).auth_token != self.auth_token:
            raise ValueError(
                "settings_of(spec).auth_token differs from the adapter's token; "
                "build the adapter with LoomcycleAdapter.for_spec(spec)"
            )
        return ReplicaLaunch(
            command=config.replica_command(),
            env=config.render_env(spec, replica_id, pg_dsn),
            files=config.config_files(spec),
            port=config.PORT,
            health_path=config.HEALTH_PATH,
        )

    def client(self, base_url: str) -> LoomcycleClient:
        return LoomcycleClient(base_url, self.auth_token)

    def state_reader(self, db: Queryable) -> LoomcycleStateReader:
        return LoomcycleStateReader(db)


# Static conformance: mypy fails here if a protocol in chaos.sut.base drifts
# away from this adapter (the classes do not inherit from the protocols).
def _as_target_adapter(adapter: LoomcycleAdapter) -> TargetAdapter:
    return adapter


def _as_run_client(client: LoomcycleClient) -> RunClient:
    return client


def _as_state_reader(reader: LoomcycleStateReader) -> StateReader:
    return reader
