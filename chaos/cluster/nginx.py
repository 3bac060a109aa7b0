"""Render the load balancer's nginx.conf from its template.

The template ships inside the package (``chaos/cluster/nginx.conf.template``,
read with :mod:`importlib.resources`) so a pip-installed loomchaos finds it;
``fixtures/nginx/nginx.conf.template`` is a link to it for people browsing the
fixtures.  Placeholders are ``{{name}}`` because nginx's own variables use
``$``; rendering fails on a missing or unused value rather than shipping a
half-filled config.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources

from chaos.cluster.spec import NginxSpec
from chaos.cluster.topology import NGINX_PORT, Topology

TEMPLATE_NAME = "nginx.conf.template"
#: Answered by nginx itself (never proxied); outside loomcycle's /v1, /healthz, /metrics.
SELF_CHECK_PATH = "/__loomchaos/lb"
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def load_template() -> str:
    return resources.files("chaos.cluster").joinpath(TEMPLATE_NAME).read_text(encoding="utf-8")


def fill(template: str, values: Mapping[str, object]) -> str:
    """Replace every ``{{name}}``; KeyError on a missing value, ValueError on an unused one."""
    used: set[str] = set()

    def sub(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise KeyError(f"nginx template needs {{{{{key}}}}} but no value was given")
        used.add(key)
        return str(values[key])

    text = _PLACEHOLDER.sub(sub, template)
    unused = set(values) - used
    if unused:
        raise ValueError(f"values not used by the nginx template: {sorted(unused)}")
    return text


def render_nginx_conf(topology: Topology, nginx: NginxSpec, template: str | None = None) -> str:
    """The nginx.conf for ``topology``: one upstream server per ``lb_r<i>`` proxy."""
    toxiproxy_ip = topology.node("toxiproxy").ip
    servers = "\n".join(
        f"        server {toxiproxy_ip}:{plan.listen_port};  # {plan.name} -> {plan.upstream}"
        for plan in topology.proxies
        if plan.link == "lb"
    )
    return fill(
        load_template() if template is None else template,
        {
            "cluster_id": topology.cluster_id,
            "worker_rlimit_nofile": nginx.worker_rlimit_nofile,
            "worker_connections": nginx.worker_connections,
            "read_timeout_s": nginx.read_timeout_s,
            "listen_port": NGINX_PORT,
            "self_check_path": SELF_CHECK_PATH,
            "upstream_servers": servers,
        },
    )
