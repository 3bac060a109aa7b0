"""Go programs the images need: Toxiproxy's server and the target, loomcycle.

Both are installed with the ordinary Go client (``go install module@version``)
into fixed directories under the cache, so a second run reuses the module and
build caches.  A stamp file beside each binary records the module, version
and the binary's sha256: a binary is reused only if all three still match.

loomcycle may be unobtainable (the module proxy refuses some modules): that is
not an error here but a result, the exact error line, so the caller can say
"loomcycle unavailable: <why>" and go on with the infrastructure.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from chaos.errors import SetupError
from chaos.provision.common import (
    Progress,
    log_file,
    log_size,
    one_line,
    read_since,
    run_logged,
    sha256_file,
)
from chaos.sut.loomcycle import build as target_build

ENV_LOOMCYCLE_BIN = target_build.ENV_BIN
ENV_LOOMCYCLE_VERSION = target_build.ENV_VERSION

#: Noise lines ``go install`` prints on success as well as on failure.
_GO_CHATTER = ("go: downloading ", "go: finding ", "go: extracting ", "go: found ")


@dataclass(frozen=True)
class GoProgram:
    """A Go command to install: ``module@version``, saved under ``name``."""

    name: str
    module: str
    version: str

    @property
    def built_name(self) -> str:
        """What ``go install`` names the binary: the module path's last element."""
        return self.module.rsplit("/", 1)[-1]

    def stamp(self, sha256: str) -> dict[str, str]:
        # CGO off: a static binary runs in any base image (Debian, Alpine, distroless).
        return {"module": self.module, "version": self.version, "cgo": "0", "sha256": sha256}


TOXIPROXY = GoProgram("toxiproxy-server", "github.com/Shopify/toxiproxy/v2/cmd/server", "v2.12.0")


def loomcycle_program(env: Mapping[str, str] | None = None) -> GoProgram:
    env = os.environ if env is None else env
    version = env.get(ENV_LOOMCYCLE_VERSION) or target_build.VERSION
    return GoProgram("loomcycle", target_build.GO_MODULE, version)


class GoInstallFailed(Exception):
    """``go install`` exited non-zero; ``line`` is its error, ``log`` the full output."""

    def __init__(self, line: str, log: Path) -> None:
        super().__init__(line)
        self.line = line
        self.log = log


def go_error_line(output: str, returncode: int) -> str:
    """The error ``go install`` printed, as one line, without its download chatter."""
    lines = [ln.strip() for ln in output.splitlines()]
    kept = [ln for ln in lines if ln and not ln.startswith(_GO_CHATTER) and not ln.startswith("$ ")]
    return one_line(" ".join(kept)) if kept else f"go install exited {returncode} with no message"


def stamp_path(binary: Path) -> Path:
    return binary.with_name(binary.name + ".stamp")


def is_current(binary: Path, program: GoProgram) -> bool:
    """Whether ``binary`` exists and its stamp says it is exactly ``program``, unchanged."""
    stamp = stamp_path(binary)
    if not binary.is_file() or not stamp.is_file():
        return False
    try:
        recorded = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(recorded, dict):
        return False
    return recorded == program.stamp(str(recorded.get("sha256", ""))) and recorded[
        "sha256"
    ] == sha256_file(binary)


def write_stamp(binary: Path, program: GoProgram) -> None:
    stamp_path(binary).write_text(json.dumps(program.stamp(sha256_file(binary)), indent=1) + "\n")


def go_env(cache: Path, gobin: Path) -> dict[str, str]:
    """Fixed GOPATH/GOCACHE under the cache dir: a second run reuses downloads and builds."""
    return {
        **os.environ,
        "GOPATH": str(cache / "go" / "path"),
        "GOCACHE": str(cache / "go" / "build-cache"),
        "GOBIN": str(gobin),
        "CGO_ENABLED": "0",
    }


def install_go_program(program: GoProgram, cache: Path, progress: Progress) -> tuple[Path, bool]:
    """Install (or reuse) ``program``; return its path and whether it was (re)built.

    Raises :class:`GoInstallFailed` if ``go install`` fails and
    :class:`SetupError` if Go itself is missing.
    """
    target = cache / "bin" / program.name
    if is_current(target, program):
        return target, False
    go = shutil.which("go")
    if go is None:
        raise SetupError(
            f"Go is not installed: install Go >= 1.26 and put `go` on PATH "
            f"(needed to install {program.module}@{program.version})"
        )
    gobin = cache / "go" / "staging" / program.name
    shutil.rmtree(gobin, ignore_errors=True)
    gobin.mkdir(parents=True)
    log = log_file(cache, f"go-install-{program.name}")
    progress(f"go install {program.module}@{program.version} (log: {log})")
    start = log_size(log)
    cmd = [go, "install", f"{program.module}@{program.version}"]
    rc = run_logged(cmd, log=log, timeout=1200, env=go_env(cache, gobin))
    if rc != 0:
        raise GoInstallFailed(go_error_line(read_since(log, start), rc), log)
    built = gobin / program.built_name
    if not built.is_file():
        raise SetupError(f"go install succeeded but left no {built}; see {log}")
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(built, target)  # same filesystem (both under the cache): atomic
    write_stamp(target, program)
    return target, True


def ensure_toxiproxy(cache: Path, progress: Progress) -> tuple[Path, bool]:
    """The Toxiproxy server binary; without it no fault can be injected, so failure is fatal."""
    try:
        return install_go_program(TOXIPROXY, cache, progress)
    except GoInstallFailed as exc:
        raise SetupError(f"cannot install toxiproxy-server: {exc.line} (log: {exc.log})") from None


@dataclass(frozen=True)
class LoomcycleBinary:
    path: Path | None
    rebuilt: bool = False
    error: str | None = None


def ensure_loomcycle(
    cache: Path, progress: Progress, env: Mapping[str, str] | None = None
) -> LoomcycleBinary:
    """The loomcycle binary: the override, a reused install, or a fresh ``go install``.

    A failed install is returned as ``error`` (the exact go error line), not
    raised: the infrastructure is still worth provisioning.
    """
    env = os.environ if env is None else env
    override = env.get(ENV_LOOMCYCLE_BIN)
    if override:
        path = Path(override).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise SetupError(f"{ENV_LOOMCYCLE_BIN}={override} is not an executable file")
        return LoomcycleBinary(path=path.absolute())
    try:
        path, rebuilt = install_go_program(loomcycle_program(env), cache, progress)
    except GoInstallFailed as exc:
        return LoomcycleBinary(path=None, error=exc.line)
    return LoomcycleBinary(path=path, rebuilt=rebuilt)
