"""A hard partition: a container is unplugged from a Docker network and plugged back.

Unlike a Toxiproxy cut this breaks every path through that network, not
one proxied link, and it is silent: packets to the container's address go
nowhere, so peers hang rather than being refused.
"""

from __future__ import annotations

import asyncio
from typing import Any

import docker
import docker.errors

from chaos.faults.base import Fault
from chaos.faults.probes import Probe


class NetworkPartition(Fault):
    """``docker network disconnect`` of one container from one network.

    Effect: ``probe`` (a path that crosses that network, e.g. Postgres
    through a Toxiproxy on the same network) fails.  Heal: ``docker network
    connect`` with the same IPv4 address and aliases it had (the network
    needs a user-configured subnet for that), proven by the probe answering
    and the address being the old one.  Peers' TCP retransmission backoff
    means the first answer can take a few seconds after reconnecting.

    Disconnecting also drops the container's published ports on that
    network: a probe through a published port of the partitioned container
    itself would pass for the wrong reason, so use a peer's path.
    """

    name = "partition"

    def __init__(
        self,
        docker_client: docker.DockerClient,
        container_id: str,
        network: str,
        name: str,
        probe: Probe,
    ) -> None:
        self.docker_client = docker_client
        self.container_id = container_id
        self.network = network
        self.container_name = name
        self.probe = probe
        self.ip: str | None = None
        self.aliases: list[str] = []
        self.effect_timeout = 15.0
        self.heal_timeout = 30.0

    @property
    def target(self) -> str:
        return self.container_name

    def describe(self) -> dict[str, Any]:
        return {"network": self.network}

    async def evidence(self) -> dict[str, Any]:
        return {"ip_before": self.ip, "ip_now": await self._current_ip()}

    def _endpoint(self) -> dict[str, Any] | None:
        c = self.docker_client.containers.get(self.container_id)
        nets: dict[str, Any] = c.attrs["NetworkSettings"]["Networks"] or {}
        return nets.get(self.network)

    async def _current_ip(self) -> str | None:
        endpoint = await asyncio.to_thread(self._endpoint)
        return None if endpoint is None else str(endpoint.get("IPAddress") or "") or None

    async def inject(self) -> None:
        def disconnect() -> None:
            endpoint = self._endpoint()
            if endpoint is None:
                raise RuntimeError(f"{self.container_name} is not on network {self.network}")
            self.ip = endpoint["IPAddress"]
            c = self.docker_client.containers.get(self.container_id)
            # Docker adds the short container id as an alias by itself; keep only ours.
            self.aliases = [a for a in endpoint.get("Aliases") or [] if not c.id.startswith(a)]
            self.docker_client.networks.get(self.network).disconnect(self.container_id)

        await asyncio.to_thread(disconnect)

    async def heal(self) -> None:
        def connect() -> None:
            if self._endpoint() is not None:
                return  # never disconnected, or already healed
            self.docker_client.networks.get(self.network).connect(
                self.container_id, ipv4_address=self.ip, aliases=self.aliases or None
            )

        await asyncio.to_thread(connect)

    async def effect_present(self) -> bool:
        return not await self.probe()

    async def healthy(self) -> bool:
        return await self.probe()

    async def heal_present(self) -> bool:
        return await self._current_ip() == self.ip and await self.probe()
