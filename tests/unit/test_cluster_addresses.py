"""The host only ever talks to 127.0.0.1: the helpers refuse anything else."""

from __future__ import annotations

import pytest

from chaos.cluster.addresses import NotLoopback, localhost_url, published_port, require_loopback


def test_localhost_url_is_loopback() -> None:
    assert localhost_url(8080) == "http://127.0.0.1:8080"
    assert localhost_url(5432, scheme="postgres", path="/db") == "postgres://127.0.0.1:5432/db"


@pytest.mark.parametrize("port", [0, -1, 65536])
def test_localhost_url_rejects_bad_ports(port: int) -> None:
    with pytest.raises(ValueError):
        localhost_url(port)


def test_localhost_url_rejects_relative_path() -> None:
    with pytest.raises(ValueError):
        localhost_url(80, path="healthz")


def test_published_port_reads_loopback_binding() -> None:
    ports = {"5432/tcp": [{"HostIp": "127.0.0.1", "HostPort": "49153"}]}
    assert published_port(ports, 5432) == 49153


@pytest.mark.parametrize("host", ["0.0.0.0", "", "::", "192.0.2.2", "localhost", "172.17.0.1"])
def test_published_port_refuses_other_hosts(host: str) -> None:
    ports = {"80/tcp": [{"HostIp": host, "HostPort": "32768"}]}
    with pytest.raises(NotLoopback):
        published_port(ports, 80)


def test_published_port_refuses_when_any_binding_is_not_loopback() -> None:
    # Docker may publish the same port on several addresses: one public binding is one too many.
    ports = {
        "80/tcp": [
            {"HostIp": "127.0.0.1", "HostPort": "32768"},
            {"HostIp": "0.0.0.0", "HostPort": "32768"},
        ]
    }
    with pytest.raises(NotLoopback):
        published_port(ports, 80)


def test_published_port_missing_is_lookup_error() -> None:
    with pytest.raises(LookupError):
        published_port({"80/tcp": None}, 80)
    with pytest.raises(LookupError):
        published_port({}, 5432)


@pytest.mark.parametrize("host", ["0.0.0.0", "localhost", "127.0.0.2", "::1"])
def test_require_loopback_refuses(host: str) -> None:
    with pytest.raises(NotLoopback):
        require_loopback(host)
    assert require_loopback("127.0.0.1") == "127.0.0.1"
