"""testcontainers' own ``PostgresContainer`` with the suite's rules and local image.

The local image (``loomchaos/postgres:local``) keeps the official image's
entrypoint contract (``POSTGRES_USER`` / ``POSTGRES_PASSWORD`` /
``POSTGRES_DB``) and has ``psql``, which testcontainers' readiness check
(``psql ... -c 'select version();'`` inside the container, bounded by its
configured timeout, 120 s by default) needs; so the class is used as is.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from testcontainers.community.postgres import PostgresContainer

from chaos.containers.base import SuiteContainer
from chaos.containers.settings import local_image

PORT = 5432


def network_dsn(username: str, password: str, alias: str, dbname: str) -> str:
    """A URL DSN for a container on the same network (TLS off: the images have no certificate)."""
    user, secret = quote(username, safe=""), quote(password, safe="")
    return f"postgres://{user}:{secret}@{alias}:{PORT}/{quote(dbname, safe='')}?sslmode=disable"


class SuitePostgresContainer(SuiteContainer, PostgresContainer):
    """``PostgresContainer`` on the local image, labelled, published on 127.0.0.1."""

    role = "postgres"

    def __init__(
        self,
        image: str | None = None,
        *,
        username: str = "chaos",
        password: str = "chaos",
        dbname: str = "chaos",
        session_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            image or local_image("postgres"),
            session_id=session_id,
            username=username,
            password=password,
            dbname=dbname,
            # No SQLAlchemy driver suffix: the URL is for asyncpg and libpq.
            driver=None,
            **kwargs,
        )

    def host_dsn(self) -> str:
        """The DSN from the host (``postgresql://...@127.0.0.1:<published port>/db``)."""
        return str(self.get_connection_url(driver=None))

    def network_dsn(self, alias: str) -> str:
        """The DSN for another container on the same network, by ``alias``."""
        return network_dsn(self.username, self.password, alias, self.dbname)
