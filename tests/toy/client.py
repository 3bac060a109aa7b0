"""An async HTTP/SSE :class:`~chaos.sut.base.RunClient` for the toy service.

Same timeout policy as any run client: a run's stream has no read timeout
(the run's own length decides), every other call is short so a frozen
replica cannot stall a probe.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote

import httpx
from httpx_sse import aconnect_sse

from chaos.record.vocabulary import CancelClass
from chaos.sut.base import CancelResult, Health, Rejection, RunRejected, RunRequest, StreamEvent

TERMINAL_EVENTS = frozenset({"done", "error"})


class ToyStreamError(Exception):
    """The stream ended without ``done``/``error``, or was not a stream."""


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _object(text: str) -> dict[str, Any]:
    value = _json(text)
    return value if isinstance(value, dict) else {"raw": text}


def health_from(body: Mapping[str, Any]) -> Health:
    """``/healthz``: ``replicas`` is absent when the replica could not read its table."""
    replicas = body.get("replicas")
    ids = (
        tuple(str(r["id"]) for r in replicas if isinstance(r, dict) and "id" in r)
        if isinstance(replicas, list)
        else None
    )
    replica_id, version = body.get("replica_id"), body.get("version")
    return Health(
        ok=body.get("ok") is True,
        replica_id=replica_id if isinstance(replica_id, str) else None,
        version=version if isinstance(version, str) else None,
        replica_ids=ids,
    )


def classify_cancel(status: int, body: Mapping[str, Any]) -> CancelClass:
    """The toy's cancel answers in the suite's vocabulary (it has no backplane, so a run
    owned elsewhere is always ``owner_unreachable``)."""
    if status == 200 and body.get("cancelled") is True:
        return "acknowledged"
    if status == 200 and body.get("cancelled") is False:
        if body.get("reason") == "owner_replica_unreachable":
            return "owner_unreachable"
        if body.get("status") in ("completed", "failed", "cancelled"):
            return "already_terminal"
    return "unknown"


class ToyClient:
    """Talks to one base URL: the load balancer or one replica's published port."""

    def __init__(self, base_url: str, *, connect_timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(15.0, connect=connect_timeout),
            limits=httpx.Limits(max_connections=500, max_keepalive_connections=50),
        )
        self._stream_timeout = httpx.Timeout(
            connect=connect_timeout, read=None, write=connect_timeout, pool=None
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def start_run(self, req: RunRequest) -> AsyncIterator[StreamEvent]:
        body = {"agent_id": req.agent_id, "user_id": req.user_id}
        async with aconnect_sse(
            self._http, "POST", "/runs", json=body, timeout=self._stream_timeout
        ) as source:
            resp = source.response
            if resp.status_code != 200:
                text = (await resp.aread()).decode("utf-8", errors="replace")
                code = _object(text).get("code")
                raise RunRejected(
                    Rejection(resp.status_code, code if isinstance(code, str) else None, text)
                )
            if "text/event-stream" not in resp.headers.get("content-type", ""):
                raise ToyStreamError(f"HTTP {resp.status_code} but not a stream")
            async for sse in source.aiter_sse():
                yield StreamEvent(type=sse.event, data=_object(sse.data), mono=time.monotonic())
                if sse.event in TERMINAL_EVENTS:
                    return
        raise ToyStreamError("stream closed before a done or error event")

    async def status(self, agent_id: str) -> Mapping[str, Any] | None:
        resp = await self._http.get(f"/agents/{quote(agent_id, safe='')}")
        if resp.status_code == 404:
            return None
        resp.raise_for_status()
        return _object(resp.text)

    async def cancel(self, agent_id: str, reason: str | None = None) -> CancelResult:
        started = time.monotonic()
        resp = await self._http.post(
            f"/agents/{quote(agent_id, safe='')}/cancel", json={"reason": reason or ""}
        )
        body = _object(resp.text)
        return CancelResult(
            http_status=resp.status_code,
            body=body,
            classification=classify_cancel(resp.status_code, body),
            latency_s=time.monotonic() - started,
        )

    async def health(self) -> Health:
        resp = await self._http.get("/healthz")
        resp.raise_for_status()
        return health_from(_object(resp.text))
