"""Each test's phase reports, kept where any loomchaos plugin module can ask "did it fail?".

The generic plugin stores them (``pytest_runtest_makereport``); a target's
fixtures read them to decide whether to save container logs.  Living here,
below both, keeps a target's fixtures from importing the generic plugin.
"""

from __future__ import annotations

import pytest

REPORT_KEY = pytest.StashKey[dict[str, pytest.TestReport]]()


def report_failed(node: pytest.Item) -> bool:
    """Whether any phase (setup, call, teardown) of this test has failed so far."""
    return any(r.failed for r in node.stash.get(REPORT_KEY, {}).values())
