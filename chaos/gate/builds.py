"""What a ``--candidate``/``--baseline`` label means, as a replica image the scenarios can run.

Three spellings, the first that fits wins:

* ``bin:PATH`` or the path of an existing file: a loomcycle binary, copied
  into a labelled image on the suite's replica base (the way planted mutants
  are packaged: :mod:`chaos.mutants.image`) and removed when the gate ends;
* ``image:REF`` or anything with ``:`` or ``/`` that is not a version: an
  image already on the engine, used as it is (never pulled);
* ``vX.Y.Z``: a module version, installed and packaged by
  :func:`chaos.campaign.builds.images_for` (the provisioned version is
  the provisioned image).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import docker

from chaos.errors import SetupError

_VERSION = re.compile(r"^v\d+\.\d+\.\d+([-+][\w.-]+)?$")


@dataclass(frozen=True)
class Build:
    """A build under the gate: the label the user gave, its image, and that image's id."""

    label: str
    image: str
    image_id: str

    @property
    def slug(self) -> str:
        """The label as a folder name."""
        return re.sub(r"[^\w.-]+", "_", self.label).strip("_") or "build"


def kind_of(label: str) -> str:
    """``binary``, ``image`` or ``version``; a one-line SetupError when it is none of them."""
    if label.startswith("bin:") or Path(label).is_file():
        return "binary"
    if label.startswith("image:"):
        return "image"
    if _VERSION.match(label):
        return "version"
    if ":" in label or "/" in label:
        return "image"
    raise SetupError(
        f"build {label!r}: give a module version (v1.59.0), image:REF, or bin:PATH to a binary"
    )


def _image_id(client: docker.DockerClient, ref: str) -> str:
    try:
        return str(client.images.get(ref).id)
    except docker.errors.ImageNotFound:
        raise SetupError(f"image {ref} is not on the engine (the gate never pulls)") from None


@contextmanager
def resolved(
    labels: list[str],
    client: docker.DockerClient,
    version_image: Callable[[str], str],
    binary_image: Callable[[Path, str], str],
    remove_image: Callable[[str], None],
) -> Iterator[list[Build]]:
    """Every label as a :class:`Build`; images made from binaries are removed on the way out."""
    with ExitStack() as stack:
        builds: list[Build] = []
        for i, label in enumerate(labels):
            kind = kind_of(label)
            if kind == "binary":
                path = Path(label.removeprefix("bin:"))
                if not path.is_file():
                    raise SetupError(f"build {label!r}: no such binary {path}")
                ref = binary_image(path.resolve(), f"gate{i}-{path.name}")
                stack.callback(remove_image, ref)
            elif kind == "image":
                ref = label.removeprefix("image:")
            else:
                ref = version_image(label)
            builds.append(Build(label, ref, _image_id(client, ref)))
        yield builds
