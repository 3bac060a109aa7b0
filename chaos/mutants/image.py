"""One labelled replica image per build, never confused with the suite's own.

The image is the suite's replica image (``<namespace>/<target>:local``) with
the built binary copied in as the entrypoint, tagged
``<namespace>-mutants/<target>:<session>-<name>``: the shared ``:local`` tag is
never touched, so other sessions keep the unpatched target.  Every image
carries the suite's labels (suite, session, pid, role ``mutant-image``, the
patch name); the campaign removes it after its scenarios, and
:func:`sweep_mutant_images` removes those a killed campaign left.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable
from pathlib import Path

import docker
import docker.errors

from chaos.cluster.docker_ops import require_image
from chaos.errors import SetupError
from chaos.labels import LABEL_PID, LABEL_SESSION, LABEL_SUITE, SUITE, docker_labels, pid_alive
from chaos.provision.common import one_line

ROLE = "mutant-image"
LABEL_ROLE = "io.loomchaos.role"
#: Inside the image: a path of our own, so the base image's layout does not matter.
ENTRYPOINT_DIR = "/opt/loomchaos-mutant"


def mutant_tag(namespace: str, target: str, session_id: str, name: str) -> str:
    """``<namespace>-mutants/<target>:<session>-<name>`` (a valid tag: at most 128 chars)."""
    return f"{namespace}-mutants/{target}:{session_id}-{name}".lower()[:160]


def dockerfile(base: str, target: str) -> str:
    return (
        f"FROM {base}\n"
        f"COPY {target} {ENTRYPOINT_DIR}/{target}\n"
        f'ENTRYPOINT ["{ENTRYPOINT_DIR}/{target}"]\n'
    )


def build_image(
    client: docker.DockerClient,
    *,
    base: str,
    binary: Path,
    target: str,
    tag: str,
    session_id: str,
    name: str,
) -> str:
    """Build ``tag`` from ``base`` with ``binary`` as the entrypoint; return the tag."""
    require_image(client, base)
    labels = docker_labels(session_id, role=ROLE, mutant=name)
    with tempfile.TemporaryDirectory(prefix="loomchaos-mutant-image-") as stage:
        (Path(stage) / "Dockerfile").write_text(dockerfile(base, target))
        (Path(stage) / target).write_bytes(binary.read_bytes())
        (Path(stage) / target).chmod(0o755)
        try:
            client.images.build(path=stage, tag=tag, labels=labels, rm=True, forcerm=True)
        except (docker.errors.BuildError, docker.errors.APIError) as exc:
            raise SetupError(f"docker build of {tag} failed: {one_line(str(exc), 200)}") from None
    return tag


def remove_image(client: docker.DockerClient, tag: str) -> None:
    """Remove ``tag`` if present (its layers go too: nothing else uses them)."""
    with contextlib.suppress(docker.errors.ImageNotFound):
        client.images.remove(tag, force=True, noprune=False)


def sweep_mutant_images(client: docker.DockerClient) -> list[str]:
    """Remove mutant images whose campaign process is gone; return their tags."""
    removed: list[str] = []
    filters = {"label": [f"{LABEL_SUITE}={SUITE}", f"{LABEL_ROLE}={ROLE}"]}
    for image in client.images.list(filters=filters):
        labels = image.labels or {}
        pid = labels.get(LABEL_PID, "")
        if not pid.isdigit() or pid_alive(int(pid)) or not labels.get(LABEL_SESSION):
            continue
        tags = list(image.tags) or [image.id]
        for tag in tags:
            remove_image(client, tag)
        removed.extend(tags)
    return removed


class ImageMaker:
    """What a campaign needs from Docker: make and remove one labelled image per build.

    The engine is reached only when an image is made (``connect`` is called
    then, once): a campaign that only reads back earlier results never touches it.
    """

    def __init__(
        self,
        connect: Callable[[], docker.DockerClient],
        base: str,
        target: str,
        namespace: str,
        session_id: str,
    ) -> None:
        self._connect = connect
        self._client: docker.DockerClient | None = None
        self.base = base
        self.target = target
        self.namespace = namespace
        self.session_id = session_id

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = self._connect()
        return self._client

    def make(self, binary: Path, name: str) -> str:
        tag = mutant_tag(self.namespace, self.target, self.session_id, name)
        return build_image(
            self.client,
            base=self.base,
            binary=binary,
            target=self.target,
            tag=tag,
            session_id=self.session_id,
            name=name,
        )

    def remove(self, tag: str) -> None:
        remove_image(self.client, tag)
