"""A cluster node made by testcontainers' ``DockerContainer`` from a :class:`ContainerPlan`.

testcontainers creates, copies the files in and starts; what it cannot do is
kept, on purpose, in the plan's kwargs and in one override:

* the pinned address: testcontainers' own ``with_network`` gives aliases
  only, but its ``start()`` lets explicit kwargs override its network
  arguments, so ``network`` + ``networking_config`` carry the plan's IP;
* files owned by the image's user: testcontainers tars what it copies as
  root; :meth:`NodeContainer._transfer_into_container` tars as the image's
  ``User`` (the distroless loomcycle image runs as 65532 and must read its
  config);
* restart, pause and reconnection after a fault: testcontainers'
  ``start()`` always creates a new container and ``stop()`` removes it, so
  the cluster drives an existing node through docker-py
  (``Cluster.revive``), by name.

Readiness stays with the cluster (async probes with deadlines,
``chaos/cluster/readiness.py``): testcontainers' wait strategies block a
thread per container and know nothing of Toxiproxy's proxies or a replica's
view of its peers.
"""

from __future__ import annotations

import re
import resource
from pathlib import Path
from typing import cast

import docker
import docker.errors
import docker.types
from docker.models.containers import Container
from testcontainers.core.container import DockerContainer
from testcontainers.core.transferable import Transferable

from chaos.cluster.docker_ops import ContainerPlan, image_owner, require_image, tar_files
from chaos.cluster.tc_settings import use_suite_settings
from chaos.errors import SetupError


class NodeContainer(DockerContainer):
    """One planned node: pinned IP, loopback-only ports, labels, files owned by the image's user."""

    def __init__(self, plan: ContainerPlan, owner: tuple[int, int] = (0, 0)) -> None:
        use_suite_settings()  # in pytest or not: no Ryuk (nothing to pull it from), loopback only
        super().__init__(
            plan.image,
            command=cast("str | None", list(plan.command) if plan.command is not None else None),
            env=dict(plan.env),
            name=plan.name,
        )
        self.plan = plan
        self._owner = owner
        endpoint = docker.types.EndpointConfig(
            docker.constants.DEFAULT_DOCKER_API_VERSION,
            ipv4_address=plan.ip,
            aliases=list(plan.aliases) or None,
        )
        kwargs: dict[str, object] = {
            "hostname": plan.hostname,
            "labels": dict(plan.labels),
            "network": plan.network,
            "networking_config": {plan.network: endpoint},
        }
        if plan.nofile is not None:
            kwargs["ulimits"] = [
                docker.types.Ulimit(name="nofile", soft=plan.nofile, hard=plan.nofile)
            ]
        if plan.stop_signal:
            kwargs["stop_signal"] = plan.stop_signal
        self.with_kwargs(**kwargs)
        # 127.0.0.1 with no host port: Docker picks a free one; the cluster reads it back.
        self.ports = cast(
            "dict[str, int | None]", {f"{p}/tcp": ("127.0.0.1", None) for p in plan.ports}
        )
        for volume, path in plan.volumes.items():
            self.with_volume_mapping(volume, path, "rw")
        for path, content in plan.files.items():
            self.with_copy_into_container(content, path)

    def _transfer_into_container(
        self, transferable: Transferable, destination_in_container: str, mode: int
    ) -> None:
        content = (
            transferable if isinstance(transferable, bytes) else Path(transferable).read_bytes()
        )
        uid, gid = self._owner
        tar = tar_files({destination_in_container: content}, uid=uid, gid=gid, mode=mode)
        container = self.get_wrapped_container()
        if not container.put_archive("/", tar):
            raise SetupError(f"could not copy {destination_in_container} into {self.plan.name}")


def start_node(client: docker.DockerClient, plan: ContainerPlan) -> Container:
    """Create, fill and start ``plan``'s container through testcontainers; return it (docker-py).

    The image must be local (no registry here: testcontainers would pull).
    An engine that refuses the plan's file limit gets a one-line
    :class:`SetupError` saying how to raise dockerd's own limit.
    """
    config = require_image(client, plan.image)
    node = NodeContainer(plan, image_owner(str(config.get("User") or "")))
    try:
        node.start()
    except docker.errors.APIError as exc:
        refusal = _refusal(exc, plan.nofile)
        if refusal is None:
            raise
        raise refusal from exc
    finally:
        # The wrapper's own client is only needed to create; the cluster's client drives the rest.
        node.get_docker_client().client.close()
    container: Container = client.containers.get(plan.name)
    return container


def start_existing(container: Container, nofile: int | None = None) -> None:
    """Start a node that exists already (after a kill or stop), with the same refusal message."""
    try:
        container.start()
    except docker.errors.APIError as exc:
        refusal = _refusal(exc, nofile)
        if refusal is None:
            raise
        raise refusal from exc


def _refusal(exc: docker.errors.APIError, limit: int | None) -> SetupError | None:
    """The engine's refusal of a file limit as a one-line error; ``None`` for anything else."""
    said = str(exc.explanation or exc)
    lowered = said.lower()
    if "rlimit" not in lowered and "operation not permitted" not in lowered:
        return None
    found = re.search(r"setting rlimit type \d+: [^:]+", said)
    reason = found.group(0) if found else " ".join(said.split())[-120:]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return SetupError(
        f"the engine refused nofile={limit} ({reason}); dockerd's own open-files limit is "
        f"lower (this shell: soft={soft} hard={hard}). Start dockerd under "
        "`ulimit -n 1048576` (systemd's docker.service uses LimitNOFILE=infinity) or ask "
        "for fewer open files"
    )
