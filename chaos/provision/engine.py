"""A Docker engine that answers: reuse the one there, or start one as root on Linux.

On a user's machine Docker already runs and must be left alone.  On a fresh CI
machine (root, no engine) the suite installs Debian's ``docker.io`` and starts
``dockerd`` detached, logging to the cache dir.  An engine is stopped only by
:func:`stop_started_engine`, and only if this process started it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import docker

from chaos.errors import SetupError
from chaos.labels import pid_alive
from chaos.provision.apt import ensure_tool
from chaos.provision.common import Progress, cache_dir, log_file
from chaos.wait import WaitTimeout, eventually_sync

DEFAULT_SOCKET = "/var/run/docker.sock"
#: No masquerading and no iptables rules: containers talk only on networks the
#: suite creates, and the host's firewall stays as it was.
DOCKERD_FLAGS = ("--iptables=false", "--ip-masq=false", "--storage-driver=overlay2")
#: Engines this process started, kept so the Popen is not collected (and warned about)
#: while the engine runs on after us, and so it can be reaped when we stop it.
_STARTED: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class EngineInfo:
    started_by_us: bool
    server_version: str
    docker_host: str = f"unix://{DEFAULT_SOCKET}"
    pid: int | None = None
    log_path: Path | None = None


def docker_host(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    return env.get("DOCKER_HOST") or f"unix://{DEFAULT_SOCKET}"


def socket_path(host: str) -> str | None:
    """The unix socket behind a DOCKER_HOST value, or None (tcp/ssh: nothing we can start)."""
    if host.startswith("unix://"):
        return host[len("unix://") :]
    return None


def _unix_socket_accepts(path: str, timeout: float) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except OSError:
            return False
    return True


def ping_engine(timeout: float = 3.0) -> str | None:
    """The server version if an engine answers at DOCKER_HOST within ``timeout``, else None."""
    sock = socket_path(docker_host())
    # Cheap pre-check: docker-py leaks its socket when its constructor fails for want of an
    # engine, which a wait loop would repeat every half second.
    if sock is not None and not _unix_socket_accepts(sock, timeout):
        return None
    try:
        client = docker.from_env(timeout=timeout)
    except Exception:  # docker-py raises DockerException when no engine answers
        return None
    try:
        client.ping()
        return str(client.version().get("Version", "unknown"))
    except Exception:
        return None
    finally:
        client.close()


def can_start_engine() -> bool:
    return sys.platform.startswith("linux") and os.geteuid() == 0


def dockerd_command(sock: str, state: Path, extra_args: Sequence[str] = ()) -> list[str]:
    """The dockerd command line for a socket.

    The default socket gets Docker's default data root, so images survive for a
    later engine started any other way.  Any other socket is a second, private
    engine: its data and exec roots live in ``state`` so it shares nothing
    with an engine already running.
    """
    cmd = ["dockerd", *DOCKERD_FLAGS, "-H", f"unix://{sock}", "--pidfile", str(state / "pid")]
    if sock != DEFAULT_SOCKET:
        cmd += ["--data-root", str(state / "data"), "--exec-root", str(state / "exec")]
    return [*cmd, *extra_args]


def _state_dir(cache: Path, sock: str) -> Path:
    key = "default" if sock == DEFAULT_SOCKET else hashlib.sha256(sock.encode()).hexdigest()[:10]
    state = cache / "dockerd" / key
    state.mkdir(parents=True, exist_ok=True)
    return state


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


#: Containers inherit their ulimit ceiling from dockerd: a cluster asking nofile=65536
#: (the write-up's fix for nginx's 500s) fails to start under a shell's 20000 limit.
ENGINE_NOFILE = 1_048_576


def _raise_nofile() -> None:
    """Runs in the dockerd child before exec: lift its open-files limit (root may)."""
    try:
        nr_open = int(Path("/proc/sys/fs/nr_open").read_text().strip())
    except (OSError, ValueError):
        nr_open = ENGINE_NOFILE
    limit = min(ENGINE_NOFILE, nr_open)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))


def _start_dockerd(
    sock: str, cache: Path, extra_args: Sequence[str], timeout: float, progress: Progress
) -> EngineInfo:
    state = _state_dir(cache, sock)
    log = log_file(cache, "dockerd" if sock == DEFAULT_SOCKET else f"dockerd-{state.name}")
    cmd = dockerd_command(sock, state, extra_args)
    progress(f"starting dockerd on {sock} (log: {log})")
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(cmd)}\n".encode())
        out.flush()
        # A new session so the engine outlives this process and a Ctrl-C here.
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=_raise_nofile,
        )  # fmt: skip

    def answered_or_died() -> str:
        if proc.poll() is not None:
            return f"dead (exit {proc.returncode})"
        version = ping_engine(timeout=2.0)
        return "" if version is None else f"up {version}"

    try:
        state_seen = eventually_sync(
            answered_or_died, what=f"dockerd to answer on {sock}", timeout=timeout, interval=0.5
        )
    except WaitTimeout:
        raise SetupError(
            f"dockerd did not answer on {sock} within {timeout:.0f}s; see {log}"
        ) from None
    if state_seen.startswith("dead"):
        last = _tail(log, 1).strip()
        raise SetupError(f"dockerd exited at start ({state_seen}): {last[:200]}; see {log}")
    _STARTED[proc.pid] = proc
    (state / "started-by-loomchaos.json").write_text(
        json.dumps({"pid": proc.pid, "socket": sock, "started_at": time.time()})
    )
    return EngineInfo(
        started_by_us=True,
        server_version=state_seen.removeprefix("up "),
        docker_host=f"unix://{sock}",
        pid=proc.pid,
        log_path=log,
    )


def ensure_engine(
    progress: Progress = print,
    *,
    extra_args: Sequence[str] = (),
    start_timeout: float = 90.0,
) -> EngineInfo:
    """Return an engine that answers at DOCKER_HOST, starting one only if none does.

    ``extra_args`` go to a dockerd we start (e.g. ``--bridge=none`` for a
    second engine beside a running one).  Raises :class:`SetupError` with one
    line when no engine answers and none can be started here.
    """
    host = docker_host()
    version = ping_engine()
    if version is not None:
        return EngineInfo(started_by_us=False, server_version=version, docker_host=host)
    sock = socket_path(host)
    if sock is None:
        raise SetupError(
            f"no Docker engine answers at DOCKER_HOST={host}; start it or unset DOCKER_HOST"
        )
    if not can_start_engine():
        raise SetupError(
            f"no Docker engine answers at {host}: start Docker (or run as root on Linux "
            "so loomchaos can start one)"
        )
    cache = cache_dir()
    if shutil.which("dockerd") is None:
        ensure_tool("dockerd", "docker.io", cache, progress)
        # The package may have started an engine itself (systemd): use it if so.
        version = ping_engine()
        if version is not None:
            return EngineInfo(started_by_us=False, server_version=version, docker_host=host)
    return _start_dockerd(sock, cache, extra_args, start_timeout, progress)


def stop_started_engine(info: EngineInfo, *, timeout: float = 60.0) -> None:
    """Stop an engine this process started; do nothing for any other engine."""
    if not info.started_by_us or info.pid is None or not pid_alive(info.pid):
        return
    pid = info.pid
    proc = _STARTED.pop(pid, None)
    os.kill(pid, signal.SIGTERM)
    if proc is not None:  # our child: wait() reaps it, so no zombie is left behind
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SetupError(
                f"dockerd pid {pid} did not exit within {timeout:.0f}s of SIGTERM"
            ) from None
        return
    eventually_sync(
        lambda: not pid_alive(pid), what=f"dockerd pid {pid} to exit after SIGTERM", timeout=timeout
    )
