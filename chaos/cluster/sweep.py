"""Remove what killed sessions left behind, and nothing else.

An object is an orphan when it carries ``io.loomchaos.suite=loomchaos`` and the
process named by its ``io.loomchaos.pid`` label no longer exists on this host.
Objects without a pid label, with a live pid, or labelled by another host
(``io.loomchaos.host``; a pid means nothing across machines sharing an engine)
are left alone.  A pid that was reused by an unrelated process makes the sweep
keep an orphan, never remove a live session's objects.
"""

from __future__ import annotations

import asyncio
import socket

import docker

from chaos.cluster.docker_ops import Removed, docker_client, remove_labelled
from chaos.labels import LABEL_PID, LABEL_SESSION, LABEL_SUITE, SUITE, pid_alive

LABEL_HOST = "io.loomchaos.host"


def _owners(client: docker.DockerClient) -> set[tuple[str, str]]:
    """(pid, session) pairs found on any suite object: containers, networks, volumes."""
    filters = {"label": [f"{LABEL_SUITE}={SUITE}"]}
    labelled: list[dict[str, str]] = []
    labelled += [c.labels for c in client.containers.list(all=True, filters=filters)]
    labelled += [n.attrs.get("Labels") or {} for n in client.networks.list(filters=filters)]
    labelled += [v.attrs.get("Labels") or {} for v in client.volumes.list(filters=filters)]
    here = socket.gethostname()
    owners: set[tuple[str, str]] = set()
    for labels in labelled:
        pid, session = labels.get(LABEL_PID, ""), labels.get(LABEL_SESSION, "")
        if labels.get(LABEL_HOST, here) != here or not pid.isdigit() or not session:
            continue
        owners.add((pid, session))
    return owners


def sweep_orphans(client: docker.DockerClient | None = None) -> Removed:
    """Remove every suite object whose creating process is gone; return what was removed."""
    client = client or docker_client()
    removed = Removed()
    for pid, session in sorted(_owners(client)):
        if pid_alive(int(pid)):
            continue
        removed.extend(
            remove_labelled(client, {LABEL_SUITE: SUITE, LABEL_PID: pid, LABEL_SESSION: session})
        )
    return removed


async def sweep_orphans_async() -> Removed:
    """:func:`sweep_orphans` in a thread, for async callers (docker-py blocks)."""
    return await asyncio.to_thread(sweep_orphans)
