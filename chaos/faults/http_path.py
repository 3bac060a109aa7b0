"""A :class:`~chaos.faults.link.LinkPath` for links that carry HTTP/1.1 (load balancer -> replica).

In the cluster nginx reaches each replica through Toxiproxy proxy ``lb_r<i>``,
so the link faults must be provable on an HTTP link, not only on Postgres.
:class:`HttpPath` gives those faults the same four measurements
:class:`~chaos.faults.link.PgPath` gives them:

* ``roundtrip``: a fresh connection and one small GET, ``ok`` only for a 2xx
  answer whose body arrived in full;
* ``bulk`` down: a GET with ``Range: bytes=0-<n-1>`` of a resource at least
  ``nbytes`` long (a 206, or a 200 of which the first ``nbytes`` are read);
* ``bulk`` up: a request with an ``nbytes`` body to a location that answers
  only after reading all of it (an nginx ``proxy_pass`` with request
  buffering on does; a bare ``return 200`` does NOT: it answers at once and
  discards the body later, so a bandwidth limit would go unseen);
* ``close_delay``: a ``Connection: close`` request; the time from sending it
  to EOF, i.e. how long the server's close takes to reach us.

All but ``close_delay`` keep the connection alive (no ``Connection: close``),
like nginx talking to a replica.  That matters: Toxiproxy's black hole
(``timeout`` toxic, ``timeout=0``) drops bytes but forwards a close, so a
server that hangs up after answering turns ``black_hole_down`` into an
instant EOF ("closed") instead of the hang the fault promises.

Why raw asyncio streams and not httpx: a probe must report what the path did
(refused, closed, hung, answered late) in the same terms as the Postgres
probes (:func:`chaos.faults.probes.classify`).  httpx wraps those errors in
its own types, can pool connections, and offers no view of when EOF arrives
after a response, which is the whole of ``close_delay``.  The HTTP spoken
here is the small subset these probes need: one request per connection,
bodies framed by ``Content-Length``, chunked encoding, or EOF.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from chaos.faults.probes import PathOutcome, PathResult, classify

#: Methods a bulk-up probe may use: ones that carry a body.
UPLOAD_METHODS = ("POST", "PUT")
#: A response head longer than this is not one of our small probe answers.
MAX_HEADER_LINES = 100
_CHUNK = b"x" * 65536
# A request target or Host value: printable, no spaces, no CR/LF (no request splitting).
_TOKEN = re.compile(r"^[!-~]+$")
_STATUS = re.compile(r"^HTTP/1\.[01] (\d{3})(?: .*)?$")


class HttpRejected(Exception):
    """The server answered with a status the probe does not accept (``rejected``)."""


class HttpProtocolError(Exception):
    """The answer is not HTTP this probe understands, or not what was asked (``error``)."""


@dataclass(frozen=True)
class ResponseHead:
    """A parsed status line and headers (names lower-cased; a repeated header keeps the last)."""

    status: int
    status_line: str
    headers: dict[str, str]

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("content-length")
        if value is None:
            return None
        if not value.isdigit():
            raise HttpProtocolError(f"bad Content-Length {value!r}")
        return int(value)

    @property
    def chunked(self) -> bool:
        return "chunked" in self.headers.get("transfer-encoding", "").lower()

    @property
    def has_body(self) -> bool:
        return not (100 <= self.status < 200 or self.status in (204, 304))


def parse_status_line(line: str) -> int:
    """The status code of an HTTP/1.x status line; :class:`HttpProtocolError` if malformed."""
    match = _STATUS.match(line.rstrip("\r\n"))
    if match is None:
        raise HttpProtocolError(f"not an HTTP/1.x status line: {line[:80]!r}")
    return int(match.group(1))


def parse_head(lines: list[str]) -> ResponseHead:
    """Parse a status line and header lines (without the blank line that ends them)."""
    if not lines:
        raise HttpProtocolError("empty response head")
    status_line = lines[0].rstrip("\r\n")
    status = parse_status_line(status_line)
    headers: dict[str, str] = {}
    for raw in lines[1:]:
        name, sep, value = raw.rstrip("\r\n").partition(":")
        if not sep or not name.strip():
            raise HttpProtocolError(f"bad header line {raw[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    return ResponseHead(status, status_line, headers)


def status_outcome(status: int, accepted: range | tuple[int, ...]) -> PathOutcome:
    """``ok`` when the path carried an answer the probe asked for, else ``rejected``.

    A 4xx or 5xx is ``rejected``, not ``closed``: the bytes got through, the
    server said no (a 502 from nginx means the replica, not this link, failed).
    """
    return "ok" if status in accepted else "rejected"


def check_token(value: str, what: str) -> str:
    """Refuse values that could split or corrupt the request (spaces, CR/LF, non-ASCII)."""
    if not _TOKEN.match(value):
        raise ValueError(f"{what} must be printable ASCII without spaces: {value!r}")
    return value


def check_path(value: str, what: str) -> str:
    """A request target in origin form: ``/`` and a token (query strings allowed)."""
    if not check_token(value, what).startswith("/"):
        raise ValueError(f"{what} must start with '/': {value!r}")
    return value


def build_request(
    method: str, path: str, host: str, headers: dict[str, str], *, close: bool = False
) -> bytes:
    """An HTTP/1.1 request head; ``close`` asks the server to hang up after answering.

    Without ``close`` the connection stays open after the answer, as
    between nginx and a replica (HTTP/1.1, keep-alive): a server that closes
    after answering would make a one-way black hole look like a closed link,
    because Toxiproxy forwards the close while it drops the bytes.
    """
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    if close:
        lines.append("Connection: close")
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


async def read_head(reader: asyncio.StreamReader) -> ResponseHead:
    """Read a response head; EOF before its end raises :class:`EOFError` (``closed``)."""
    lines: list[str] = []
    while True:
        raw = await reader.readline()
        if not raw.endswith(b"\n"):
            where = "a status line" if not lines else "the end of the headers"
            raise EOFError(f"connection closed before {where}")
        line = raw.decode("latin-1").rstrip("\r\n")
        if not line:
            if not lines:
                continue  # tolerate a stray blank line before the status line
            return parse_head(lines)
        lines.append(line)
        if len(lines) > MAX_HEADER_LINES:
            raise HttpProtocolError(f"more than {MAX_HEADER_LINES} header lines")


async def read_body(
    reader: asyncio.StreamReader, head: ResponseHead, *, want: int | None = None
) -> int:
    """Read the body (decoded from chunks); return its length.

    With ``want``, stop once that many bytes are in, and fail fast with
    :class:`HttpProtocolError` when the server announces a shorter body.  A
    connection closed mid-body raises ``IncompleteReadError`` (``closed``).
    """
    if not head.has_body:
        got = 0
    elif head.chunked:
        got = await _read_chunked(reader, want)
    elif (length := head.content_length) is not None:
        if want is not None and length < want:
            raise HttpProtocolError(f"the server offers {length} bytes, {want} were asked")
        got = await _read_exactly(reader, length if want is None else want)
    else:  # framed by EOF (Connection: close)
        got = await _read_to_eof(reader, want)
    if want is not None and got < want:
        raise HttpProtocolError(f"the body ended at {got} of {want} bytes")
    return got


async def _read_exactly(reader: asyncio.StreamReader, n: int) -> int:
    left = n
    while left:  # in pieces: a bulk body need not sit in memory at once
        left -= len(await reader.readexactly(min(left, 65536)))
    return n


async def _read_to_eof(reader: asyncio.StreamReader, want: int | None) -> int:
    got = 0
    while want is None or got < want:
        data = await reader.read(65536)
        if not data:
            break
        got += len(data)
    return got


async def _read_chunked(reader: asyncio.StreamReader, want: int | None) -> int:
    got = 0
    while want is None or got < want:
        size_line = await reader.readline()
        if not size_line.endswith(b"\n"):
            raise asyncio.IncompleteReadError(size_line, None)
        size_text = size_line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError as exc:
            raise HttpProtocolError(f"bad chunk size {size_text[:20]!r}") from exc
        if size == 0:
            break  # trailers and the final CRLF do not matter: we close next
        await _read_exactly(reader, size)
        await reader.readexactly(2)  # the CRLF after each chunk
        got += size
    return got


async def _timed(work: Callable[[], Awaitable[str]], timeout: float) -> PathResult:
    """Run ``work`` under ``timeout``; its return value (the status line) is the ``detail``."""
    start = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            detail = await work()
    except asyncio.CancelledError:
        raise
    except HttpRejected as exc:
        return PathResult("rejected", time.monotonic() - start, str(exc))
    except HttpProtocolError as exc:
        return PathResult("error", time.monotonic() - start, f"HttpProtocolError: {exc}"[:300])
    except Exception as exc:
        outcome, text = classify(exc)
        return PathResult(outcome, time.monotonic() - start, text)
    return PathResult("ok", time.monotonic() - start, detail)


def _accept(head: ResponseHead, accepted: range | tuple[int, ...]) -> None:
    if status_outcome(head.status, accepted) != "ok":
        raise HttpRejected(head.status_line)


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]
_OK_2XX = range(200, 300)


async def _connect(host: str, port: int, timeout: float) -> Connection | PathResult:
    """Connect before a measurement starts its clock; a failure is the result (elapsed 0)."""
    try:
        async with asyncio.timeout(timeout):
            return await asyncio.open_connection(host, port)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        outcome, detail = classify(exc)
        return PathResult(outcome, 0.0, f"connect: {detail}")


@dataclass(frozen=True)
class HttpPath:
    """A link that carries HTTP/1.1; every probe uses a fresh connection and aborts it after.

    The body of every answer must be framed (``Content-Length`` or chunked)
    except for ``close_delay``: the other probes do not ask the server to
    close, so an EOF-framed body would hang until the probe's deadline.

    ``path``: a small resource answered 2xx (the round trip and the close
    probe).  ``bulk_down_path``: a resource of at least the largest ``nbytes``
    asked, served with Range support (a static file).  ``bulk_up_path``: a
    location that reads the whole ``bulk_up_method`` body before answering 2xx.
    Either bulk path may be ``None`` when the link's server has no such
    resource; a fault that needs it then fails with a clear error.
    """

    path: str = "/"
    bulk_down_path: str | None = None
    bulk_up_path: str | None = None
    bulk_up_method: Literal["POST", "PUT"] = "POST"
    host_header: str = "loomchaos-probe"

    def __post_init__(self) -> None:
        check_path(self.path, "path")
        check_token(self.host_header, "host_header")
        for name in ("bulk_down_path", "bulk_up_path"):
            value = getattr(self, name)
            if value is not None:
                check_path(value, name)
        if self.bulk_up_method not in UPLOAD_METHODS:
            raise ValueError(f"bulk_up_method must be one of {UPLOAD_METHODS}")

    def _request(
        self, method: str, path: str, headers: dict[str, str] | None = None, *, close: bool = False
    ) -> bytes:
        return build_request(method, path, self.host_header, headers or {}, close=close)

    async def roundtrip(self, host: str, port: int, *, timeout: float) -> PathResult:
        """Connect, GET ``path``, read the whole answer: ``ok`` for a 2xx."""

        async def work() -> str:
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(self._request("GET", self.path))
                await writer.drain()
                head = await read_head(reader)
                _accept(head, _OK_2XX)
                await read_body(reader, head)
                return head.status_line
            finally:
                writer.transport.abort()  # no polite close: it could hang on a bad link

        return await _timed(work, timeout)

    async def bulk(
        self, host: str, port: int, *, nbytes: int, direction: Literal["down", "up"], timeout: float
    ) -> PathResult:
        """Move ``nbytes`` one way; ``elapsed`` covers the transfer, not the TCP connect."""
        if nbytes <= 0:
            raise ValueError("nbytes must be positive")
        target = self.bulk_down_path if direction == "down" else self.bulk_up_path
        if target is None:
            raise ValueError(
                f"HttpPath has no bulk_{direction}_path: this link cannot prove a "
                f"fault that moves bulk data {direction}"
            )
        conn = await _connect(host, port, timeout)
        if isinstance(conn, PathResult):
            return conn
        send = self._download if direction == "down" else self._upload
        try:
            return await _timed(lambda: send(conn, target, nbytes), timeout)
        finally:
            conn[1].transport.abort()

    async def _download(self, conn: Connection, target: str, nbytes: int) -> str:
        reader, writer = conn
        writer.write(self._request("GET", target, {"Range": f"bytes=0-{nbytes - 1}"}))
        await writer.drain()
        head = await read_head(reader)
        _accept(head, (200, 206))
        await read_body(reader, head, want=nbytes)
        return head.status_line

    async def _upload(self, conn: Connection, target: str, nbytes: int) -> str:
        reader, writer = conn
        writer.write(
            self._request(
                self.bulk_up_method,
                target,
                {"Content-Type": "application/octet-stream", "Content-Length": str(nbytes)},
            )
        )
        left = nbytes
        while left:  # drain per piece: the path's pace, not our memory, sets the speed
            piece = _CHUNK[: min(left, len(_CHUNK))]
            writer.write(piece)
            await writer.drain()
            left -= len(piece)
        head = await read_head(reader)
        _accept(head, _OK_2XX)
        await read_body(reader, head)
        return head.status_line

    async def close_delay(self, host: str, port: int, *, timeout: float) -> PathResult:
        """Time from sending a ``Connection: close`` GET until EOF, after a full answer.

        The server closes as soon as it has answered, so any delay beyond a
        round trip is the path holding the close (slow_close).  EOF before a
        status line is ``closed``: then no server answered and closed at all.
        """
        conn = await _connect(host, port, timeout)
        if isinstance(conn, PathResult):
            return conn
        reader, writer = conn

        async def work() -> str:
            writer.write(self._request("GET", self.path, close=True))
            await writer.drain()
            head = await read_head(reader)
            await read_body(reader, head)
            while await reader.read(65536):  # anything after the body, then EOF
                pass
            return head.status_line

        try:
            return await _timed(work, timeout)
        finally:
            writer.transport.abort()
