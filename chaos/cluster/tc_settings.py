"""testcontainers-python set to the suite's rules, process-wide.

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

It lives with the cluster because every cluster node is a testcontainers
container, in pytest or not (campaigns, benchmarks);
:mod:`chaos.containers.settings` re-exports it for the modules.
"""

from __future__ import annotations

import os

from testcontainers.core.config import ConnectionMode, testcontainers_config

from chaos.cluster.addresses import LOOPBACK

ENV_RYUK_DISABLED = "TESTCONTAINERS_RYUK_DISABLED"
ENV_HOST_OVERRIDE = "TESTCONTAINERS_HOST_OVERRIDE"
ENV_CONNECTION_MODE = "TESTCONTAINERS_CONNECTION_MODE"


def use_suite_settings() -> None:
    """Fix Ryuk off, host 127.0.0.1 and the ``docker_host`` mode, process-wide."""
    os.environ[ENV_RYUK_DISABLED] = "true"
    os.environ[ENV_HOST_OVERRIDE] = LOOPBACK
    os.environ[ENV_CONNECTION_MODE] = ConnectionMode.docker_host.value
    testcontainers_config.ryuk_disabled = True
    testcontainers_config.tc_host_override = LOOPBACK
    testcontainers_config.connection_mode_override = ConnectionMode.docker_host
