"""The load balancer's config: rendered completely, with the settings SSE streams need."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chaos.cluster.nginx import fill, load_template, render_nginx_conf
from chaos.cluster.spec import NginxSpec
from chaos.cluster.topology import Topology, replica_ids

REPO = Path(__file__).resolve().parents[2]


def _topology(n: int = 3) -> Topology:
    return Topology("cabc123", "10.214.7.0/24", 8787, replica_ids(n))


def test_render_has_every_upstream_through_its_lb_proxy() -> None:
    conf = render_nginx_conf(_topology(3), NginxSpec())
    servers = re.findall(r"^\s*server (\S+);", conf, flags=re.M)
    # nginx reaches replica i through Toxiproxy (pinned IP .11) on lb_r<i>'s port 18700+i.
    assert servers == ["10.214.7.11:18701", "10.214.7.11:18702", "10.214.7.11:18703"]
    assert "lb_r2 -> 10.214.7.22:8787" in conf


def test_render_carries_the_spec_limits() -> None:
    spec = NginxSpec(worker_connections=1234, worker_rlimit_nofile=5678, read_timeout_s=901)
    conf = render_nginx_conf(_topology(1), spec)
    assert "worker_connections 1234;" in conf
    assert "worker_rlimit_nofile 5678;" in conf
    assert "proxy_read_timeout 901s;" in conf


def test_render_has_sse_settings_and_no_placeholders() -> None:
    conf = render_nginx_conf(_topology(2), NginxSpec())
    for needed in ("proxy_buffering off;", "proxy_http_version 1.1;", "listen 80;"):
        assert needed in conf
    assert "{{" not in conf and "}}" not in conf
    assert "$upstream_addr" in conf  # nginx variables survive rendering
    assert "location = /__loomchaos/lb" in conf
    assert 'return 200 "loomchaos lb cabc123\\n";' in conf


def test_fill_refuses_missing_and_unused_values() -> None:
    with pytest.raises(KeyError):
        fill("a {{x}} b", {})
    with pytest.raises(ValueError):
        fill("a {{x}} b", {"x": 1, "y": 2})
    assert fill("a {{x}} $host", {"x": 1}) == "a 1 $host"


def test_fixture_link_points_at_the_packaged_template() -> None:
    fixture = REPO / "fixtures" / "nginx" / "nginx.conf.template"
    assert fixture.read_text() == load_template()
