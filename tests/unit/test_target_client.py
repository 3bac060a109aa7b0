"""LoomcycleClient against hand-made answers (httpx.MockTransport; no network)."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from chaos.sut.base import RunRejected, RunRequest, StreamEvent
from chaos.sut.loomcycle.client import LoomcycleClient, StreamError

SSE_DIR = Path(__file__).parent / "data" / "sse"
SSE_HEADERS = {"content-type": "text/event-stream"}
Handler = Callable[[httpx.Request], httpx.Response]


def make_client(handler: Handler) -> LoomcycleClient:
    ticks = itertools.count(100.0, 0.5)
    return LoomcycleClient(
        "http://lb:80/",
        "tok",
        transport=httpx.MockTransport(handler),
        clock=lambda: next(ticks),
    )


def sse_file(name: str) -> bytes:
    return (SSE_DIR / name).read_bytes()


async def collect(client: LoomcycleClient, req: RunRequest) -> list[StreamEvent]:
    return [ev async for ev in client.start_run(req)]


REQ = RunRequest(agent="chaos", agent_id="tab12cd-w0-1", prompt="hi", user_id="tab12cd-u1")


async def test_completed_stream_yields_events_until_done() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, headers=SSE_HEADERS, content=sse_file("completed.sse"))

    async with make_client(handler) as client:
        events = await collect(client, REQ)

    assert [e.type for e in events] == ["session", "agent", "text", "usage", "done"]
    assert events[1].data["run_id"] == "r_0a1b2c"
    assert events[3].data["usage"] == {"input_tokens": 3, "output_tokens": 5}  # two data lines
    assert events[4].data["stop_reason"] == "end_turn"
    monos = [e.mono for e in events]
    assert monos == sorted(monos) and len(set(monos)) == len(monos)
    request = seen[0]
    assert (request.method, request.url.path) == ("POST", "/v1/runs")
    assert request.headers["authorization"] == "Bearer tok"
    assert request.headers["accept"] == "text/event-stream"
    assert json.loads(request.content) == {
        "agent": "chaos",
        "agent_id": "tab12cd-w0-1",
        "prompt": "hi",
        "user_id": "tab12cd-u1",
    }


async def test_error_event_ends_the_stream() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=SSE_HEADERS, content=sse_file("failed.sse"))

    async with make_client(handler) as client:
        events = await collect(client, REQ)
    assert events[-1].type == "error"
    assert events[-1].data["error"] == "mock: injected 500"


async def test_stream_without_terminal_event_raises_after_what_arrived() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=SSE_HEADERS, content=sse_file("truncated.sse"))

    got: list[StreamEvent] = []
    async with make_client(handler) as client:
        with pytest.raises(StreamError, match="before a done or error"):
            async for ev in client.start_run(REQ):
                got.append(ev)
    assert [e.type for e in got] == ["session", "agent", "text"]
    assert got[2].data == {"raw": "not json at all"}


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (429, '{"code":"per_user_quota_exhausted","error":"quota"}', "per_user_quota_exhausted"),
        (429, '{"code":"backpressure"}', "backpressure"),
        (409, '{"code":"agent_id_in_use"}', "agent_id_in_use"),
        (503, '{"code":"runtime_paused"}', "runtime_paused"),
        (500, "database is down", None),
    ],
)
async def test_error_status_before_the_stream_is_a_rejection(
    status: int, body: str, code: str | None
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body.encode())

    async with make_client(handler) as client:
        with pytest.raises(RunRejected) as info:
            await collect(client, REQ)
    rejection = info.value.rejection
    assert (rejection.status, rejection.code, rejection.body) == (status, code, body)


async def test_success_status_that_is_not_a_stream_is_an_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"text": "buffered"})

    async with make_client(handler) as client:
        with pytest.raises(StreamError, match="not a stream"):
            await collect(client, REQ)


class TrackedStream(httpx.AsyncByteStream):
    """An endless SSE body that records whether the client closed it."""

    def __init__(self) -> None:
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'event: session\ndata: {"session_id":"s"}\n\n'
        yield b'event: agent\ndata: {"agent_id":"a","run_id":"r_1"}\n\n'
        for _ in range(1000):  # bounded: the client must stop long before
            yield b": keepalive\n\n"

    async def aclose(self) -> None:
        self.closed = True


async def test_closing_the_iterator_early_closes_the_stream() -> None:
    body = TrackedStream()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=SSE_HEADERS, stream=body)

    async with make_client(handler) as client:
        stream = client.start_run(REQ)
        first = [await anext(stream), await anext(stream)]
        await stream.aclose()  # type: ignore[attr-defined]
    assert [e.type for e in first] == ["session", "agent"]
    assert body.closed


async def test_status_returns_the_body_or_none_on_404() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/agents/known":
            return httpx.Response(200, json={"run_id": "r_1", "status": "running", "live": True})
        return httpx.Response(404, json={"code": "unknown_agent_id"})

    async with make_client(handler) as client:
        assert await client.status("known") == {"run_id": "r_1", "status": "running", "live": True}
        assert await client.status("other") is None


async def test_cancel_posts_the_reason_and_classifies_the_answer() -> None:
    bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        assert request.url.path == "/v1/agents/a-1/cancel"
        return httpx.Response(200, json={"cancelled": True, "agent_id": "a-1", "reason": "why"})

    async with make_client(handler) as client:
        result = await client.cancel("a-1", "why")
        unreasoned = await client.cancel("a-1")
    assert result.classification == "acknowledged"
    assert result.latency_s == pytest.approx(0.5)
    assert result.body["reason"] == "why"
    assert unreasoned.classification == "unknown"  # echoed a reason nobody sent
    assert [json.loads(b) for b in bodies] == [{"reason": "why"}, {}]


async def test_cancel_of_an_unknown_id_is_not_found_not_an_exception() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"code": "unknown_agent_id"})

    async with make_client(handler) as client:
        result = await client.cancel("nope", "r")
    assert (result.http_status, result.classification) == (404, "not_found")


async def test_health_reads_the_cluster_view() -> None:
    bodies = iter(
        [
            {
                "ok": True,
                "version": "v1.59.0",
                "replica_id": "r1",
                "replicas": [{"id": "r1"}, {"id": "r2"}],
            },
            {"ok": True, "version": "v1.59.0", "replica_id": "r1"},
        ]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/healthz"
        return httpx.Response(200, json=next(bodies))

    async with make_client(handler) as client:
        full = await client.health()
        degraded = await client.health()
    assert (full.ok, full.replica_id, full.version, full.replica_ids) == (
        True,
        "r1",
        "v1.59.0",
        ("r1", "r2"),
    )
    assert degraded.ok and degraded.replica_ids is None


async def test_concurrency_stats_with_and_without_per_user() -> None:
    bodies = iter([{"active": 2, "queued": 1, "per_user": {"u1": 2}}, {"active": 0, "queued": 0}])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=next(bodies))

    async with make_client(handler) as client:
        with_users = await client.concurrency_stats()
        without = await client.concurrency_stats()
    assert (with_users.active, with_users.queued, with_users.per_user) == (2, 1, {"u1": 2})
    assert without.per_user is None


@pytest.mark.parametrize("body", [[{"agent_id": "a"}], {"agents": [{"agent_id": "a"}], "count": 1}])
async def test_user_agents_accepts_a_list_or_an_object(body: object) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["status"] == "running"
        return httpx.Response(200, json=body)

    async with make_client(handler) as client:
        assert await client.user_agents("u1", "running") == [{"agent_id": "a"}]


async def test_memory_value_reads_the_entry() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/keys/c1-research"):
            return httpx.Response(200, json={"entry": {"value": "notes"}})
        return httpx.Response(404, json={"code": "not_found"})

    async with make_client(handler) as client:
        assert await client.memory_value("u1", "c1-research") == "notes"
        assert await client.memory_value("u1", "c1-missing") is None


async def test_streams_are_dealt_over_several_pools() -> None:
    """One httpx pool makes opening n streams O(n^2) (encode/httpcore#1035): deal them out."""
    from chaos.sut.loomcycle.client import LoomcycleClient

    client = LoomcycleClient("http://127.0.0.1:9", None, stream_pools=3)
    try:
        picked = {id(next(client._next_pool)) for _ in range(6)}
        assert len(picked) == 3
    finally:
        await client.aclose()


def test_stream_pools_must_be_positive() -> None:
    import pytest

    from chaos.sut.loomcycle.client import LoomcycleClient

    with pytest.raises(ValueError, match="stream_pools"):
        LoomcycleClient("http://127.0.0.1:9", None, stream_pools=0)
