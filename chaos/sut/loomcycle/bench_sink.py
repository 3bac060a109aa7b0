"""A benchmark LOAD SINK for the driver benchmark; NOT a stand-in for loomcycle.

It exists so the driver (:mod:`chaos.workload.driver` with the real
:class:`~chaos.sut.loomcycle.client.LoomcycleClient`) has something on
127.0.0.1 to open streams against while its own CPU time and event-loop lag
are measured.  It runs in its own process so its CPU is not counted as the
driver's.  It speaks only the wire shape the client parses and nothing of the
target's behaviour: no agents, no database, no cancellation, no quotas, no
status (``GET /v1/agents/{id}`` is always 404).  Never point a check at it.

Wire shape of ``POST /v1/runs`` (HTTP/1.1, chunked, keep-alive):
``session`` -> ``agent`` {agent_id, run_id, session_id} -> optional ``text``
-> hold, sending ``: keepalive`` comments -> ``done`` {"stop_reason": "end_turn"}.
The hold is the body's ``metadata.hold_ms`` or the sink's default; a held
stream also ends early when ``POST /v1/_bench/release`` is called (the ramp
holds thousands of streams open, then lets them all finish at once).
``GET /v1/_bench/stats`` reports open/peak/served streams and the sink's CPU.

    python -m chaos.sut.loomcycle.bench_sink --port 0 --hold-ms 50 --keepalive-ms 5000

prints ``LISTENING <port>`` once bound, releases held streams on SIGUSR1, and
stops on SIGTERM/SIGINT, when its stdin closes (the parent died; so run it by
hand from a terminal, not with stdin from /dev/null), or after ``--max-lifetime-s``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import resource
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

HOST = "127.0.0.1"
#: Requests served on one keep-alive connection before the sink closes it (a bound, not a tuning).
MAX_REQUESTS_PER_CONNECTION = 100_000
#: The kernel caps this at net.core.somaxconn; a burst of thousands of connects
#: overflowing a small backlog would show up as 1 s SYN retransmits, not as driver cost.
LISTEN_BACKLOG = 4096
MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 1024 * 1024


class BadRequest(ValueError):
    """The request could not be parsed; the sink answers 400 and closes."""


@dataclass(frozen=True)
class RequestHead:
    method: str
    path: str
    headers: Mapping[str, str]  # names lower-cased

    @property
    def content_length(self) -> int:
        raw = self.headers.get("content-length", "0")
        try:
            length = int(raw)
        except ValueError as exc:
            raise BadRequest(f"bad content-length {raw!r}") from exc
        if not 0 <= length <= MAX_BODY_BYTES:
            raise BadRequest(f"content-length {length} out of range")
        return length

    @property
    def keep_alive(self) -> bool:
        return self.headers.get("connection", "").lower() != "close"


def parse_head(raw: bytes) -> RequestHead:
    """Parse an HTTP/1.1 request line and headers (``raw`` ends with the blank line)."""
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(f"bad request line {lines[0][:100]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise BadRequest(f"bad header line {line[:100]!r}")
        headers[name.strip().lower()] = value.strip()
    return RequestHead(method=parts[0], path=parts[1].split("?", 1)[0], headers=headers)


def sse_event(event: str, data: Mapping[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def chunk(payload: bytes) -> bytes:
    """One HTTP/1.1 chunk (chunked transfer encoding, as a Go server streams SSE)."""
    return b"%x\r\n%s\r\n" % (len(payload), payload)


LAST_CHUNK = b"0\r\n\r\n"
KEEPALIVE = chunk(b": keepalive\n\n")
SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)


def json_response(status: int, body: Mapping[str, Any], *, keep_alive: bool = True) -> bytes:
    payload = json.dumps(body).encode()
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}.get(status, "Error")
    conn = "keep-alive" if keep_alive else "close"
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: {conn}\r\n\r\n"
    )
    return head.encode() + payload


@dataclass(frozen=True)
class SinkConfig:
    hold_s: float = 0.05
    keepalive_s: float = 5.0
    send_text: bool = True
    #: No stream is held longer than this, whatever the request asks.
    max_hold_s: float = 3600.0

    def __post_init__(self) -> None:
        if self.hold_s < 0 or self.keepalive_s <= 0 or self.max_hold_s <= 0:
            raise ValueError(f"bad sink timings: {self}")

    def hold_for(self, body: Mapping[str, Any]) -> float:
        """The request's ``metadata.hold_ms`` if it gives one, else the default; capped."""
        meta = body.get("metadata")
        hold_ms = meta.get("hold_ms") if isinstance(meta, dict) else None
        hold = float(hold_ms) / 1000 if isinstance(hold_ms, int | float) else self.hold_s
        return min(max(hold, 0.0), self.max_hold_s)


class LoadSink:
    """The asyncio-streams server; see the module docstring for what it is and is not."""

    def __init__(self, config: SinkConfig | None = None) -> None:
        self.config = config if config is not None else SinkConfig()
        self.open_streams = 0
        self.peak_streams = 0
        self.served = 0
        self._run_seq = itertools.count(1)
        self._release = asyncio.Event()
        self._server: asyncio.Server | None = None
        # Live connections, so aclose can end them itself: left to asyncio.run's
        # final cancellation, 3.11's stream callbacks log one traceback each.
        self._connections: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}

    async def start(self, port: int = 0) -> int:
        """Listen on 127.0.0.1 and return the bound port."""
        self._server = await asyncio.start_server(
            self._serve_connection, HOST, port, backlog=LISTEN_BACKLOG
        )
        return int(self._server.sockets[0].getsockname()[1])

    async def aclose(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in self._connections.values():
            writer.transport.abort()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5.0):
                await asyncio.gather(*self._connections, return_exceptions=True)
                await self._server.wait_closed()
        self._server = None

    def release(self) -> int:
        """End every held stream now; later streams hold again. Returns how many were held."""
        held = self.open_streams
        self._release.set()
        self._release = asyncio.Event()
        return held

    def stats(self) -> dict[str, Any]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "open": self.open_streams,
            "peak": self.peak_streams,
            "served": self.served,
            "cpu_s": usage.ru_utime + usage.ru_stime,
        }

    # -- connections ---------------------------------------------------------
    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections[task] = writer
        try:
            for _ in range(MAX_REQUESTS_PER_CONNECTION):
                if not await self._serve_one(reader, writer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client went away: for a load sink that is not an event
        finally:
            if task is not None:
                self._connections.pop(task, None)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; False when the connection should close."""
        try:
            raw = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False  # clean close between requests
        try:
            if len(raw) > MAX_HEAD_BYTES:
                raise BadRequest("request head too large")
            head = parse_head(raw)
            body_raw = await reader.readexactly(head.content_length)
        except BadRequest as exc:
            writer.write(json_response(400, {"error": str(exc)}, keep_alive=False))
            await writer.drain()
            return False
        if head.method == "POST" and head.path == "/v1/runs":
            await self._stream_run(writer, _json_object(body_raw))
        else:
            writer.write(json_response(*self._route(head), keep_alive=head.keep_alive))
            await writer.drain()
        return head.keep_alive

    def _route(self, head: RequestHead) -> tuple[int, dict[str, Any]]:
        if head.method == "GET" and head.path == "/healthz":
            return 200, {"ok": True, "note": "benchmark load sink, not loomcycle"}
        if head.method == "GET" and head.path == "/v1/_bench/stats":
            return 200, self.stats()
        if head.method == "POST" and head.path == "/v1/_bench/release":
            return 200, {"released": self.release()}
        if head.method == "GET" and head.path.startswith("/v1/agents/"):
            return 404, {"code": "unknown_agent_id"}  # the sink keeps no runs
        return 404, {"error": f"no route {head.method} {head.path}"}

    async def _stream_run(self, writer: asyncio.StreamWriter, body: Mapping[str, Any]) -> None:
        n = next(self._run_seq)
        agent_id = body.get("agent_id")
        agent_id = agent_id if isinstance(agent_id, str) else f"sink-agent-{n}"
        session_id = f"s_{n}"
        release = self._release
        self.open_streams += 1
        self.peak_streams = max(self.peak_streams, self.open_streams)
        try:
            writer.write(SSE_HEAD)
            writer.write(chunk(sse_event("session", {"session_id": session_id})))
            ids = {"agent_id": agent_id, "run_id": f"r_{n}", "session_id": session_id}
            writer.write(chunk(sse_event("agent", ids)))
            if self.config.send_text:
                writer.write(chunk(sse_event("text", {"type": "text", "text": "ok"})))
            await writer.drain()
            await self._hold(writer, self.config.hold_for(body), release)
            done = {"type": "done", "stop_reason": "end_turn"}
            writer.write(chunk(sse_event("done", done)) + LAST_CHUNK)
            await writer.drain()
            self.served += 1
        finally:
            self.open_streams -= 1

    async def _hold(
        self, writer: asyncio.StreamWriter, hold_s: float, release: asyncio.Event
    ) -> None:
        """Keep the stream open for ``hold_s`` (or until released), with keepalive comments.

        The timed waits here ARE the behaviour being served (a run that takes
        ``hold_s``), not synchronisation; bounded by ``max_hold_s / keepalive_s`` rounds.
        """
        deadline = time.monotonic() + hold_s
        rounds = int(self.config.max_hold_s / self.config.keepalive_s) + 2
        for _ in range(rounds):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or release.is_set():
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, self.config.keepalive_s)):
                    await release.wait()
                    return
            if deadline - time.monotonic() > 0:
                writer.write(KEEPALIVE)
                await writer.drain()


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def raise_open_files_limit() -> int:
    """Raise the soft open-files limit to the hard one (streams are sockets); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft


async def _until_stopped(max_lifetime_s: float) -> None:
    """Return on SIGTERM/SIGINT, on stdin EOF (the parent is gone), or at the lifetime bound."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)

    async def parent_gone() -> None:
        while await stdin.read(4096):  # bounded by the parent: it never writes
            pass
        stop.set()

    watcher = asyncio.create_task(parent_gone())
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max_lifetime_s):
                await stop.wait()
    finally:
        watcher.cancel()


async def serve(port: int, config: SinkConfig, max_lifetime_s: float) -> None:
    sink = LoadSink(config)
    bound = await sink.start(port)
    # SIGUSR1 = release: the parent can end held streams without opening a socket.
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, sink.release)
    print(f"LISTENING {bound}", flush=True)
    try:
        await _until_stopped(max_lifetime_s)
    finally:
        await sink.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark load sink (not loomcycle).")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--hold-ms", type=float, default=50.0)
    parser.add_argument("--keepalive-ms", type=float, default=5000.0)
    parser.add_argument("--no-text", action="store_true", help="skip the text event")
    parser.add_argument("--max-lifetime-s", type=float, default=3600.0)
    args = parser.parse_args(argv)
    raise_open_files_limit()
    config = SinkConfig(
        hold_s=args.hold_ms / 1000,
        keepalive_s=args.keepalive_ms / 1000,
        send_text=not args.no_text,
        max_hold_s=args.max_lifetime_s,
    )
    asyncio.run(serve(args.port, config, args.max_lifetime_s))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
