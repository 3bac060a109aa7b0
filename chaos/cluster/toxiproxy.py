"""A thin async client for Toxiproxy's documented HTTP API.

Why our own, measured with toxiproxy-python 0.1.1 against Toxiproxy v2.12.0:
it keeps the server address in a class attribute (a proxy meant for one
server landed on another once a second client was pointed elsewhere); its
calls have no timeout (``disable()`` to a paused server still hung after 8 s)
and block the event loop (a 3 s pause stalled the loop 3.03 s, which would
corrupt every latency the loop is timing); and it loses the server's errors
(a 500 "address already in use" surfaced as ``KeyError: 'name'``).  The API
is small and stable, so a few ``httpx`` calls are cheaper than working
around it.  README, "Libraries and why", has the table.

Semantics worth knowing (measured in tests/chaos/test_faults_link.py; they
decide what a fault means):

* ``enabled=false`` closes the listener and every open connection, and
  re-enabling does not revive them.  Through Docker's userland port proxy a
  new connect from the host is accepted and closed at once rather than refused.
* ``timeout`` toxic with ``timeout=0`` drops data and closes nothing itself
  (black hole), though a close the server starts still passes through.
  Removing it closes every connection that was open while it was in force,
  idle ones included; only new connections work again.  ``timeout>0``
  closes the connection after that many ms.
* ``reset_peer`` closes with RST after ``timeout`` ms.
* A very long ``latency`` toxic is a stall: data is held, not dropped, and
  removing the toxic delivers it.
* ``bandwidth`` ``rate`` is in KB/s with K = 1000; ``limit_data`` counts bytes
  per connection.
* ``POST /reset`` re-enables every proxy and removes every toxic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import httpx

Stream = Literal["upstream", "downstream"]


class ToxiproxyError(RuntimeError):
    """Toxiproxy answered with an error status; the message carries its body."""


@dataclass(frozen=True)
class Proxy:
    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: tuple[dict[str, Any], ...] = ()

    @staticmethod
    def from_json(data: dict[str, Any]) -> Proxy:
        return Proxy(
            name=str(data["name"]),
            listen=str(data["listen"]),
            upstream=str(data["upstream"]),
            enabled=bool(data.get("enabled", True)),
            toxics=tuple(data.get("toxics") or ()),
        )


class ToxiproxyClient:
    """One client per Toxiproxy server; ``base_url`` is its published API address."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> ToxiproxyClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _call(self, method: str, path: str, json: Any = None) -> Any:
        resp = await self._http.request(method, path, json=json)
        if resp.status_code >= 400:
            raise ToxiproxyError(f"{method} {path} -> {resp.status_code}: {resp.text.strip()}")
        if resp.status_code == 204 or not resp.content:
            return None
        return resp.json()

    async def version(self) -> str:
        resp = await self._http.get("/version")
        resp.raise_for_status()
        return resp.text.strip().strip('"')

    async def create_proxy(
        self, name: str, listen: str, upstream: str, *, enabled: bool = True
    ) -> Proxy:
        body = {"name": name, "listen": listen, "upstream": upstream, "enabled": enabled}
        return Proxy.from_json(await self._call("POST", "/proxies", body))

    async def proxies(self) -> dict[str, Proxy]:
        data = await self._call("GET", "/proxies")
        return {name: Proxy.from_json(p) for name, p in (data or {}).items()}

    async def set_enabled(self, name: str, enabled: bool) -> Proxy:
        return Proxy.from_json(await self._call("POST", f"/proxies/{name}", {"enabled": enabled}))

    async def delete_proxy(self, name: str) -> None:
        await self._call("DELETE", f"/proxies/{name}")

    async def add_toxic(
        self,
        proxy: str,
        *,
        name: str,
        type: str,
        stream: Stream = "downstream",
        toxicity: float = 1.0,
        attributes: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        body = {
            "name": name,
            "type": type,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": attributes or {},
        }
        result: dict[str, Any] = await self._call("POST", f"/proxies/{proxy}/toxics", body)
        return result

    async def toxics(self, proxy: str) -> list[dict[str, Any]]:
        return list(await self._call("GET", f"/proxies/{proxy}/toxics") or [])

    async def remove_toxic(self, proxy: str, name: str) -> None:
        await self._call("DELETE", f"/proxies/{proxy}/toxics/{name}")

    async def reset(self) -> None:
        """Enable every proxy and remove every toxic (used between tests)."""
        await self._call("POST", "/reset")
