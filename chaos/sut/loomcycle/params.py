"""The checkers' bounds, derived from the cluster a scenario ran on.

A scenario records its :class:`~chaos.checks.params.CheckParams` once, at the
start, so that ``loomchaos check`` re-judges a saved history with the timers
the cluster really had rather than today's defaults.  Every number here comes
from the :class:`~chaos.cluster.spec.ClusterSpec` (which renders the replicas'
environment), never from a second copy of the defaults.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from chaos.checks.params import CheckParams
from chaos.cluster.spec import ClusterSpec
from chaos.sut.loomcycle.settings import settings_of


def params_for(
    spec: ClusterSpec, replica_ids: Sequence[str], prefix: str, **overrides: Any
) -> CheckParams:
    """CheckParams for a scenario on ``spec``'s cluster, under the test id ``prefix``.

    ``overrides`` are CheckParams fields a scenario sets on purpose (for example
    ``ack_p99_bound_s`` when it sends enough cancels to judge a p99); an
    unknown name raises ``TypeError`` rather than being silently ignored.
    """
    timers = settings_of(spec).timers
    mock = settings_of(spec).mock
    base = CheckParams(
        per_user_cap=settings_of(spec).max_runs_per_user,
        replica_stale_s=timers.replica_stale_ms / 1000.0,
        replica_sweep_s=timers.replica_sweep_ms / 1000.0,
        heartbeat_stale_s=timers.heartbeat_stale_ms / 1000.0,
        cancel_ack_timeout_s=timers.cancel_ack_timeout_ms / 1000.0,
        replica_ids=tuple(replica_ids),
        test_prefix=prefix,
        provider_errors_injected=mock.rate_429 > 0 or mock.rate_500 > 0,
    )
    return replace(base, **overrides)
