"""An inner pytest run the way the plugin's tests make one (pytester): no cache, no
provisioning (no Docker), pytest-asyncio quiet, artifacts under the run's own folder."""

from __future__ import annotations

import pytest

INNER_OPTIONS = (
    "-p",
    "no:cacheprovider",
    "--chaos-skip-provision",
    "-o",
    "asyncio_default_fixture_loop_scope=function",
)


def run_inner(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(*INNER_OPTIONS, f"--chaos-artifacts={pytester.path / 'art'}", *args)
