"""The pytest side of :mod:`chaos.hostclock`: a chaos test that fails while the host's
wall clock steps is re-raised as :class:`~chaos.hostclock.HostClockStepped` and run once
more; every step inside a chaos test is recorded in its JUnit properties.

Registered by :mod:`chaos.plugin` (``pytest_configure``).  The rerun is
pytest-rerunfailures' ``flaky`` marker with ``only_rerun=[HostClockStepped]``, added to
chaos tests that are not expected to fail: any other failure is final at once, and a
strict xfail (a finding's reduction) is left as it is.
"""

from __future__ import annotations

import json
import time
from collections.abc import Generator

import pytest

from chaos.hostclock import ClockWatch, HostClockStepped

#: Runs of a chaos test whose failure came with a clock step: the first and one more.
RERUNS = 1


def _judged(item: pytest.Item) -> bool:
    """A chaos test whose failure would count (not an expected failure)."""
    return item.get_closest_marker("chaos") is not None and not item.get_closest_marker("xfail")


class ClockStepPlugin:
    def __init__(self) -> None:
        self.watch: ClockWatch | None = None

    def _watch(self) -> ClockWatch:
        # Started at the first chaos test: a fast-tier session starts no thread.
        if self.watch is None:
            self.watch = ClockWatch().start()
        return self.watch

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        # A checkout whose environment predates the dependency (or ``-p no:rerunfailures``)
        # still runs: the step is reported, the test just is not run again.
        if not config.pluginmanager.hasplugin("rerunfailures"):
            return
        for item in items:
            if _judged(item) and not item.get_closest_marker("flaky"):
                item.add_marker(pytest.mark.flaky(reruns=RERUNS, only_rerun=[HostClockStepped]))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None]:
        if item.get_closest_marker("chaos") is None:
            return (yield)
        watch = self._watch()
        began = time.monotonic()
        try:
            return (yield)
        except Exception as exc:
            steps = watch.steps_since(began)
            if steps and _judged(item):
                raise HostClockStepped(steps) from exc
            raise
        finally:
            steps = watch.steps_since(began)
            if steps:
                item.user_properties.append(
                    ("host_clock_steps", json.dumps([s.to_dict() for s in steps]))
                )

    def pytest_unconfigure(self) -> None:
        if self.watch is not None:
            self.watch.stop()
