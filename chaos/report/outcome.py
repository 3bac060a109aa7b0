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


def report_xfailed(node: pytest.Item) -> bool:
    """Whether this test failed as its ``xfail`` mark expected (a known finding reproduced)."""
    return any(
        r.skipped and hasattr(r, "wasxfail") for r in node.stash.get(REPORT_KEY, {}).values()
    )


def keeps_evidence(node: pytest.Item) -> bool:
    """Whether the test's artifacts (history, logs) are kept: it failed, or it reproduced a
    known finding.  A finding's strict xfail is a failure too, and ``loomchaos replay`` of
    its folder is how a finding's replay hit rate is measured."""
    return report_failed(node) or report_xfailed(node)
