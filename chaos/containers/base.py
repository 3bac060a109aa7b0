"""A testcontainers ``DockerContainer`` that keeps the suite's rules.

What testcontainers would otherwise do differently, and why it must not here:

* it pulls a missing image: there is no registry; the images are built
  locally (``loomchaos setup``), so a missing one is a :class:`SetupError`;
* it publishes ports on every interface: here only on 127.0.0.1, and a port
  found bound anywhere else is refused (:func:`chaos.cluster.addresses.published_port`);
* it labels only for Ryuk: here every container also carries the suite's
  labels, so ``loomchaos sweep`` removes what a killed process left.

:class:`SuiteContainer` also works as the first base beside another
testcontainers class (``class P(SuiteContainer, PostgresContainer)``): every
override calls ``super()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, cast

import docker
import docker.errors
from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network

from chaos.cluster.addresses import LOOPBACK, published_port
from chaos.containers.settings import (
    process_session_id,
    suite_labels,
    use_suite_settings,
)
from chaos.errors import SetupError

#: What docker-py accepts as one port's binding: (host address, host port or None).
Binding = tuple[str, int | None]


def loopback_bindings(ports: Mapping[str, object]) -> dict[str, Binding]:
    """Every published port bound to 127.0.0.1 only.

    ``None`` (any host port) and a fixed host port keep their host port; a
    binding already on 127.0.0.1 is kept, so calling this twice is harmless.
    Any other value (another address, a list of bindings) is refused rather
    than silently narrowed.
    """
    out: dict[str, Binding] = {}
    for key, value in ports.items():
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            out[key] = (LOOPBACK, value)
        elif (
            isinstance(value, tuple)
            and len(value) == 2
            and value[0] == LOOPBACK
            and (value[1] is None or isinstance(value[1], int))
        ):
            out[key] = (LOOPBACK, value[1])
        else:
            raise ValueError(f"port {key}: binding {value!r} is not 127.0.0.1-only")
    return out


def require_local_image(client: docker.DockerClient, image: str) -> None:
    """Raise :class:`SetupError` unless ``image`` is in the engine (never pull)."""
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        raise SetupError(
            f"image {image} is not in the Docker engine and is never pulled here: "
            "build the suite's images with `loomchaos setup`"
        ) from None


class SuiteContainer(DockerContainer):
    """``DockerContainer`` with labels, loopback-only ports and no pulls.

    ``session_id`` goes into the labels (default: one id per process); the
    ``role`` class attribute names what the container is.
    """

    role: ClassVar[str] = "container"

    def __init__(self, image: str, *, session_id: str | None = None, **kwargs: Any) -> None:
        use_suite_settings()
        super().__init__(image, **kwargs)
        self.session_id = session_id or process_session_id()
        self.suite_labels = suite_labels(self.session_id, self.role)

    def _configure(self) -> None:
        # testcontainers' hook, called in start() before the container is
        # created (twice by its database classes, so everything here is idempotent).
        super()._configure()
        require_local_image(self.get_docker_client().client, self.image)
        labels = dict(self._kwargs.get("labels") or {})
        labels.update(self.suite_labels)
        self._kwargs = {**self._kwargs, "labels": labels}
        # docker-py takes (address, port) bindings; testcontainers' annotation
        # says int | None only, hence the cast.
        self.ports = cast("dict[str, int | None]", loopback_bindings(self.ports))

    def get_container_host_ip(self) -> str:
        return LOOPBACK

    def get_exposed_port(self, port: int) -> int:
        """The host port published for ``port`` on 127.0.0.1 (refuses any other address)."""
        container = self.get_wrapped_container()
        container.reload()
        return published_port(container.attrs["NetworkSettings"]["Ports"], port)


def suite_network(session_id: str | None = None) -> Network:
    """A testcontainers ``Network`` carrying the suite's labels (create it with ``with``)."""
    use_suite_settings()
    labels = suite_labels(session_id or process_session_id(), "network")
    return Network(docker_network_kw={"labels": labels})
