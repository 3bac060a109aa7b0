"""Host-side addresses of a cluster: only ever 127.0.0.1.

The suite's network rule is that the host talks to the cluster only through
ports published on the loopback interface.  Every URL or DSN the suite builds
for the host goes through this module, so one place refuses anything else: a
binding on ``0.0.0.0`` (reachable from the LAN) or on another interface is a
configuration bug, not something to work around.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

LOOPBACK = "127.0.0.1"


class NotLoopback(ValueError):
    """An address that is not 127.0.0.1 was about to be used from the host."""


def require_loopback(host: str) -> str:
    """Return ``host`` if it is exactly 127.0.0.1; raise :class:`NotLoopback` otherwise.

    ``localhost`` is refused too: it may resolve to ``::1`` first, where
    Docker published nothing.
    """
    if host != LOOPBACK:
        raise NotLoopback(f"refusing host address {host!r}: the suite only uses {LOOPBACK}")
    return host


def _check_port(port: int) -> int:
    if not 0 < port < 65536:
        raise ValueError(f"port out of range: {port}")
    return port


def localhost_url(port: int, *, scheme: str = "http", path: str = "") -> str:
    """``scheme://127.0.0.1:port`` plus an optional path starting with ``/``."""
    if path and not path.startswith("/"):
        raise ValueError(f"path must start with '/': {path!r}")
    return f"{scheme}://{LOOPBACK}:{_check_port(port)}{path}"


def published_port(ports: Mapping[str, Sequence[Mapping[str, Any]] | None], port: int) -> int:
    """The host port Docker published for ``port/tcp`` on 127.0.0.1.

    ``ports`` is ``container.attrs["NetworkSettings"]["Ports"]``.  Raises
    :class:`LookupError` while the port is not (yet) published, and
    :class:`NotLoopback` when a binding exists on any other host address:
    one such binding is enough to refuse, since it means the container is
    reachable from outside this machine.
    """
    bindings = ports.get(f"{port}/tcp") or ()
    if not bindings:
        raise LookupError(f"port {port}/tcp is not published")
    for binding in bindings:
        require_loopback(str(binding.get("HostIp", "")))
    return _check_port(int(bindings[0]["HostPort"]))
