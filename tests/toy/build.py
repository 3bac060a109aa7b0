"""Build the toy service (Go) and its image, reusing both while their inputs are unchanged.

The binary goes to ``<cache>/toy/toy-service`` with a stamp holding the hash of
the Go sources; the image ``<namespace>/toy:local`` is built ``FROM`` the suite's
local base image (never pulled) and labelled like the suite's own cache images,
with a hash of the binary and the base image's id.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker

from chaos.errors import SetupError
from chaos.provision.common import cache_dir, digest_of, sha256_file
from chaos.provision.images import base_tag, local_tag
from chaos.provision.localbuild import cache_labels, image_state

SOURCE = Path(__file__).resolve().parent / "service"
SOURCE_FILES = ("main.go", "go.mod", "go.sum")
GOENV = Path(__file__).resolve().parents[2] / "scripts" / "goenv.sh"
DOCKERFILE = """\
ARG BASE
FROM ${BASE}
COPY toy-service /usr/local/bin/toy-service
EXPOSE 8787
ENTRYPOINT ["/usr/local/bin/toy-service"]
"""
GO_BUILD_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class ToyImage:
    tag: str
    binary_built: bool
    image_built: bool
    seconds: float


def source_hash() -> str:
    return digest_of({name: sha256_file(SOURCE / name) for name in SOURCE_FILES})


def ensure_binary(cache: Path) -> tuple[Path, bool]:
    """The static binary, rebuilt only when the Go sources changed (offline: the module
    cache already holds pgx, a dependency of loomcycle)."""
    out_dir = cache / "toy"
    binary, stamp = out_dir / "toy-service", out_dir / "toy-service.source"
    wanted = source_hash()
    if binary.is_file() and stamp.is_file() and stamp.read_text().strip() == wanted:
        return binary, False
    out_dir.mkdir(parents=True, exist_ok=True)
    partial = out_dir / "toy-service.partial"
    env = {
        **os.environ,
        "GOPATH": str(cache / "go" / "path"),
        "GOCACHE": str(cache / "go" / "build-cache"),
        "CGO_ENABLED": "0",
        "GOFLAGS": "-mod=readonly",
    }
    script = f'source "{GOENV}" && exec go build -o "{partial}" .'
    try:
        proc = subprocess.run(
            ["bash", "-c", script],
            cwd=SOURCE,
            env=env,
            capture_output=True,
            text=True,
            timeout=GO_BUILD_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise SetupError(f"go build of the toy service took over {GO_BUILD_TIMEOUT_S}s") from None
    if proc.returncode != 0:
        raise SetupError(f"go build of the toy service failed: {proc.stderr.strip()[-800:]}")
    os.replace(partial, binary)
    stamp.write_text(wanted + "\n")
    return binary, True


def _build_image(client: docker.DockerClient, binary: Path, tag: str, inputs: str) -> None:
    stage = binary.parent / "image"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    shutil.copy2(binary, stage / "toy-service")
    (stage / "Dockerfile").write_text(DOCKERFILE)
    stream: Any = client.api.build(
        path=str(stage),
        tag=tag,
        labels=cache_labels(inputs),
        buildargs={"BASE": base_tag()},
        rm=True,
        forcerm=True,
        pull=False,
        decode=True,
    )
    for chunk in stream:
        if "error" in chunk:
            raise SetupError(f"docker build of {tag} failed: {str(chunk['error']).strip()[:300]}")


def ensure_toy_image(client: docker.DockerClient | None = None) -> ToyImage:
    began = time.monotonic()
    cache = cache_dir()
    binary, binary_built = ensure_binary(cache)
    client = client or docker.from_env()
    base_id, _ = image_state(client, base_tag())
    if base_id is None:
        raise SetupError(f"the base image {base_tag()} is missing: run `loomchaos setup` first")
    tag = local_tag("toy")
    inputs = digest_of({"binary": sha256_file(binary), "base": base_id, "dockerfile": DOCKERFILE})
    _, label = image_state(client, tag)
    image_built = label != inputs
    if image_built:
        _build_image(client, binary, tag, inputs)
        if image_state(client, tag)[1] != inputs:
            raise SetupError(f"docker build of {tag} left no image with inputs {inputs}")
    return ToyImage(tag, binary_built, image_built, time.monotonic() - began)
