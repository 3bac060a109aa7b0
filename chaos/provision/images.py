"""Which image each role uses, and making sure public images are present.

Two families, chosen by configuration (``LOOMCHAOS_IMAGE_SOURCE``):

* ``local``: built on this machine from Debian's packages (see
  :mod:`chaos.provision.localbuild`), tagged ``<namespace>/<role>:local``;
* ``public``: the upstream images, used if present, pulled otherwise.

Both keep one entrypoint contract (``POSTGRES_*`` variables for Postgres,
``nginx -g 'daemon off;'`` with ``/etc/nginx/nginx.conf``, Toxiproxy's API on
8474, loomcycle as the entrypoint), so the cluster code does not care which.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import docker
import docker.errors

from chaos.cluster.spec import Images, ResolvedImages
from chaos.errors import SetupError
from chaos.provision.common import Progress, one_line
from chaos.sut.loomcycle import build as target_build

ENV_SOURCE = "LOOMCHAOS_IMAGE_SOURCE"
ENV_LOOMCYCLE_IMAGE = target_build.ENV_IMAGE
#: Repository prefix of the local images; another value keeps a trial build apart.
ENV_NAMESPACE = "LOOMCHAOS_IMAGE_NAMESPACE"
DEFAULT_NAMESPACE = "loomchaos"
SOURCES = ("local", "public")

PUBLIC_POSTGRES = "postgres:16"
PUBLIC_NGINX = "nginx:1.27-alpine"
PUBLIC_TOXIPROXY = "ghcr.io/shopify/toxiproxy:2.12.0"
PUBLIC_LOOMCYCLE_REPO = target_build.PUBLIC_REPO


def choose_source(explicit: str | None, env: Mapping[str, str] | None = None) -> str:
    """``explicit`` if given, else ``$LOOMCHAOS_IMAGE_SOURCE``, else ``local``."""
    env = os.environ if env is None else env
    source = explicit or env.get(ENV_SOURCE) or "local"
    if source not in SOURCES:
        raise SetupError(f"unknown image source {source!r}: use one of {', '.join(SOURCES)}")
    return source


def namespace(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    return env.get(ENV_NAMESPACE) or DEFAULT_NAMESPACE


def base_tag(env: Mapping[str, str] | None = None) -> str:
    return f"{namespace(env)}/base:bookworm"


def local_tag(role: str, env: Mapping[str, str] | None = None) -> str:
    return f"{namespace(env)}/{role}:local"


def image_names(source: str, images: Images, env: Mapping[str, str]) -> ResolvedImages:
    """References for ``source``; explicit refs in ``images`` win, then the env override."""
    if source == "local":
        defaults = {role: local_tag(role, env) for role in ("postgres", "nginx", "toxiproxy")}
        loomcycle = local_tag("loomcycle", env)
    elif source == "public":
        defaults = {
            "postgres": PUBLIC_POSTGRES,
            "nginx": PUBLIC_NGINX,
            "toxiproxy": PUBLIC_TOXIPROXY,
        }
        version = env.get(target_build.ENV_VERSION) or target_build.VERSION
        loomcycle = f"{PUBLIC_LOOMCYCLE_REPO}:{version}"
    else:
        raise SetupError(f"unknown image source {source!r}: use one of {', '.join(SOURCES)}")
    return ResolvedImages(
        postgres=images.postgres or defaults["postgres"],
        nginx=images.nginx or defaults["nginx"],
        toxiproxy=images.toxiproxy or defaults["toxiproxy"],
        loomcycle=images.loomcycle or env.get(ENV_LOOMCYCLE_IMAGE) or loomcycle,
    )


def resolve_images(images: Images, env: Mapping[str, str] | None = None) -> ResolvedImages:
    """Image names for a cluster spec; pure (no Docker).

    The source is ``$LOOMCHAOS_IMAGE_SOURCE`` when set (the machine's choice),
    else ``images.source``.  ``loomcycle`` is always a name here: whether that
    image exists is :func:`chaos.provision.provision`'s answer
    (``Provisioned.images.loomcycle is None`` and ``loomcycle_error``).
    """
    env = os.environ if env is None else env
    source = choose_source(env.get(ENV_SOURCE) or images.source, env)
    return image_names(source, images, env)


def split_ref(ref: str) -> tuple[str, str]:
    """(repository, tag) of an image reference; a registry port is not a tag."""
    if "@" in ref:
        repo, digest = ref.split("@", 1)
        return repo, digest
    repo, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, "latest"
    return repo, tag


def ensure_present(client: docker.DockerClient, ref: str, progress: Progress) -> bool:
    """Make sure ``ref`` is in the engine; pull it if not.  True if it had to be pulled."""
    try:
        client.images.get(ref)
        return False
    except docker.errors.ImageNotFound:
        pass
    progress(f"pulling {ref}")
    repo, tag = split_ref(ref)
    try:
        client.images.pull(repo, tag=tag)
    except docker.errors.DockerException as exc:
        raise SetupError(
            f"image {ref} is not present and cannot be pulled ({one_line(str(exc), 160)}): "
            f"pull it yourself or set {ENV_SOURCE}=local"
        ) from None
    return True
