"""Build one source tree into the target's binary.

The builder is a protocol so the fast tier can count builds without Go.  The
real one runs ``go build`` with the suite's fixed ``GOPATH``/``GOCACHE`` (see
:func:`chaos.provision.binaries.go_env`): every mutant shares the build cache,
so after the first (control) build only the patched package and what depends
on it are compiled again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from chaos.errors import SetupError
from chaos.provision.binaries import go_env
from chaos.provision.common import one_line
from chaos.sut.loomcycle import build as target_build

#: Time one build may take: a cold build of the whole target is minutes on two cores.
BUILD_TIMEOUT_S = 1800


def target_module() -> tuple[str, str]:
    """(module path, main package relative to it) of the target, e.g. ``(m, "./cmd/x")``."""
    module, sep, command = target_build.GO_MODULE.partition("/cmd/")
    if not sep:
        raise SetupError(f"cannot split {target_build.GO_MODULE} into module and ./cmd/<name>")
    return module, f"./cmd/{command}"


@dataclass(frozen=True)
class BuildResult:
    ok: bool
    seconds: float
    binary: Path | None
    #: The last lines of the compiler's output when ``ok`` is false.
    error: str = ""


class Builder(Protocol):
    def build(self, tree: Path, out: Path) -> BuildResult: ...


@dataclass(frozen=True)
class GoBuilder:
    """``go build -trimpath -o OUT ./cmd/<name>`` in ``tree``, CGO off (a static binary)."""

    cache: Path
    main_package: str
    #: Compiling is CPU work beside other people's Docker runs: lowest priority by default.
    niceness: int = 19

    def build(self, tree: Path, out: Path) -> BuildResult:
        go = shutil.which("go")
        if go is None:
            raise SetupError("Go is not installed: install Go >= 1.26 and put `go` on PATH")
        out.parent.mkdir(parents=True, exist_ok=True)
        env = go_env(self.cache, out.parent)
        cmd = [go, "build", "-trimpath", "-buildvcs=false", "-o", str(out), self.main_package]
        started = time.monotonic()
        try:
            proc = subprocess.run(
                cmd,
                cwd=tree,
                env=env,
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT_S,
                check=False,
                preexec_fn=lambda: os.nice(self.niceness),
            )
        except subprocess.TimeoutExpired:
            elapsed = time.monotonic() - started
            return BuildResult(False, elapsed, None, f"go build timed out after {elapsed:.0f}s")
        elapsed = time.monotonic() - started
        if proc.returncode != 0 or not out.is_file():
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            return BuildResult(False, elapsed, None, tail or f"go build exited {proc.returncode}")
        return BuildResult(True, elapsed, out)


def error_line(result: BuildResult) -> str:
    return one_line(result.error, 240) if result.error else ""
