"""``ToxiproxyContainer``: a Toxiproxy server as a testcontainers module.

testcontainers-python has no Toxiproxy module.  This one starts the suite's
local image (``loomchaos/toxiproxy:local``, API on 8474), is ready when the
API answers ``GET /version``, and publishes on 127.0.0.1 the API port and
every proxy listen port declared before start (Docker cannot publish a port
on a running container, so they must be known up front).

The API is driven with httpx, not ``toxiproxy-python`` (0.1.1, measured
against Toxiproxy v2.12.0): its calls have no timeout (one to a paused server
was still blocked after 8 s and returned only when the server resumed), it
keeps the server address in class attributes (a proxy created through the
object for server A landed on server B once B's object had been pointed
at B), and a 500 answer surfaces as ``KeyError: 'name'`` with the server's
message lost.  README, "Libraries and why", has the whole measurement.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Self

import httpx
from testcontainers.core.wait_strategies import HttpWaitStrategy

from chaos.cluster.addresses import localhost_url
from chaos.cluster.toxiproxy import Proxy, ToxiproxyClient, ToxiproxyError
from chaos.containers.base import SuiteContainer
from chaos.containers.settings import local_image

API_PORT = 8474
VERSION_PATH = "/version"
#: Seconds the server gets to answer its API; it starts in well under one.
STARTUP_TIMEOUT_S = 30
#: Deadline of one set-up call to the API.
API_TIMEOUT_S = 10.0


def listen_address(port: int) -> str:
    """A proxy's ``listen`` inside the container: every interface, so Docker's
    port publishing and other containers on the network both reach it."""
    if not 0 < port < 65536 or port == API_PORT:
        raise ValueError(f"proxy listen port {port} is out of range or the API's own")
    return f"0.0.0.0:{port}"


class ToxiproxyContainer(SuiteContainer):
    """A Toxiproxy server; ``proxy_ports`` are the listen ports to publish.

    >>> with ToxiproxyContainer(proxy_ports=[15432]) as tp:  # doctest: +SKIP
    ...     tp.create_proxy("pg", upstream="pg:5432", listen_port=15432)
    ...     tp.proxy_port(15432)   # the host port on 127.0.0.1
    """

    role = "toxiproxy"

    def __init__(
        self,
        image: str | None = None,
        *,
        proxy_ports: Iterable[int] = (),
        session_id: str | None = None,
        startup_timeout: int = STARTUP_TIMEOUT_S,
        **kwargs: Any,
    ) -> None:
        super().__init__(image or local_image("toxiproxy"), session_id=session_id, **kwargs)
        self._proxy_ports: set[int] = set()
        self.with_exposed_ports(API_PORT)
        self.with_proxy_ports(*proxy_ports)
        self.waiting_for(
            HttpWaitStrategy(API_PORT, VERSION_PATH)
            .with_startup_timeout(startup_timeout)
            .with_poll_interval(0.1)
        )

    def with_proxy_ports(self, *listen_ports: int) -> Self:
        """Publish these proxy listen ports (before start)."""
        for port in listen_ports:
            listen_address(port)
            self._proxy_ports.add(port)
            self.with_exposed_ports(port)
        return self

    def api_url(self) -> str:
        """The API's base URL on the host, ``http://127.0.0.1:<port>``."""
        return localhost_url(self.get_exposed_port(API_PORT))

    def proxy_port(self, listen_port: int) -> int:
        """The host port (on 127.0.0.1) published for a proxy's listen port."""
        if listen_port not in self._proxy_ports:
            raise KeyError(
                f"listen port {listen_port} was not published: pass it in proxy_ports "
                "or with_proxy_ports() before start"
            )
        return self.get_exposed_port(listen_port)

    def create_proxy(self, name: str, *, upstream: str, listen_port: int) -> Proxy:
        """Create a proxy listening on a published port (blocking: for set-up code).

        ``upstream`` is as the Toxiproxy container sees it (a network alias
        and port).  Tests that time anything use :meth:`client` instead.
        """
        if listen_port not in self._proxy_ports:
            raise KeyError(f"listen port {listen_port} was not published before start")
        body = {"name": name, "listen": listen_address(listen_port), "upstream": upstream}
        resp = httpx.post(f"{self.api_url()}/proxies", json=body, timeout=API_TIMEOUT_S)
        if resp.status_code >= 400:
            raise ToxiproxyError(f"POST /proxies -> {resp.status_code}: {resp.text.strip()}")
        return Proxy.from_json(resp.json())

    def client(self) -> ToxiproxyClient:
        """The suite's async client for this server (close it with ``aclose``)."""
        return ToxiproxyClient(self.api_url())
