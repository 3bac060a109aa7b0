"""The pure parts of the testcontainers modules (no Docker engine needed)."""

from __future__ import annotations

import json
import os
from typing import Any

import docker.errors
import pytest
from testcontainers.core.config import ConnectionMode, testcontainers_config

from chaos.cluster.addresses import LOOPBACK
from chaos.cluster.spec import ClusterSpec
from chaos.cluster.sweep import LABEL_HOST
from chaos.containers import settings
from chaos.containers.base import loopback_bindings, require_local_image
from chaos.containers.postgres import network_dsn
from chaos.containers.toxiproxy import API_PORT, listen_address
from chaos.errors import SetupError
from chaos.labels import LABEL_PID, LABEL_ROLE, LABEL_SESSION, LABEL_SUITE, SUITE
from chaos.provision.images import local_tag
from chaos.sut.loomcycle import build, config
from chaos.sut.loomcycle.container import default_image, healthz_lists

# --- ports: 127.0.0.1 only ---------------------------------------------------


def test_every_port_is_bound_to_loopback_keeping_its_host_port() -> None:
    assert loopback_bindings({"8474": None, "5432/tcp": 15432}) == {
        "8474": (LOOPBACK, None),
        "5432/tcp": (LOOPBACK, 15432),
    }


def test_loopback_bindings_are_idempotent() -> None:
    once = loopback_bindings({"8474": None, "1/tcp": 2})
    assert loopback_bindings(once) == once


@pytest.mark.parametrize(
    "binding",
    [("0.0.0.0", None), ("10.0.0.1", 80), [("127.0.0.1", 1)], "8080", True, (LOOPBACK, "x")],
)
def test_a_binding_elsewhere_than_loopback_is_refused(binding: object) -> None:
    with pytest.raises(ValueError, match=r"127\.0\.0\.1-only"):
        loopback_bindings({"80/tcp": binding})


# --- images: local, never pulled ----------------------------------------------


class _Images:
    def __init__(self, present: set[str]) -> None:
        self.present = present
        self.pulled: list[str] = []

    def get(self, ref: str) -> object:
        if ref not in self.present:
            raise docker.errors.ImageNotFound(ref)
        return object()

    def pull(self, ref: str, **_: Any) -> None:  # pragma: no cover - must never run
        self.pulled.append(ref)


class _Client:
    def __init__(self, present: set[str]) -> None:
        self.images = _Images(present)


def test_a_missing_image_is_a_setup_error_not_a_pull() -> None:
    client = _Client({"loomchaos/postgres:local"})
    require_local_image(client, "loomchaos/postgres:local")  # type: ignore[arg-type]
    with pytest.raises(SetupError, match="never pulled"):
        require_local_image(client, "loomchaos/toxiproxy:local")  # type: ignore[arg-type]
    assert client.images.pulled == []


@pytest.mark.parametrize("env", [{}, {settings.ENV_IMAGE_NAMESPACE: "trial"}])
@pytest.mark.parametrize("role", ["postgres", "toxiproxy", "loomcycle"])
def test_local_image_names_match_the_provisioning(env: dict[str, str], role: str) -> None:
    assert settings.ENV_IMAGE_NAMESPACE == "LOOMCHAOS_IMAGE_NAMESPACE"
    assert settings.local_image(role, env) == local_tag(role, env)


def test_the_replica_image_is_the_override_or_the_local_one() -> None:
    assert default_image({}) == "loomchaos/loomcycle:local"
    assert default_image({build.ENV_IMAGE: "mine:1"}) == "mine:1"


# --- labels: what the sweep reads -------------------------------------------------


def test_suite_labels_carry_what_the_sweep_reads() -> None:
    labels = settings.suite_labels("abcd1234", "toxiproxy", pid=4242)
    assert labels[LABEL_SUITE] == SUITE
    assert labels[LABEL_SESSION] == "abcd1234"
    assert labels[LABEL_PID] == "4242"
    assert labels[LABEL_ROLE] == "toxiproxy"
    assert LABEL_HOST in labels
    assert labels[f"io.loomchaos.{settings.LABEL_MADE_BY}"] == settings.MADE_BY
    assert not any(k.startswith("org.testcontainers") for k in labels)


def test_one_session_id_per_process() -> None:
    assert settings.process_session_id() == settings.process_session_id()


# --- testcontainers' settings ------------------------------------------------------


def test_suite_settings_turn_ryuk_off_and_pin_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (settings.ENV_RYUK_DISABLED, settings.ENV_HOST_OVERRIDE):
        monkeypatch.setenv(name, "changed-by-the-user")
    monkeypatch.setenv(settings.ENV_CONNECTION_MODE, "bridge_ip")
    monkeypatch.setattr(testcontainers_config, "_ryuk_disabled", False)
    monkeypatch.setattr(testcontainers_config, "tc_host_override", "10.1.2.3")
    monkeypatch.setattr(testcontainers_config, "connection_mode_override", ConnectionMode.bridge_ip)
    settings.use_suite_settings()
    assert testcontainers_config.ryuk_disabled is True
    assert testcontainers_config.tc_host_override == LOOPBACK
    assert testcontainers_config.connection_mode_override is ConnectionMode.docker_host
    assert os.environ[settings.ENV_RYUK_DISABLED] == "true"
    assert os.environ[settings.ENV_HOST_OVERRIDE] == LOOPBACK
    assert os.environ[settings.ENV_CONNECTION_MODE] == "docker_host"


# --- Toxiproxy ---------------------------------------------------------------------


def test_a_proxy_listens_on_every_interface_of_its_container() -> None:
    assert listen_address(15432) == "0.0.0.0:15432"


@pytest.mark.parametrize("port", [0, -1, 65536, API_PORT])
def test_a_proxy_cannot_take_a_bad_port_or_the_apis(port: int) -> None:
    with pytest.raises(ValueError):
        listen_address(port)


# --- Postgres and the replica -------------------------------------------------------


def test_the_network_dsn_is_one_loomcycle_accepts() -> None:
    dsn = network_dsn("chaos", "p@ss/word", "pg", "chaos")
    assert dsn == "postgres://chaos:p%40ss%2Fword@pg:5432/chaos?sslmode=disable"
    env = config.render_env(ClusterSpec(), "r1", dsn)
    assert env[next(k for k in env if k.endswith("_PG_DSN"))] == dsn


def _healthz(ok: bool = True, ids: list[str] | None = None) -> str:
    body: dict[str, Any] = {"ok": ok, "version": "v1.59.0", "replica_id": "r1"}
    if ids is not None:
        body["replicas"] = [{"id": i} for i in ids]
    return json.dumps(body)


def test_ready_when_healthz_lists_the_replicas_own_id() -> None:
    assert healthz_lists(_healthz(ids=["r1"]), "r1")
    assert healthz_lists(_healthz(ids=["r2", "r1"]), "r1")


@pytest.mark.parametrize(
    "body",
    [
        _healthz(ids=["r2"]),  # registered, but not this replica yet
        _healthz(ids=None),  # could not read its table (ok stays true)
        _healthz(ok=False, ids=["r1"]),
        "not json",
        "[]",
        "",
    ],
)
def test_not_ready_otherwise_and_never_raises(body: str) -> None:
    assert healthz_lists(body, "r1") is False
