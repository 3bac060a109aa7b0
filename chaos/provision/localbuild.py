"""The air-gapped image source: images built here from Debian's packages.

Two layers, each rebuilt only when its inputs change:

* a base image imported from a ``debootstrap --variant=minbase`` root holding
  Postgres, nginx and a few tools, labelled with a hash of the suite and
  package list;
* one small image per service, built from ``fixtures/images/<name>/`` (plus a
  binary from the cache) and labelled with a hash of every input file and of
  the base image's id, so a new base rebuilds them too.

Images are a cache, not session objects: they carry ``io.loomchaos.suite``
and the role ``image-cache``, and no session label, so the session sweep
leaves them alone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import docker
import docker.errors

from chaos.errors import SetupError
from chaos.labels import LABEL_ROLE, LABEL_SUITE, SUITE
from chaos.provision.apt import debian_mirror, ensure_tool
from chaos.provision.common import Progress, digest_of, log_file, run_logged, sha256_file

LABEL_INPUTS = "io.loomchaos.inputs"
ROLE_IMAGE_CACHE = "image-cache"
BASE_SUITE = "bookworm"
BASE_VARIANT = "minbase"
# libfaketime: Postgres's wall clock set apart from the replicas' (chaos.faults.clock).
BASE_PACKAGES = (
    "postgresql-15",
    "nginx-light",
    "procps",
    "iproute2",
    "ca-certificates",
    "libfaketime",
)
#: Bump when the way the base is made changes without the package list changing.
BASE_RECIPE_VERSION = 1
# Packaged with chaos (fixtures/images is a link here), so a pip-installed loomchaos can build too.
FIXTURES = Path(__file__).resolve().parents[1] / "assets" / "images"
#: Left out of the base image: apt's download cache and package lists (~150 MB).
_TAR_EXCLUDES = ("./var/cache/apt/archives/*.deb", "./var/lib/apt/lists/*_*")


@dataclass(frozen=True)
class Recipe:
    """One service image: its fixtures folder, its tag, and binaries copied into the context."""

    name: str
    tag: str
    binaries: tuple[tuple[str, Path], ...] = ()


def base_inputs_hash(packages: tuple[str, ...] = BASE_PACKAGES) -> str:
    return digest_of(
        {
            "suite": BASE_SUITE,
            "variant": BASE_VARIANT,
            "packages": sorted(packages),
            "recipe": BASE_RECIPE_VERSION,
        }
    )


def context_files(recipe: Recipe, fixtures: Path = FIXTURES) -> dict[str, Path]:
    """Every file of the build context, by its name inside the context."""
    folder = fixtures / recipe.name
    if not (folder / "Dockerfile").is_file():
        raise SetupError(f"missing {folder}/Dockerfile: run from a checkout of loomchaos")
    files = {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}
    files.update(dict(recipe.binaries))
    return files


def recipe_inputs_hash(files: Mapping[str, Path], base_id: str) -> str:
    """The hash a built image is labelled with: its files' contents and the base it is built on."""
    return digest_of({"base": base_id, "files": {n: sha256_file(p) for n, p in files.items()}})


def cache_labels(inputs_hash: str) -> dict[str, str]:
    return {LABEL_SUITE: SUITE, LABEL_ROLE: ROLE_IMAGE_CACHE, LABEL_INPUTS: inputs_hash}


def image_state(client: docker.DockerClient, tag: str) -> tuple[str | None, str | None]:
    """(image id, inputs-hash label) of ``tag``, or (None, None) if there is no such image."""
    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None, None
    labels: dict[str, str] = image.labels or {}
    return str(image.id), labels.get(LABEL_INPUTS)


def prune_replaced(client: docker.DockerClient) -> None:
    """Remove our cache images that a rebuild left untagged, unless a container still uses them.

    The filter matches only images with the image-cache role, so nothing
    another tool or a user built is ever touched.
    """
    with contextlib.suppress(docker.errors.APIError):  # only disk space is at stake
        client.images.prune(filters={"dangling": True, "label": f"{LABEL_ROLE}={ROLE_IMAGE_CACHE}"})


# --- the base image ---------------------------------------------------------------------


def _debootstrap(root: Path, cache: Path, progress: Progress) -> None:
    if os.geteuid() != 0:
        raise SetupError(
            "building the local images needs root (debootstrap): run as root, "
            "or use LOOMCHAOS_IMAGE_SOURCE=public"
        )
    ensure_tool("debootstrap", "debootstrap", cache, progress)
    mirror = debian_mirror(BASE_SUITE)
    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)  # a killed earlier attempt
    log = log_file(cache, "debootstrap")
    progress(f"debootstrap {BASE_SUITE} with {len(BASE_PACKAGES)} packages (~1 min; log: {log})")
    cmd = [
        "debootstrap",
        f"--variant={BASE_VARIANT}",
        f"--include={','.join(BASE_PACKAGES)}",
        BASE_SUITE,
        str(partial),
        mirror,
    ]
    if run_logged(cmd, log=log, timeout=1800) != 0:
        raise SetupError(f"debootstrap of {BASE_SUITE} failed; see {log}")
    partial.rename(root)


def _tar_chunks(proc: subprocess.Popen[bytes]) -> Iterator[bytes]:
    out: IO[bytes] | None = proc.stdout
    assert out is not None
    yield from iter(lambda: out.read(1 << 20), b"")


def _import_root(
    client: docker.DockerClient, root: Path, tag: str, inputs: str, cache: Path
) -> None:
    log = log_file(cache, "import-base")
    repository, _, version = tag.rpartition(":")
    cmd = ["tar", "-C", str(root), "--numeric-owner"]
    cmd += [f"--exclude={pattern}" for pattern in _TAR_EXCLUDES]
    cmd += ["-c", "."]
    with log.open("ab") as err:
        err.write(f"\n$ {' '.join(cmd)} | docker import - {tag}\n".encode())
        err.flush()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
        try:
            changes = [f"LABEL {k}={v}" for k, v in cache_labels(inputs).items()]
            result = client.api.import_image_from_stream(
                _tar_chunks(proc), repository=repository, tag=version, changes=changes
            )
            err.write(f"{result}\n".encode())
        except docker.errors.APIError as exc:
            raise SetupError(
                f"docker import of {root} failed: {exc.explanation}; see {log}"
            ) from None
        finally:
            if proc.stdout is not None:
                proc.stdout.close()
            rc = proc.wait(timeout=120)
    if rc != 0:
        raise SetupError(f"tar of {root} failed (exit {rc}); see {log}")


def ensure_base(
    client: docker.DockerClient, tag: str, cache: Path, progress: Progress
) -> tuple[str, bool]:
    """The base image's id, and whether it was (re)built.

    The debootstrap root is kept under the cache (marked complete only after
    debootstrap succeeded), so a lost image is re-imported in seconds.
    """
    inputs = base_inputs_hash()
    old_id, label = image_state(client, tag)
    if old_id is not None and label == inputs:
        return old_id, False
    roots = cache / "rootfs"
    roots.mkdir(parents=True, exist_ok=True)
    root = roots / f"{BASE_SUITE}-{inputs}"
    for stale in roots.glob(f"{BASE_SUITE}-*"):
        if stale.name not in (root.name, root.name + ".partial"):
            shutil.rmtree(stale, ignore_errors=True)  # a root for an older package list
    if not root.is_dir():
        _debootstrap(root, cache, progress)
    progress(f"importing {root} as {tag}")
    _import_root(client, root, tag, inputs, cache)
    new_id, _ = image_state(client, tag)
    if new_id is None:
        raise SetupError(f"docker import reported success but {tag} is missing")
    return new_id, True


# --- the service images -----------------------------------------------------------------


def _stage(files: Mapping[str, Path], stage: Path) -> None:
    shutil.rmtree(stage, ignore_errors=True)
    for name, source in files.items():
        dest = stage / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, dest)


def _run_build(
    client: docker.DockerClient,
    stage: Path,
    tag: str,
    base_tag: str,
    labels: dict[str, str],
    log: Path,
) -> None:
    stream: Iterator[dict[str, Any]] = client.api.build(
        path=str(stage),
        tag=tag,
        labels=labels,
        buildargs={"BASE": base_tag},
        rm=True,
        forcerm=True,
        pull=False,
        decode=True,
    )
    with log.open("a") as out:
        out.write(f"\n# docker build {stage} -t {tag} (BASE={base_tag})\n")
        for chunk in stream:
            if "stream" in chunk:
                out.write(str(chunk["stream"]))
            if "error" in chunk:
                out.write(f"ERROR: {chunk['error']}\n")
                first = str(chunk["error"]).strip().splitlines()[0][:200]
                raise SetupError(f"docker build of {tag} failed: {first}; see {log}")


def ensure_recipe(
    client: docker.DockerClient,
    recipe: Recipe,
    base_tag: str,
    base_id: str,
    cache: Path,
    progress: Progress,
) -> bool:
    """Build ``recipe`` unless an image with equal inputs is already tagged; True if built."""
    files = context_files(recipe)
    inputs = recipe_inputs_hash(files, base_id)
    old_id, label = image_state(client, recipe.tag)
    if old_id is not None and label == inputs:
        return False
    log = log_file(cache, f"build-{recipe.name}")
    progress(f"building {recipe.tag} (log: {log})")
    stage = cache / "build" / recipe.name
    _stage(files, stage)
    try:
        _run_build(client, stage, recipe.tag, base_tag, cache_labels(inputs), log)
    except docker.errors.APIError as exc:
        raise SetupError(
            f"docker build of {recipe.tag} failed: {exc.explanation}; see {log}"
        ) from None
    _, new_label = image_state(client, recipe.tag)
    if new_label != inputs:
        raise SetupError(
            f"docker build of {recipe.tag} left no image with inputs {inputs}; see {log}"
        )
    return True
