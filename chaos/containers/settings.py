"""testcontainers-python set to the suite's rules, and the suite's image and label names.

testcontainers keeps its settings in one process-wide object that reads the
environment once, at import.  The suite needs three of them fixed whatever
the environment says, so :func:`use_suite_settings` writes both the variables
(for anything that reads them later) and the already-built object:

* Ryuk disabled: its image would have to be pulled and there is no registry
  here; leftovers are found by the suite's own labels (``loomchaos sweep``).
* Host 127.0.0.1: every port is published on the loopback interface only.
* Connection mode ``docker_host``: inside a container (as on this machine)
  testcontainers would otherwise guess the bridge gateway's address, where
  nothing is published.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Mapping
from functools import cache

from testcontainers.core.config import ConnectionMode, testcontainers_config

from chaos.cluster.addresses import LOOPBACK
from chaos.labels import docker_labels

ENV_RYUK_DISABLED = "TESTCONTAINERS_RYUK_DISABLED"
ENV_HOST_OVERRIDE = "TESTCONTAINERS_HOST_OVERRIDE"
ENV_CONNECTION_MODE = "TESTCONTAINERS_CONNECTION_MODE"
#: The same variable and default as chaos.provision.images (a unit test keeps
#: them equal); not imported from there because the provisioning imports the
#: target package, which imports this one.
ENV_IMAGE_NAMESPACE = "LOOMCHAOS_IMAGE_NAMESPACE"
DEFAULT_NAMESPACE = "loomchaos"
#: Marks the objects made through these modules, beside the cluster's roles.
LABEL_MADE_BY = "made_by"
MADE_BY = "testcontainers"


def use_suite_settings() -> None:
    """Fix Ryuk off, host 127.0.0.1 and the ``docker_host`` mode, process-wide."""
    os.environ[ENV_RYUK_DISABLED] = "true"
    os.environ[ENV_HOST_OVERRIDE] = LOOPBACK
    os.environ[ENV_CONNECTION_MODE] = ConnectionMode.docker_host.value
    testcontainers_config.ryuk_disabled = True
    testcontainers_config.tc_host_override = LOOPBACK
    testcontainers_config.connection_mode_override = ConnectionMode.docker_host


def local_image(role: str, env: Mapping[str, str] | None = None) -> str:
    """The locally built image of ``role`` (``<namespace>/<role>:local``)."""
    env = os.environ if env is None else env
    return f"{env.get(ENV_IMAGE_NAMESPACE) or DEFAULT_NAMESPACE}/{role}:local"


@cache
def process_session_id() -> str:
    """One session id per process, for containers made without an explicit one.

    Same shape as :func:`chaos.labels.new_session_id`; the sweep needs the
    (pid, session) pair, and a process that started no pytest session has
    no other id to offer.
    """
    return secrets.token_hex(4)


def suite_labels(session_id: str, role: str, pid: int | None = None) -> dict[str, str]:
    """The labels ``loomchaos sweep`` reads (suite, session, pid, host) plus the role."""
    return docker_labels(
        session_id, pid, role=role, host=socket.gethostname(), **{LABEL_MADE_BY: MADE_BY}
    )
