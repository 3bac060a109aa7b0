"""Engine selection: reuse what answers, start only as root on Linux, else one clear line."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from chaos.errors import SetupError
from chaos.provision import __main__ as provision_main
from chaos.provision import engine
from chaos.provision.engine import (
    DEFAULT_SOCKET,
    EngineInfo,
    dockerd_command,
    ensure_engine,
    socket_path,
    stop_started_engine,
)


def test_socket_path_only_for_unix_hosts() -> None:
    assert socket_path("unix:///tmp/x.sock") == "/tmp/x.sock"
    assert socket_path("tcp://127.0.0.1:2375") is None


def test_default_socket_uses_dockers_own_data_root(tmp_path: Path) -> None:
    cmd = dockerd_command(DEFAULT_SOCKET, tmp_path)
    assert cmd[:4] == [
        "dockerd",
        "--iptables=false",
        "--ip-masq=false",
        "--storage-driver=overlay2",
    ]
    assert "--data-root" not in cmd and str(tmp_path / "pid") in cmd


def test_a_private_socket_gets_private_roots(tmp_path: Path) -> None:
    cmd = dockerd_command("/tmp/x.sock", tmp_path, ["--bridge=none"])
    assert "unix:///tmp/x.sock" in cmd
    assert cmd[cmd.index("--data-root") + 1] == str(tmp_path / "data")
    assert cmd[cmd.index("--exec-root") + 1] == str(tmp_path / "exec")
    assert cmd[-1] == "--bridge=none"


def test_an_answering_engine_is_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "ping_engine", lambda timeout=3.0: "27.0.1")
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    info = ensure_engine(progress=lambda _: None)
    assert info == EngineInfo(started_by_us=False, server_version="27.0.1")


def test_no_engine_and_no_right_to_start_one_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "ping_engine", lambda timeout=3.0: None)
    monkeypatch.setattr(engine, "can_start_engine", lambda: False)
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    with pytest.raises(SetupError) as info:
        ensure_engine(progress=lambda _: None)
    assert "\n" not in str(info.value) and "start Docker" in str(info.value)


def test_a_remote_engine_that_does_not_answer_is_not_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine, "ping_engine", lambda timeout=3.0: None)
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    with pytest.raises(SetupError, match=re.escape("DOCKER_HOST=tcp://127.0.0.1:1")):
        ensure_engine(progress=lambda _: None)


def test_stopping_never_touches_an_engine_we_did_not_start(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> None:
        raise AssertionError("must not signal an engine it did not start")

    monkeypatch.setattr(os, "kill", refuse)
    stop_started_engine(EngineInfo(started_by_us=False, server_version="x", pid=1))


def test_main_exits_2_with_one_line_on_setup_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fail(*_: object, **__: object) -> None:
        raise SetupError("no Docker engine answers at unix:///var/run/docker.sock")

    monkeypatch.setattr(provision_main, "provision", fail)
    assert provision_main.main([]) == 2
    err = capsys.readouterr().err
    assert err == "loomchaos setup: no Docker engine answers at unix:///var/run/docker.sock\n"
