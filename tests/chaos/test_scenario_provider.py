"""The provider error storm with the fallback tier, on a live 3-replica cluster.

Half of the mock provider's calls answer 429 for the whole scenario (the
mock reads its rates once at boot, so the storm is the cluster's
configuration, PROVIDER_STORM_SPEC); every agent may fall back to
mock-stable.  The fallback must carry every run to ``completed``, the
database must say which runs it carried (``runs.provider``), and every
invariant must hold.  The storm's effect is proven from the data: runs served
by mock-stable exist; with the storm off (every other scenario) none do.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest

from chaos.record.history import History
from chaos.scenario.stats import binomial_interval
from chaos.scenario.steps import load_requests, run_many
from chaos.sut.loomcycle.ports import (
    DB_SETUP_TIMEOUT_S,
    gated_policy,
    lb_client,
    scenario_run,
    served_by,
)
from chaos.sut.loomcycle.settings import settings_of
from chaos.sut.loomcycle.specs import PROVIDER_PROFILE_SPEC, PROVIDER_STORM_SPEC
from chaos.sut.postgres import like_prefix
from chaos.verdict import Verdict
from chaos.workload import Driver

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.timeout(600),
]

RUNS, USERS = 60, 6
#: The storm sends no cancel and kills nothing.
NOTHING_TO_TIME = ["cancel_classification", "bounded_recovery"]


async def test_provider_storm_is_carried_by_the_fallback_tier(
    chaos_cluster_for: Callable[..., Awaitable[Any]],
    chaos_history: History,
    chaos_prefix: str,
    chaos_verdicts: Callable[[Sequence[Verdict]], None],
) -> None:
    spec = PROVIDER_STORM_SPEC
    cluster = await chaos_cluster_for(spec)
    async with (
        scenario_run(cluster, chaos_history, chaos_prefix) as run,
        lb_client(cluster) as lb,
    ):
        driver = Driver(
            lb, chaos_history, via="lb", policy=gated_policy(settings_of(spec).max_runs_per_user)
        )
        results = await run_many(driver, load_requests(chaos_prefix, "storm", RUNS, USERS))
        await run.converge()

    served = await served_by(cluster, chaos_prefix)
    chaos_history.note("provider_storm", served={f"{p}/{s}": n for (p, s), n in served.items()})
    not_done = [r for r in results if not r.completed]
    assert not not_done, f"{len(not_done)} of {RUNS} runs not completed: {not_done[:5]}"
    fallback = sum(n for (p, s), n in served.items() if p == "mock-stable" and s == "completed")
    assert fallback >= 1, f"the storm never reached the fallback tier: {served}"
    assert sum(served.values()) == RUNS, served
    chaos_verdicts(run.verdicts(allow_vacuous=NOTHING_TO_TIME))


# -- issue #10, scenario 12: the write-up's profile, 15 % 429s with the stable fallback -----

PROFILE_RUNS, PROFILE_USERS = 360, 12
#: Two-sided acceptance level of every rate bound below (binomial, exact).
CONFIDENCE = 0.999
#: The user tier's same-provider retries before a fallback (config.py renders 2).
RETRY_ATTEMPTS = 2
#: resolve/matrix.go:963: after a run's last retry 429s, MarkRateLimited (loop.go:1689)
#: keeps (mock, mock-generic) out of that replica's resolutions for 30 s, so a run that
#: starts there meanwhile is served by mock-stable from its first call, with no fallback.
RATE_LIMIT_COOLDOWN_S = 30.0
#: Replica clock vs event clock slack (both the host's clock in one Docker host).
CLOCK_SLACK_S = 2.0

PROFILE_SQL = """
SELECT r.id, NULLIF(r.replica_id, '') AS replica_id, COALESCE(r.provider, '') AS provider,
       r.status, extract(epoch FROM r.started_at)::float8 AS started_at,
       e.type, convert_from(e.payload, 'UTF8') AS payload,
       extract(epoch FROM e.ts)::float8 AS ts
FROM runs r
LEFT JOIN events e ON e.run_id = r.id AND e.type IN ('retry', 'provider_fallback')
WHERE r.agent_id LIKE $1 ESCAPE '\\'
ORDER BY r.id, e.seq
"""


@dataclass
class ProviderRun:
    """One run's provider story, from ``runs`` and its ``retry``/``provider_fallback`` events."""

    run_id: str
    replica_id: str | None
    provider: str
    status: str
    started_at: float
    retries: list[dict[str, Any]] = field(default_factory=list)
    fallbacks: list[tuple[float, dict[str, Any]]] = field(default_factory=list)

    @property
    def started_on_mock(self) -> bool:
        """Its first call went to the injecting mock (a retry or fallback from it, or
        served by it)."""
        return (
            self.provider == "mock"
            or any(r.get("provider") == "mock" for r in self.retries)
            or any(f.get("failed_provider") == "mock" for _, f in self.fallbacks)
        )

    @property
    def mock_429s(self) -> int:
        """Calls to mock that answered 429: each retry, and the call a fallback followed."""
        return sum(r.get("provider") == "mock" for r in self.retries) + sum(
            f.get("failed_provider") == "mock" for _, f in self.fallbacks
        )

    @property
    def mock_calls(self) -> int:
        return self.mock_429s + (self.provider == "mock" and self.status == "completed")


async def provider_story(dsn: str, prefix: str) -> list[ProviderRun]:
    async with asyncio.timeout(DB_SETUP_TIMEOUT_S):
        conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(PROFILE_SQL, like_prefix(prefix))
    finally:
        await conn.close()
    runs: dict[str, ProviderRun] = {}
    for r in rows:
        run = runs.setdefault(
            r["id"],
            ProviderRun(r["id"], r["replica_id"], r["provider"], r["status"], r["started_at"]),
        )
        if r["type"] is None:
            continue
        payload = json.loads(r["payload"])
        if r["type"] == "retry":
            run.retries.append(payload.get("retry") or {})
        else:
            run.fallbacks.append((float(r["ts"]), payload.get("fallback") or {}))
    return list(runs.values())


def unexplained_stable_starts(runs: Sequence[ProviderRun]) -> list[ProviderRun]:
    """Runs mock-stable served from their first call with no rate-limit cooldown to
    explain it: none of their replica's fallbacks in the 30 s before they started."""
    marks: dict[str | None, list[float]] = {}
    for r in runs:
        for ts, _ in r.fallbacks:
            marks.setdefault(r.replica_id, []).append(ts)
    return [
        r
        for r in runs
        if not r.started_on_mock
        and not any(
            ts - CLOCK_SLACK_S <= r.started_at <= ts + RATE_LIMIT_COOLDOWN_S + CLOCK_SLACK_S
            for ts in marks.get(r.replica_id, [])
        )
    ]


async def test_provider_profile_429s_at_the_configured_rate_nothing_lost(
    chaos_cluster_for: Callable[..., Awaitable[Any]],
    chaos_history: History,
    chaos_prefix: str,
    chaos_verdicts: Callable[[Sequence[Verdict]], None],
) -> None:
    """The write-up's profile: 15 % of the mock's calls answer 429 (mock/driver.go:237-246
    rolls once per call), every run may retry twice on mock (100/300 ms backoff) and then
    fall back to mock-stable.  What must hold:

    * the 429s occur at the configured rate: the first call of each run that started on
      mock is one Bernoulli(0.15) draw, so their count of 429s lies in the exact binomial
      99.9 % interval; the rate over every call is reported beside it;
    * fallbacks occur at the rate the mechanism gives: a run falls back exactly when its
      call and both retries answered 429, probability 0.15^3 per run started on mock;
      their count lies under that binomial 99.9 % bound, and every fallback came after
      exactly two retries on mock and went to mock-stable;
    * a run mock-stable served from its first call is explained by the rate-limit cooldown
      a fallback on its replica started (matrix.go:963-1020);
    * nothing is lost: every run completed, and every invariant holds.
    """
    spec = PROVIDER_PROFILE_SPEC
    rate = settings_of(spec).mock.rate_429
    cluster = await chaos_cluster_for(spec)
    async with (
        scenario_run(cluster, chaos_history, chaos_prefix) as run,
        lb_client(cluster) as lb,
    ):
        driver = Driver(
            lb, chaos_history, via="lb", policy=gated_policy(settings_of(spec).max_runs_per_user)
        )
        reqs = load_requests(chaos_prefix, "profile", PROFILE_RUNS, PROFILE_USERS)
        results = await run_many(driver, reqs)
        await run.converge()

    runs = await provider_story(cluster.pg_dsn, chaos_prefix)
    on_mock = [r for r in runs if r.started_on_mock]
    first_429 = sum(1 for r in on_mock if r.mock_429s > 0)
    calls, all_429 = sum(r.mock_calls for r in runs), sum(r.mock_429s for r in runs)
    lo, hi = binomial_interval(len(on_mock), rate, CONFIDENCE)
    fell_back = [r for r in runs if r.fallbacks]
    _, fallback_hi = binomial_interval(len(on_mock), rate ** (RETRY_ATTEMPTS + 1), CONFIDENCE)
    stable_first = [r for r in runs if not r.started_on_mock]
    chaos_history.note(
        "provider_profile",
        rate_429=rate,
        runs=len(runs),
        started_on_mock=len(on_mock),
        first_call_429=first_429,
        first_call_interval=[lo, hi],
        mock_calls=calls,
        mock_429s=all_429,
        fallbacks=len(fell_back),
        fallback_bound=fallback_hi,
        stable_from_the_start=len(stable_first),
    )
    print(
        f"429 rate {rate}: first calls {first_429}/{len(on_mock)} (99.9 % interval "
        f"[{lo}, {hi}]), all calls {all_429}/{calls} = {all_429 / max(calls, 1):.3f}; "
        f"fallbacks {len(fell_back)} (bound {fallback_hi}); "
        f"mock-stable from the start {len(stable_first)}"
    )
    not_done = [r for r in results if not r.completed]
    assert not not_done, f"{len(not_done)} of {PROFILE_RUNS} runs not completed: {not_done[:5]}"
    assert len(runs) == PROFILE_RUNS and all(r.status == "completed" for r in runs), [
        (r.run_id, r.status) for r in runs if r.status != "completed"
    ][:5]
    assert lo <= first_429 <= hi, (
        f"{first_429} of {len(on_mock)} first calls answered 429: outside the 99.9 % "
        f"interval [{lo}, {hi}] of a {rate} rate"
    )
    assert len(fell_back) <= fallback_hi, (
        f"{len(fell_back)} fallbacks, above the 99.9 % bound {fallback_hi} of "
        f"{len(on_mock)} runs x {rate}^{RETRY_ATTEMPTS + 1}"
    )
    for r in fell_back:
        assert len(r.fallbacks) == 1 and r.provider == "mock-stable", r
        assert [x.get("provider") for x in r.retries] == ["mock"] * RETRY_ATTEMPTS, r
        assert r.fallbacks[0][1].get("new_provider") == "mock-stable", r
    assert not unexplained_stable_starts(runs), unexplained_stable_starts(runs)[:5]
    chaos_verdicts(run.verdicts(allow_vacuous=NOTHING_TO_TIME))
