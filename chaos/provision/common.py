"""Small shared pieces of provisioning: the cache dir, logged subprocesses, hashes, a lock.

Everything provisioning installs or builds lives under one cache directory
(``$LOOMCHAOS_CACHE``, default ``~/.cache/loomchaos``) so that a second run on
the same machine finds it and rebuilds nothing.  Subprocess output never goes
to the terminal: it goes to a log file under ``logs/`` and a failure's one-line
error names that file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shlex
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from chaos.errors import SetupError
from chaos.wait import WaitTimeout, eventually_sync

#: Where provisioning reports what it is doing (one short line per call).
Progress = Callable[[str], None]

CACHE_ENV = "LOOMCHAOS_CACHE"


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """The cache root; created on first use."""
    env = os.environ if env is None else env
    raw = env.get(CACHE_ENV) or str(Path.home() / ".cache" / "loomchaos")
    path = Path(raw).expanduser().absolute()
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_file(cache: Path, name: str) -> Path:
    """The log file for one step; each run appends, with a header naming the command."""
    logs = cache / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    return logs / f"{name}.log"


def run_logged(
    cmd: Sequence[str],
    *,
    log: Path,
    timeout: float,
    env: Mapping[str, str] | None = None,
) -> int:
    """Run ``cmd`` with its output appended to ``log``; return the exit code.

    A timeout is a :class:`SetupError` (the step hangs, e.g. a mirror that does
    not answer); a non-zero exit is for the caller to judge.
    """
    with log.open("ab") as out:
        out.write(f"\n$ {shlex.join(cmd)}\n".encode())
        out.flush()
        try:
            proc = subprocess.run(
                list(cmd),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=timeout,
                env=None if env is None else dict(env),
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise SetupError(
                f"`{shlex.join(cmd)[:120]}` did not finish within {timeout:.0f}s; see {log}"
            ) from None
        except FileNotFoundError:
            raise SetupError(f"`{cmd[0]}` is not installed (needed for provisioning)") from None
    return proc.returncode


def read_since(log: Path, offset: int) -> str:
    """The text a log gained after ``offset`` bytes (what the last command wrote)."""
    with log.open("rb") as fh:
        fh.seek(offset)
        return fh.read().decode(errors="replace")


def log_size(log: Path) -> int:
    return log.stat().st_size if log.exists() else 0


def one_line(text: str, limit: int = 400) -> str:
    """Collapse whitespace so an error fits the single line a SetupError promises."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def digest_of(value: object) -> str:
    """A short, stable hash of a JSON-able value (inputs of a build step)."""
    blob = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


@contextlib.contextmanager
def provision_lock(cache: Path, *, timeout: float = 1800.0) -> Iterator[None]:
    """Hold an exclusive lock on the cache so two sessions never build the same thing at once.

    The second session waits (bounded) and then finds everything built.  The
    lock is an ``flock``: it dies with its process, so a killed run leaves no
    stale lock behind.
    """
    path = cache / "provision.lock"
    fh = path.open("a+")
    try:

        def try_lock() -> bool:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        try:
            eventually_sync(
                try_lock,
                what=f"another loomchaos provisioning to release {path}",
                timeout=timeout,
                interval=1.0,
            )
        except WaitTimeout as exc:
            raise SetupError(str(exc).splitlines()[0]) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()} {time.time():.0f}\n")
        fh.flush()
        yield
    finally:
        fh.close()  # closing the descriptor releases the flock
