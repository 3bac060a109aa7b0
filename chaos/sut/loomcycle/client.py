"""An async HTTP/SSE client for one loomcycle base URL (CONTRACT.md, "HTTP API").

One client talks to one address: the load balancer, or one replica's
published port when a test must pick the replica (a cross-replica cancel).
Runs are SSE responses tied to their request, so the stream's read timeout
is unbounded (a queued run blocks the POST until admission, and the server
sends a keepalive comment only every ``LOOMCYCLE_SSE_KEEPALIVE_MS``); every
other call has short, fixed timeouts so a frozen replica cannot stall a
probe forever.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from httpx_sse import aconnect_sse

from chaos.sut.base import (
    CancelResult,
    Health,
    Rejection,
    RunRejected,
    RunRequest,
    StreamEvent,
)
from chaos.sut.loomcycle.cancel import classify_cancel

#: Events after which loomcycle closes the stream.
TERMINAL_EVENTS = frozenset({"done", "error"})


class StreamError(Exception):
    """The run's stream ended without ``done``/``error``, or was not a stream.

    The run's outcome is unknown to the client (record it as ``info``).
    """


@dataclass(frozen=True)
class ConcurrencyStats:
    """``GET /v1/_concurrency/stats``: ``active``/``queued`` are the answering
    replica's own; ``per_user`` is the cluster-wide table (absent when the
    per-user cap is off)."""

    active: int
    queued: int
    per_user: Mapping[str, int] | None


def _decode_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _as_object(value: Any, text: str) -> dict[str, Any]:
    """A JSON object as a dict; anything else is wrapped so evidence is kept."""
    if isinstance(value, dict):
        return value
    if value is None:
        return {"raw": text}
    return {"value": value}


def rejection_from(status: int, text: str) -> Rejection:
    """A :class:`Rejection` from an error answer; ``code`` when the body carries one."""
    body = _decode_json(text)
    code = body.get("code") if isinstance(body, dict) else None
    return Rejection(status=status, code=code if isinstance(code, str) else None, body=text)


def run_body(req: RunRequest) -> dict[str, Any]:
    """The JSON body of ``POST /v1/runs``; optional fields only when set."""
    body: dict[str, Any] = {"agent": req.agent, "agent_id": req.agent_id, "prompt": req.prompt}
    if req.user_id is not None:
        body["user_id"] = req.user_id
    if req.session_id is not None:
        body["session_id"] = req.session_id
    if req.metadata:
        body["metadata"] = dict(req.metadata)
    return body


def health_from(body: Mapping[str, Any]) -> Health:
    """Parse ``/healthz``; ``replica_ids`` is None when ``replicas`` is absent
    (the replica could not read its table, though ``ok`` stays true)."""
    replicas = body.get("replicas")
    ids: tuple[str, ...] | None = None
    if isinstance(replicas, list):
        ids = tuple(str(r.get("id")) for r in replicas if isinstance(r, dict) and "id" in r)
    replica_id = body.get("replica_id")
    version = body.get("version")
    return Health(
        ok=body.get("ok") is True,
        replica_id=replica_id if isinstance(replica_id, str) else None,
        version=version if isinstance(version, str) else None,
        replica_ids=ids,
    )


def _quote(segment: str) -> str:
    return quote(segment, safe="")


class LoomcycleClient:
    """:class:`~chaos.sut.base.RunClient` for loomcycle.

    ``transport`` is for tests (``httpx.MockTransport``); ``clock`` stamps
    each stream event on arrival and times cancels (monotonic by default).
    """

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        connect_timeout: float = 5.0,
        request_timeout: float = 30.0,
        max_connections: int = 2000,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        stream_pools: int = 4,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._clock = clock
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout = httpx.Timeout(request_timeout, connect=connect_timeout)
        # Reads unbounded, the rest short: see the module docstring.  The pool
        # wait is unbounded too, because a workload may hold more streams than
        # the pool has slots and its own deadline decides when to give up.
        self._stream_timeout = httpx.Timeout(
            connect=connect_timeout, read=None, write=connect_timeout, pool=None
        )
        if stream_pools < 1:
            raise ValueError(f"stream_pools must be >= 1, got {stream_pools}")

        def pool(max_conns: int) -> httpx.AsyncClient:
            return httpx.AsyncClient(
                base_url=self.base_url,
                headers=headers,
                timeout=self._timeout,
                transport=transport,
                # The default of 100 connections would queue the 101st stream.
                limits=httpx.Limits(max_connections=max_conns, max_keepalive_connections=100),
            )

        self._http = pool(max_connections)
        # Streams are dealt over several pools because httpcore's pool scans every
        # queued request against every connection, so opening the n-th stream in one
        # pool costs O(n) and opening n streams O(n^2) (encode/httpcore#1035):
        # measured 14 ms per stream at 8,000 open in one pool, with loop stalls of
        # seconds that would surface as the driver's own connect timeouts.
        per_pool = max(1, max_connections // stream_pools)
        self._stream_pools = [pool(per_pool) for _ in range(stream_pools)]
        self._next_pool = itertools.cycle(self._stream_pools)

    async def __aenter__(self) -> LoomcycleClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()
        for stream_pool in self._stream_pools:
            await stream_pool.aclose()

    # -- runs -----------------------------------------------------------------

    async def start_run(self, req: RunRequest) -> AsyncIterator[StreamEvent]:
        """Yield the run's events until ``done``/``error`` (see RunClient).

        Raises :class:`RunRejected` on an error status before the stream,
        :class:`StreamError` when the stream ends without a terminal event,
        and httpx transport errors when the connection breaks.
        """
        async with aconnect_sse(
            next(self._next_pool),
            "POST",
            "/v1/runs",
            json=run_body(req),
            timeout=self._stream_timeout,
        ) as source:
            resp = source.response
            if not 200 <= resp.status_code < 300:
                text = (await resp.aread()).decode("utf-8", errors="replace")
                raise RunRejected(rejection_from(resp.status_code, text))
            ctype = resp.headers.get("content-type", "")
            if "text/event-stream" not in ctype:
                text = (await resp.aread()).decode("utf-8", errors="replace")
                raise StreamError(
                    f"HTTP {resp.status_code} with content-type {ctype!r}, not a stream: "
                    f"{text[:300]}"
                )
            async for sse in source.aiter_sse():
                mono = self._clock()
                data = _as_object(_decode_json(sse.data), sse.data)
                yield StreamEvent(type=sse.event, data=data, mono=mono)
                if sse.event in TERMINAL_EVENTS:
                    return
        raise StreamError("stream closed before a done or error event")

    async def status(self, agent_id: str) -> Mapping[str, Any] | None:
        """The newest run of ``agent_id`` as the target reports it; None on 404."""
        resp = await self._http.get(f"/v1/agents/{_quote(agent_id)}")
        if resp.status_code == 404:
            return None
        resp.raise_for_status()
        return _as_object(_decode_json(resp.text), resp.text)

    async def cancel(self, agent_id: str, reason: str | None = None) -> CancelResult:
        """Cancel through this address; classified by :func:`classify_cancel`."""
        payload = {"reason": reason} if reason else {}
        started = self._clock()
        resp = await self._http.post(f"/v1/agents/{_quote(agent_id)}/cancel", json=payload)
        latency = self._clock() - started
        body = _as_object(_decode_json(resp.text), resp.text)
        return CancelResult(
            http_status=resp.status_code,
            body=body,
            classification=classify_cancel(resp.status_code, body, reason),
            latency_s=latency,
        )

    # -- cluster and introspection ---------------------------------------------

    async def get_json(self, path: str) -> tuple[int, Any]:
        """Any GET: the status and the decoded body (None when not JSON)."""
        resp = await self._http.get(path)
        return resp.status_code, _decode_json(resp.text)

    async def get_text(self, path: str) -> tuple[int, str]:
        """Any GET: the status and the body as text (for bodies that may not be JSON)."""
        resp = await self._http.get(path)
        return resp.status_code, resp.text

    async def health(self) -> Health:
        resp = await self._http.get("/healthz")
        resp.raise_for_status()
        return health_from(_as_object(_decode_json(resp.text), resp.text))

    async def concurrency_stats(self) -> ConcurrencyStats:
        resp = await self._http.get("/v1/_concurrency/stats")
        resp.raise_for_status()
        body = _as_object(_decode_json(resp.text), resp.text)
        per_user = body.get("per_user")
        return ConcurrencyStats(
            active=int(body.get("active", 0)),
            queued=int(body.get("queued", 0)),
            per_user={str(k): int(v) for k, v in per_user.items()}
            if isinstance(per_user, dict)
            else None,
        )

    async def user_agents(self, user_id: str, status: str = "all") -> list[dict[str, Any]]:
        """A user's runs (``running`` or ``all``); the target caps the list at 100."""
        resp = await self._http.get(
            f"/v1/users/{_quote(user_id)}/agents", params={"status": status}
        )
        resp.raise_for_status()
        body = _decode_json(resp.text)
        if isinstance(body, dict):
            body = body.get("agents")
        if not isinstance(body, list):
            raise StreamError(f"unexpected agents list body: {resp.text[:300]}")
        return [item for item in body if isinstance(item, dict)]

    async def memory_value(self, user_id: str, key: str) -> Any:
        """A user-scope memory value (circuit outputs); None when the key is absent."""
        resp = await self._http.get(f"/v1/_memory/scopes/user/{_quote(user_id)}/keys/{_quote(key)}")
        if resp.status_code == 404:
            return None
        resp.raise_for_status()
        body = _decode_json(resp.text)
        entry = body.get("entry") if isinstance(body, dict) else None
        return entry.get("value") if isinstance(entry, dict) else None
