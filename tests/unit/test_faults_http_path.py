"""HttpPath without Docker: parsing, status classification, parameter checks, and outcomes.

The outcome tests talk to a tiny asyncio server on 127.0.0.1 that answers
with hand-made bytes, so each path outcome (ok, rejected, closed, timeout,
refused, error) is seen from a real socket in milliseconds.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from chaos.faults.http_path import (
    HttpPath,
    HttpProtocolError,
    ResponseHead,
    build_request,
    parse_head,
    parse_status_line,
    read_body,
    read_head,
    status_outcome,
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


# --- pure parts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "status"),
    [("HTTP/1.1 200 OK", 200), ("HTTP/1.0 404 Not Found\r\n", 404), ("HTTP/1.1 204", 204)],
)
def test_status_line_is_parsed(line: str, status: int) -> None:
    assert parse_status_line(line) == status


@pytest.mark.parametrize("line", ["", "HTTP/2 200 OK", "HTTP/1.1 2000 OK", "hello", "SSH-2.0-x"])
def test_a_malformed_status_line_is_a_protocol_error(line: str) -> None:
    with pytest.raises(HttpProtocolError):
        parse_status_line(line)


def test_head_lowercases_names_and_reads_framing() -> None:
    head = parse_head(["HTTP/1.1 200 OK", "Content-Length: 12", "X-A:  b "])
    assert head.headers == {"content-length": "12", "x-a": "b"}
    assert head.content_length == 12 and not head.chunked and head.has_body
    chunked = parse_head(["HTTP/1.1 200 OK", "Transfer-Encoding: Chunked"])
    assert chunked.chunked and chunked.content_length is None
    assert not parse_head(["HTTP/1.1 204 No Content"]).has_body
    with pytest.raises(HttpProtocolError):
        parse_head(["HTTP/1.1 200 OK", "no colon here"])
    with pytest.raises(HttpProtocolError):
        _ = parse_head(["HTTP/1.1 200 OK", "Content-Length: -1"]).content_length


@pytest.mark.parametrize(
    ("status", "accepted", "outcome"),
    [
        (200, range(200, 300), "ok"),
        (204, range(200, 300), "ok"),
        (206, (200, 206), "ok"),
        (200, (200, 206), "ok"),
        (301, range(200, 300), "rejected"),
        (404, range(200, 300), "rejected"),
        (502, range(200, 300), "rejected"),
        (204, (200, 206), "rejected"),
    ],
)
def test_status_classification(
    status: int, accepted: range | tuple[int, ...], outcome: str
) -> None:
    assert status_outcome(status, accepted) == outcome


def test_requests_keep_alive_unless_asked_to_close() -> None:
    keep = build_request("GET", "/ok", "probe", {"Range": "bytes=0-9"})
    assert keep == b"GET /ok HTTP/1.1\r\nHost: probe\r\nRange: bytes=0-9\r\n\r\n"
    close = build_request("GET", "/ok", "probe", {}, close=True)
    assert b"\r\nConnection: close\r\n\r\n" in close


@pytest.mark.parametrize(
    "kwargs",
    [
        {"path": "ok"},
        {"path": "/a b"},
        {"path": "/x\r\nHost: evil"},
        {"path": "/é"},
        {"bulk_down_path": "blob"},
        {"bulk_up_path": "/up load"},
        {"host_header": "a b"},
        {"host_header": ""},
        {"bulk_up_method": "GET"},
    ],
)
def test_bad_parameters_are_refused(kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        HttpPath(**kwargs)  # type: ignore[arg-type]


async def test_bulk_without_a_bulk_path_or_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match="bulk_down_path"):
        await HttpPath().bulk("127.0.0.1", 1, nbytes=10, direction="down", timeout=1)
    with pytest.raises(ValueError, match="bulk_up_path"):
        await HttpPath().bulk("127.0.0.1", 1, nbytes=10, direction="up", timeout=1)
    with pytest.raises(ValueError, match="positive"):
        await HttpPath(bulk_up_path="/u").bulk("127.0.0.1", 1, nbytes=0, direction="up", timeout=1)


# --- readers on hand-fed streams ------------------------------------------------------------


def fed(data: bytes, eof: bool = True) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    if eof:
        reader.feed_eof()
    return reader


async def test_head_and_body_by_content_length() -> None:
    reader = fed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
    head = await read_head(reader)
    assert head.status == 200 and await read_body(reader, head) == 5


async def test_chunked_body_is_decoded_and_want_stops_early() -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    raw = head + b"3\r\nabc\r\n4;x=y\r\ndefg\r\n0\r\n\r\n"
    reader = fed(raw)
    assert await read_body(reader, await read_head(reader)) == 7
    reader = fed(raw)
    assert await read_body(reader, await read_head(reader), want=3) == 3


async def test_eof_framed_body_reads_to_the_end() -> None:
    reader = fed(b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 1000)
    assert await read_body(reader, await read_head(reader)) == 1000


async def test_eof_before_the_head_ends_is_a_close() -> None:
    with pytest.raises(EOFError, match="status line"):
        await read_head(fed(b""))
    with pytest.raises(EOFError, match="end of the headers"):
        await read_head(fed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"))


async def test_a_body_cut_short_is_a_close() -> None:
    reader = fed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")
    with pytest.raises(asyncio.IncompleteReadError):
        await read_body(reader, await read_head(reader))


async def test_a_server_offering_less_than_wanted_is_a_protocol_error() -> None:
    reader = fed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
    with pytest.raises(HttpProtocolError, match="offers 5"):
        await read_body(reader, await read_head(reader), want=10)
    reader = fed(b"HTTP/1.1 200 OK\r\n\r\nhello")
    with pytest.raises(HttpProtocolError, match="ended at 5"):
        await read_body(reader, await read_head(reader), want=10)


def test_head_type_is_frozen() -> None:
    head = ResponseHead(200, "HTTP/1.1 200 OK", {})
    with pytest.raises(AttributeError):
        head.status = 500  # type: ignore[misc]


# --- outcomes through a real socket ---------------------------------------------------------


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[int]:
    """A one-handler HTTP stand-in on 127.0.0.1 (ephemeral port); yields the port."""

    async def wrapped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the probe aborts its connections: expected
        finally:
            writer.transport.abort()

    server = await asyncio.start_server(wrapped, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


def answer(raw: bytes, *, then_close: bool = False) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(raw)
        await writer.drain()
        if not then_close:
            await reader.read()  # keep-alive: wait for the probe to hang up

    return handler


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"


@pytest.mark.parametrize(
    ("raw", "outcome", "detail"),
    [
        (OK, "ok", "200"),
        (b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", "rejected", "404"),
        (b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n", "rejected", "502"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "error", "status line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nok", "closed", "Incomplete"),
    ],
)
async def test_roundtrip_outcomes(raw: bytes, outcome: str, detail: str) -> None:
    async with serving(answer(raw, then_close=True)) as port:
        result = await HttpPath(path="/ok").roundtrip("127.0.0.1", port, timeout=2)
    assert result.outcome == outcome and detail in result.detail, result


async def test_roundtrip_does_not_wait_for_a_close_after_a_framed_answer() -> None:
    async with serving(answer(OK)) as port:
        result = await HttpPath(path="/ok").roundtrip("127.0.0.1", port, timeout=2)
    assert result.ok and result.elapsed < 0.5, result


async def test_a_server_that_never_answers_is_a_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    async with serving(silent) as port:
        result = await HttpPath().roundtrip("127.0.0.1", port, timeout=0.3)
    assert result.outcome == "timeout" and 0.3 <= result.elapsed < 1.0, result


async def test_a_closed_port_is_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connect is refused
        result = await HttpPath().roundtrip("127.0.0.1", port, timeout=1)
        close = await HttpPath().close_delay("127.0.0.1", port, timeout=1)
    assert result.outcome == "refused", result
    assert close.outcome == "refused" and close.detail.startswith("connect:"), close


#: Two clocks (the loop's, the probe's) read around one delay disagree by this much at most.
CLOCK_MARGIN_S = 0.05


async def test_close_delay_measures_the_servers_hang_up() -> None:
    hang_up = asyncio.Event()

    async def late_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await _read_request(reader)
        assert b"Connection: close" in request
        writer.write(OK)
        await writer.drain()
        await asyncio.wait_for(hang_up.wait(), 5)

    async with serving(late_close) as port:
        probe = asyncio.ensure_future(HttpPath().close_delay("127.0.0.1", port, timeout=3))
        done, _ = await asyncio.wait([probe], timeout=0.3)
        assert not done, "the probe must wait for EOF, not for the answer"
        hang_up.set()
        result = await probe
    # The answer came at once and the hang-up 0.3 s (loop time) later: the probe's own
    # clock must show the hang-up, not the answer.  The margin absorbs the two clocks'
    # granularity (a run under full-suite load measured 0.29975 s), never the delay itself.
    assert result.ok and result.elapsed >= 0.3 - CLOCK_MARGIN_S, result


async def test_close_delay_without_an_answer_is_a_close() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)

    async with serving(hang_up) as port:
        result = await HttpPath().close_delay("127.0.0.1", port, timeout=2)
    assert result.outcome == "closed", result


async def test_bulk_down_asks_a_range_and_reads_it() -> None:
    seen: list[bytes] = []

    async def ranged(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await _read_request(reader))
        body = b"x" * 100_000
        writer.write(b"HTTP/1.1 206 Partial Content\r\nContent-Length: 100000\r\n\r\n" + body)
        await writer.drain()
        await reader.read()

    async with serving(ranged) as port:
        path = HttpPath(bulk_down_path="/blob")
        result = await path.bulk("127.0.0.1", port, nbytes=100_000, direction="down", timeout=3)
    assert result.ok and "206" in result.detail, result
    assert b"GET /blob HTTP/1.1\r\n" in seen[0] and b"Range: bytes=0-99999\r\n" in seen[0]


async def test_bulk_up_sends_every_byte_before_reading_the_answer() -> None:
    received: list[int] = []

    async def sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await _read_request(reader)
        assert head.startswith(b"PUT /up HTTP/1.1\r\n") and b"Content-Length: 300000" in head
        received.append(len(await reader.readexactly(300_000)))
        writer.write(OK)
        await writer.drain()
        await reader.read()

    async with serving(sink) as port:
        path = HttpPath(bulk_up_path="/up", bulk_up_method="PUT")
        result = await path.bulk("127.0.0.1", port, nbytes=300_000, direction="up", timeout=3)
    assert result.ok and received == [300_000], result
