"""Blocking Docker operations of the cluster.

Networks are made by testcontainers' ``Network`` (and containers by its
``DockerContainer``, :mod:`chaos.cluster.node_container`); everything
testcontainers does not offer (a chosen subnet's reuse checks, logs,
removal by label) is docker-py.

Everything here blocks: call it through ``asyncio.to_thread`` from async
code, never on the event loop, so a slow ``docker`` call cannot stall the
streams a test is timing.  Every object created carries the labels it is
given, and removal always goes by label, so whatever a half-finished call
created is still found and removed.
"""

from __future__ import annotations

import io
import ipaddress
import random
import tarfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container
from docker.models.networks import Network
from testcontainers.core.network import Network as TcNetwork

from chaos.cluster.tc_settings import use_suite_settings
from chaos.errors import SetupError

#: Where cluster subnets come from: one /24 each, picked at random, retried on overlap.
#: (The fault tests' rig uses 10.213.0.0/16; keeping apart avoids needless retries.)
SUBNET_POOL = "10.214.0.0/16"
_NETWORK_ATTEMPTS = 12


def docker_client() -> docker.DockerClient:
    """A client for the engine in the environment, or a one-line :class:`SetupError`."""
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except docker.errors.DockerException as exc:
        raise SetupError(f"no Docker engine answers ({exc}); start one or set DOCKER_HOST") from exc
    return client


def require_image(client: docker.DockerClient, ref: str) -> dict[str, Any]:
    """The image's ``Config`` section; a :class:`SetupError` when the image is absent (no pulls)."""
    try:
        image = client.images.get(ref)
    except docker.errors.ImageNotFound as exc:
        raise SetupError(
            f"image {ref} is missing on the engine; build the local images first "
            "(there is no registry to pull from)"
        ) from exc
    config: dict[str, Any] = image.attrs.get("Config") or {}
    return config


def create_network(
    client: docker.DockerClient, name: str, labels: Mapping[str, str], pool: str = SUBNET_POOL
) -> tuple[Network, str]:
    """A bridge network (testcontainers ``Network``) on a free /24 of ``pool``.

    Pinned IPs need a user-chosen subnet.

    Other sessions may take subnets at the same time, so the pick is random and
    a "pool overlaps" refusal moves on to another one, a bounded number of times.
    """
    use_suite_settings()
    taken = _subnets_in_use(client)
    candidates = [
        str(s)
        for s in ipaddress.IPv4Network(pool).subnets(new_prefix=24)
        if not any(s.overlaps(t) for t in taken)
    ]
    random.shuffle(candidates)
    last: Exception | None = None
    for subnet in candidates[:_NETWORK_ATTEMPTS]:
        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet)])
        made = TcNetwork(
            docker_network_kw={"driver": "bridge", "labels": dict(labels), "ipam": ipam}
        )
        made.name = name
        try:
            made.create()
        except docker.errors.APIError as exc:
            if "overlap" not in str(exc).lower():
                raise
            last = exc
            continue
        finally:
            # Each testcontainers Network opens its own engine client; ours does the rest.
            made._docker.client.close()
        return client.networks.get(name), subnet
    raise SetupError(f"no free /24 subnet in {pool} for network {name}: {last}")


def _subnets_in_use(client: docker.DockerClient) -> list[ipaddress.IPv4Network]:
    taken: list[ipaddress.IPv4Network] = []
    for net in client.networks.list():
        for conf in (net.attrs.get("IPAM") or {}).get("Config") or []:
            try:
                taken.append(ipaddress.IPv4Network(conf.get("Subnet", ""), strict=False))
            except ValueError:
                continue  # IPv6 or empty
    return taken


@dataclass(frozen=True)
class ContainerPlan:
    """Everything needed to create one container of the cluster."""

    name: str
    image: str
    ip: str
    network: str
    labels: Mapping[str, str]
    command: Sequence[str] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    ports: Sequence[int] = ()
    aliases: Sequence[str] = ()
    files: Mapping[str, bytes] = field(default_factory=dict)
    nofile: int | None = None
    stop_signal: str | None = None
    volumes: Mapping[str, str] = field(default_factory=dict)  # volume name -> mount path
    hostname: str | None = None


def image_owner(user: str) -> tuple[int, int]:
    """Numeric ``uid[:gid]`` from the image's ``User`` so copied files belong to it; else root."""
    uid_s, _, gid_s = user.partition(":")
    uid = int(uid_s) if uid_s.isdigit() else 0
    gid = int(gid_s) if gid_s.isdigit() else uid
    return uid, gid


def tar_files(
    files: Mapping[str, bytes], *, uid: int = 0, gid: int = 0, mode: int = 0o644
) -> bytes:
    """A tar of absolute paths, for ``put_archive("/", ...)``.

    Files only, no directory entries: Docker creates missing parents itself
    (0755, root), and a directory entry for an existing ``/etc`` would
    overwrite that directory's mode and owner.
    """
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, content in sorted(files.items()):
            if not path.startswith("/") or ".." in path.split("/"):
                raise ValueError(f"container file paths must be absolute and plain: {path!r}")
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size = len(content)
            info.mode = mode
            info.uid, info.gid = uid, gid
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def log_tail(container: Container, lines: int = 40) -> str:
    """The last ``lines`` of a container's output, for failure messages; never raises."""
    try:
        raw = container.logs(stdout=True, stderr=True, tail=lines)
    except docker.errors.DockerException as exc:
        return f"(no logs for {container.name}: {exc})"
    text = raw.decode("utf-8", "replace").rstrip()
    return f"--- last {lines} log lines of {container.name} ---\n{text or '(empty)'}"


def write_container_logs(
    client: docker.DockerClient, labels: Mapping[str, str], dest_dir: Path
) -> list[Path]:
    """``<node>.log`` per labelled container (stopped ones too), headed by its state."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
    for container in client.containers.list(all=True, filters=filters):
        node = container.labels.get("io.loomchaos.node", container.name)
        state = container.attrs.get("State") or {}
        header = f"# {container.name} status={container.status} exit={state.get('ExitCode')}\n"
        try:
            body = container.logs(stdout=True, stderr=True, timestamps=True)
        except docker.errors.DockerException as exc:
            body = f"(no logs: {exc})".encode()
        path = dest_dir / f"{node}.log"
        path.write_bytes(header.encode() + body)
        written.append(path)
    return written


@dataclass
class Removed:
    """What a cleanup removed, by kind, as names."""

    containers: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.containers or self.networks or self.volumes)

    def extend(self, other: Removed) -> None:
        self.containers += other.containers
        self.networks += other.networks
        self.volumes += other.volumes


def remove_labelled(client: docker.DockerClient, labels: Mapping[str, str]) -> Removed:
    """Remove every container, network and volume carrying all of ``labels``.

    Containers first (a network with members and a volume in use cannot go),
    forced, with their anonymous volumes.  Objects that vanish meanwhile are
    fine: another cleanup got there first.
    """
    filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
    removed = Removed()
    for container in client.containers.list(all=True, filters=filters):
        try:
            container.remove(force=True, v=True)
            removed.containers.append(container.name)
        except docker.errors.NotFound:
            continue
    for network in client.networks.list(filters=filters):
        if _remove_network(network):
            removed.networks.append(network.name)
    for volume in client.volumes.list(filters=filters):
        try:
            volume.remove(force=True)
            removed.volumes.append(volume.name)
        except docker.errors.NotFound:
            continue
    return removed


def _remove_network(network: Network) -> bool:
    """Remove a network, first disconnecting anything still attached (it would block removal)."""
    try:
        network.reload()
        for member in network.attrs.get("Containers") or {}:
            try:
                network.disconnect(member, force=True)
            except docker.errors.APIError:
                continue
        network.remove()
    except docker.errors.NotFound:
        return False
    return True
