"""The toy's :class:`~chaos.cluster.launch.TargetAdapter`: launch recipe and client."""

from __future__ import annotations

from dataclasses import dataclass

from chaos.cluster.launch import ReplicaLaunch, TargetAdapter
from chaos.cluster.spec import ClusterSpec
from chaos.sut.base import RunClient
from tests.toy.client import ToyClient

NAME = "toy"
VERSION = "toy-0.1"
PORT = 8787
#: How long a run lasts before ``done`` unless the spec's replica env says otherwise.
DEFAULT_RUN_MS = 3_000
#: The planted defect: the reaper keeps a dead owner's quota slots.
DEFECT_ENV = "TOY_DEFECT_KEEP_SLOT"


@dataclass(frozen=True)
class ToySettings:
    """The toy's own settings, carried by a ClusterSpec as its opaque ``target``."""

    stale_ms: int = 6_000
    sweep_ms: int = 1_000
    cap: int = 3


def toy_settings(spec: ClusterSpec) -> ToySettings:
    if not isinstance(spec.target, ToySettings):
        raise TypeError(f"not a toy spec: target={spec.target!r}")
    return spec.target


def replica_env(spec: ClusterSpec, replica_id: str, pg_dsn: str) -> dict[str, str]:
    """The service's environment; the spec's ``replica_env`` comes last and wins."""
    sep = "&" if "?" in pg_dsn else "?"
    return {
        "REPLICA_ID": replica_id,
        # pgxpool reads its size from the DSN.
        "PG_DSN": f"{pg_dsn}{sep}pool_max_conns={spec.pool_size}",
        "LISTEN_ADDR": f":{PORT}",
        "STALE_MS": str(toy_settings(spec).stale_ms),
        "SWEEP_MS": str(toy_settings(spec).sweep_ms),
        "CAP": str(toy_settings(spec).cap),
        "RUN_MS": str(DEFAULT_RUN_MS),
        **dict(spec.replica_env),
    }


class ToyAdapter:
    name: str = NAME
    version: str = VERSION

    def replica_launch(self, spec: ClusterSpec, replica_id: str, pg_dsn: str) -> ReplicaLaunch:
        # The image's ENTRYPOINT is the service and it takes no arguments.
        return ReplicaLaunch(
            command=(), env=replica_env(spec, replica_id, pg_dsn), port=PORT, health_path="/healthz"
        )

    def client(self, base_url: str) -> ToyClient:
        return ToyClient(base_url)


# Static conformance, as the loomcycle adapter does it: a type checker run over tests/toy
# fails here if the protocols drift away from the toy (the classes do not inherit them).
def _as_target_adapter(adapter: ToyAdapter) -> TargetAdapter:
    return adapter


def _as_run_client(client: ToyClient) -> RunClient:
    return client
