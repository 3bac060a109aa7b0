"""Which replica image a build label means, and making it when it is not the provisioned one.

The label of the provisioned build is its version (``LOOMCHAOS_LOOMCYCLE_VERSION``
or the pinned release), or the override the user gave (a binary or an image).
Any other label is a module version: with local images it is ``go install``-ed
under its own name in the cache and packaged as ``<namespace>/<target>:<version>``
on the same base, beside (never replacing) the provisioned image, so other
sessions keep theirs; with public images it is the public repository's tag.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import docker

from chaos.cluster.spec import ResolvedImages
from chaos.errors import SetupError
from chaos.provision import Provisioned
from chaos.provision.binaries import GoInstallFailed, GoProgram, install_go_program
from chaos.provision.common import Progress, cache_dir, provision_lock
from chaos.provision.images import base_tag, ensure_present, namespace
from chaos.provision.localbuild import Recipe, ensure_base, ensure_recipe
from chaos.sut.loomcycle import build as target_build
from chaos.sut.loomcycle.adapter import NAME as TARGET_NAME


def default_build(env: Mapping[str, str] | None = None) -> str:
    """The label of what provisioning installs: the image or binary override, else the version."""
    env = os.environ if env is None else env
    if env.get(target_build.ENV_IMAGE):
        return env[target_build.ENV_IMAGE]
    if env.get(target_build.ENV_BIN):
        return f"bin:{Path(env[target_build.ENV_BIN]).name}"
    return env.get(target_build.ENV_VERSION) or target_build.VERSION


def version_image_tag(version: str, env: Mapping[str, str] | None = None) -> str:
    return f"{namespace(env)}/{TARGET_NAME}:{version}"


def _local_image(version: str, progress: Progress) -> str:
    cache = cache_dir()
    tag = version_image_tag(version)
    program = GoProgram(f"{TARGET_NAME}-{version}", target_build.GO_MODULE, version)
    with provision_lock(cache):
        try:
            binary, _ = install_go_program(program, cache, progress)
        except GoInstallFailed as exc:
            raise SetupError(
                f"cannot build {TARGET_NAME} {version}: {exc.line} (log: {exc.log})"
            ) from None
        client = docker.from_env(timeout=1800)  # an image build can be silent for minutes
        try:
            base = base_tag()
            base_id, _ = ensure_base(client, base, cache, progress)
            recipe = Recipe(TARGET_NAME, tag, ((TARGET_NAME, binary),))
            ensure_recipe(client, recipe, base, base_id, cache, progress)
        finally:
            client.close()
    return tag


def _public_image(version: str, progress: Progress) -> str:
    ref = f"{target_build.PUBLIC_REPO}:{version}"
    client = docker.from_env(timeout=1800)
    try:
        ensure_present(client, ref, progress)
    finally:
        client.close()
    return ref


def images_for(build: str, provisioned: Provisioned, progress: Progress) -> ResolvedImages:
    """The cluster images with ``build``'s replica image; a one-line SetupError when it
    cannot be had."""
    if build == default_build():
        if provisioned.images.loomcycle is None:
            raise SetupError(f"{TARGET_NAME} unavailable: {provisioned.loomcycle_error}")
        return provisioned.images
    if not build.startswith("v"):
        raise SetupError(f"build {build!r}: give a module version such as {target_build.VERSION}")
    if provisioned.source == "local":
        ref = _local_image(build, progress)
    else:
        ref = _public_image(build, progress)
    return replace(provisioned.images, loomcycle=ref)
