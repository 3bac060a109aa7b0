"""Provider error storms and cancel storms need loomcycle itself.

loomcycle cannot be installed on this machine (the Go module proxy answers
403 for every version), and the suite builds no stand-in for it, so these
tests skip here.  The fault classes, their history records and their
effect/heal rules are unit-tested with plain callables in
tests/unit/test_faults_catalogue.py.
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(300)]

NEEDS_LOOMCYCLE = "needs a loomcycle cluster (binary unavailable on this machine)"


@pytest.mark.skip(reason=NEEDS_LOOMCYCLE)
async def test_provider_storm_fails_runs_then_heals() -> None:
    """ProviderErrorStorm: set_rates restarts replicas with LOOMCYCLE_MOCK_429_RATE; observed
    rate from a short bounded sample of runs; heal back to 0."""


@pytest.mark.skip(reason=NEEDS_LOOMCYCLE)
async def test_cancel_storm_reaches_running_runs_then_stops() -> None:
    """CancelStorm: cancel the newest running run through a non-owner replica every 200 ms."""


@pytest.mark.skip(reason=NEEDS_LOOMCYCLE)
async def test_replica_kill_disappears_from_survivors_healthz() -> None:
    """Kill/GracefulStop/Freeze on a replica with a probe over the survivors' /healthz."""
