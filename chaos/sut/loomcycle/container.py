"""``LoomcycleContainer``: one loomcycle replica as a testcontainers module.

It is started exactly as the cluster starts a replica: the adapter's
:meth:`~chaos.sut.loomcycle.adapter.LoomcycleAdapter.replica_launch` gives
the command (after the image's ENTRYPOINT, which is the binary), the
environment (Postgres storage, replica id, timers, mock provider) and the
config file, which testcontainers copies in after create and before start
(``with_copy_into_container``, a tar put into the created container), so no
host bind mount is needed and the distroless public image works too.

Ready means ``GET /healthz`` answers 200 and lists the replica's own id: the
replica has migrated, registered itself and can read its table.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from testcontainers.core.wait_strategies import HttpWaitStrategy

from chaos.cluster.addresses import localhost_url
from chaos.cluster.spec import ClusterSpec
from chaos.containers.base import SuiteContainer
from chaos.containers.settings import local_image
from chaos.sut.loomcycle import build
from chaos.sut.loomcycle.adapter import LoomcycleAdapter, cluster_ready
from chaos.sut.loomcycle.client import LoomcycleClient, health_from

#: Migrations on an empty database plus registration take a few seconds here.
STARTUP_TIMEOUT_S = 60
CONFIG_FILE_MODE = 0o644


def default_image(env: Mapping[str, str] | None = None) -> str:
    """``$LOOMCHAOS_LOOMCYCLE_IMAGE`` if set, else the locally built replica image."""
    env = os.environ if env is None else env
    return env.get(build.ENV_IMAGE) or local_image("loomcycle", env)


def healthz_lists(body: str, replica_id: str) -> bool:
    """Whether a ``/healthz`` body says ok and lists ``replica_id`` (never raises:
    testcontainers' HTTP wait treats an exception in its predicate as fatal)."""
    try:
        data: Any = json.loads(body)
    except ValueError:
        return False
    if not isinstance(data, dict):
        return False
    return cluster_ready(health_from(data), (replica_id,))


class LoomcycleContainer(SuiteContainer):
    """One loomcycle replica on the Postgres at ``pg_dsn`` (as the container sees it).

    ``spec`` supplies timers, mock provider, caps and token as for a cluster
    replica (default :class:`ClusterSpec`); pass ``network=`` (a
    testcontainers ``Network`` the Postgres is on) so the DSN's host resolves.
    """

    role = "replica"

    def __init__(
        self,
        pg_dsn: str,
        *,
        replica_id: str = "r1",
        spec: ClusterSpec | None = None,
        image: str | None = None,
        session_id: str | None = None,
        startup_timeout: int = STARTUP_TIMEOUT_S,
        **kwargs: Any,
    ) -> None:
        self.spec = spec or ClusterSpec()
        self.replica_id = replica_id
        self.adapter = LoomcycleAdapter.for_spec(self.spec)
        self.launch = self.adapter.replica_launch(self.spec, replica_id, pg_dsn)
        super().__init__(
            image or default_image(), session_id=session_id, env=dict(self.launch.env), **kwargs
        )
        self.with_command(list(self.launch.command))
        self.with_exposed_ports(self.launch.port)
        for path, content in self.launch.files.items():
            self.with_copy_into_container(content, path, CONFIG_FILE_MODE)
        self.waiting_for(
            HttpWaitStrategy(self.launch.port, self.launch.health_path)
            .for_response_predicate(lambda body: healthz_lists(body, replica_id))
            .with_startup_timeout(startup_timeout)
            .with_poll_interval(0.2)
        )

    def base_url(self) -> str:
        """The replica's API on the host, ``http://127.0.0.1:<port>``."""
        return localhost_url(self.get_exposed_port(self.launch.port))

    def client(self) -> LoomcycleClient:
        """The suite's async client for this replica (close it with ``aclose``)."""
        return self.adapter.client(self.base_url())
