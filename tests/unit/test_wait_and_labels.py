from __future__ import annotations

import os

import pytest

from chaos.labels import LABEL_PID, LABEL_SUITE, docker_labels, pid_alive, test_prefix
from chaos.wait import WaitTimeout, eventually, eventually_sync


async def test_eventually_returns_the_first_truthy_value() -> None:
    seen = iter([0, None, "", 5])

    async def probe() -> object:
        return next(seen)

    assert await eventually(probe, what="five", timeout=5, interval=0) == 5


async def test_eventually_names_what_it_waited_for_and_the_last_error() -> None:
    async def probe() -> bool:
        raise ConnectionRefusedError("port 5432")

    async def context() -> str:
        return "log tail: FATAL starting"

    with pytest.raises(WaitTimeout) as info:
        await eventually(
            probe, what="postgres to answer", timeout=0.05, interval=0.01, context=context
        )
    msg = str(info.value)
    assert "postgres to answer" in msg and "ConnectionRefusedError" in msg
    assert "log tail: FATAL starting" in msg


def test_eventually_sync_reports_the_last_value() -> None:
    with pytest.raises(WaitTimeout, match="last seen: 0"):
        eventually_sync(lambda: 0, what="a count above zero", timeout=0.02, interval=0.01)


def test_labels_name_suite_session_and_pid() -> None:
    labels = docker_labels("abcd1234", role="postgres")
    assert labels[LABEL_SUITE] == "loomchaos"
    assert labels[LABEL_PID] == str(os.getpid())
    assert labels["io.loomchaos.role"] == "postgres"


def test_prefix_is_stable_per_test_and_differs_between_tests() -> None:
    a = test_prefix("tests/x.py::t1", "abcd1234")
    assert a == test_prefix("tests/x.py::t1", "abcd1234")
    assert a != test_prefix("tests/x.py::t2", "abcd1234")
    assert len(a) <= 16 and a.isalnum()


def test_pid_alive() -> None:
    assert pid_alive(os.getpid())
    assert not pid_alive(0)
    assert not pid_alive(2**22 + 12345)
