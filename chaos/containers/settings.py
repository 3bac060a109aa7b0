"""The suite's image and label names for its testcontainers modules.

:func:`use_suite_settings` (Ryuk off, host 127.0.0.1, ``docker_host`` mode)
is the cluster's (:mod:`chaos.cluster.tc_settings`), re-exported here: every
cluster node is a testcontainers container too.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Mapping
from functools import cache

# Re-exported for the modules and their users (``chaos.containers.use_suite_settings``).
from chaos.cluster.tc_settings import ENV_CONNECTION_MODE as ENV_CONNECTION_MODE
from chaos.cluster.tc_settings import ENV_HOST_OVERRIDE as ENV_HOST_OVERRIDE
from chaos.cluster.tc_settings import ENV_RYUK_DISABLED as ENV_RYUK_DISABLED
from chaos.cluster.tc_settings import use_suite_settings as use_suite_settings
from chaos.labels import docker_labels

#: The same variable and default as chaos.provision.images (a unit test keeps
#: them equal); not imported from there because the provisioning imports the
#: target package, which imports this one.
ENV_IMAGE_NAMESPACE = "LOOMCHAOS_IMAGE_NAMESPACE"
DEFAULT_NAMESPACE = "loomchaos"
#: Marks the objects made through these modules, beside the cluster's roles.
LABEL_MADE_BY = "made_by"
MADE_BY = "testcontainers"


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
