"""testcontainers-style modules of the suite's pieces, usable without the cluster.

Each is a testcontainers-python ``DockerContainer`` (``with X() as x:``) that
keeps the suite's rules (:mod:`chaos.containers.base`): the suite's labels,
ports on 127.0.0.1 only, local images never pulled, Ryuk off.  The loomcycle
replica lives with the rest of loomcycle's knowledge, in
:mod:`chaos.sut.loomcycle.container`.
"""

from __future__ import annotations

from chaos.containers.base import SuiteContainer, suite_network
from chaos.containers.postgres import SuitePostgresContainer
from chaos.containers.settings import local_image, use_suite_settings
from chaos.containers.toxiproxy import ToxiproxyContainer

__all__ = [
    "SuiteContainer",
    "SuitePostgresContainer",
    "ToxiproxyContainer",
    "local_image",
    "suite_network",
    "use_suite_settings",
]
