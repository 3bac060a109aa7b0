"""Naming conventions for everything the suite creates.

Every Docker object carries :func:`docker_labels`, so that a later session can
find what a killed session left (its pid is gone) and remove only that, never
an object some other live session or a user owns.  Every run, agent and user
id a test creates starts with that test's prefix, so checkers read only the
test's own rows from a shared database.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets

SUITE = "loomchaos"
LABEL_SUITE = "io.loomchaos.suite"
LABEL_SESSION = "io.loomchaos.session"
LABEL_PID = "io.loomchaos.pid"
LABEL_CLUSTER = "io.loomchaos.cluster"
LABEL_ROLE = "io.loomchaos.role"

_ID_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def new_session_id() -> str:
    return secrets.token_hex(4)


def docker_labels(session_id: str, pid: int | None = None, **extra: str) -> dict[str, str]:
    labels = {
        LABEL_SUITE: SUITE,
        LABEL_SESSION: session_id,
        LABEL_PID: str(os.getpid() if pid is None else pid),
    }
    labels.update({f"io.loomchaos.{k}": v for k, v in extra.items()})
    return labels


def test_prefix(nodeid: str, session_id: str) -> str:
    """A short id prefix, unique per test and session, valid in every loomcycle id field.

    Agent and user ids allow ``[A-Za-z0-9_-]{1,128}``: the prefix stays well
    under that so a workload can append its own counters.
    """
    digest = hashlib.sha1(nodeid.encode()).hexdigest()[:6]
    prefix = f"t{session_id[:6]}{digest}"
    if not _ID_OK.match(prefix):  # pragma: no cover - hex digits always match
        raise ValueError(f"bad prefix {prefix!r}")
    return prefix


# Not a test, despite the name pytest would collect where a test module imports it.
test_prefix.__test__ = False  # type: ignore[attr-defined]


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (signal 0 probe)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
