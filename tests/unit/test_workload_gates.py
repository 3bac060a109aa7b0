"""Launch and per-user gates, the retry policy and the loop-lag sampler."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from chaos.record.history import History
from chaos.sut.base import RunRequest
from chaos.wait import eventually
from chaos.workload import (
    CapPolicy,
    Driver,
    LagSampler,
    OverCapWorkload,
    RetryPolicy,
    SingleAgentWorkload,
    SlotGate,
    WaveContext,
)
from chaos.workload.scripted import Script, ScriptedRunClient

QUOTA = "per_user_quota_exhausted"


def ctx(scale: int, prefix: str = "tpw0") -> WaveContext:
    return WaveContext(prefix=prefix, phase="p", phase_index=0, wave=0, scale=scale)


def slow_done(delay: float = 0.01) -> ScriptedRunClient:
    return ScriptedRunClient(script=lambda _r, _a: Script.done(delay_s=delay))


async def test_per_user_gate_never_exceeds_the_cap() -> None:
    client = slow_done()
    driver = Driver(client, History(), policy=CapPolicy.gated(3))
    same_user = SingleAgentWorkload(runs_per_user=12)  # 12 runs ask for one user at once

    results = await same_user.wave(driver, ctx(12))

    assert all(r.completed for r in results)
    assert client.peak_by_user == {"tpw0-u0": 3}  # reached, never passed
    assert driver.users.peak("tpw0-u0") == 3


async def test_the_instrument_sees_a_user_over_the_cap_when_nothing_gates() -> None:
    client = slow_done()
    driver = Driver(client, History(), policy=CapPolicy.send_anyway(3))

    await SingleAgentWorkload(runs_per_user=12).wave(driver, ctx(12))

    assert client.peak_by_user["tpw0-u0"] == 12  # the same check would fail here


async def test_default_spread_keeps_each_user_at_the_cap() -> None:
    client = slow_done()
    driver = Driver(client, History(), policy=CapPolicy.gated(4))

    results = await SingleAgentWorkload().wave(driver, ctx(10))

    assert len(results) == 10
    assert sorted(client.peak_by_user) == ["tpw0-u0", "tpw0-u1", "tpw0-u2"]
    assert max(client.peak_by_user.values()) <= 4


async def test_launch_gate_bounds_open_streams() -> None:
    client = slow_done()
    driver = Driver(client, History(), launch_slots=5)

    await SingleAgentWorkload().wave(driver, ctx(20))

    assert client.peak_total == 5


async def test_over_cap_workload_asks_more_than_the_cap_and_retries_quota_refusals() -> None:
    cap = 2

    def quota(r: RunRequest, _attempt: int) -> Script:
        # The double refuses like a quota would: this test scripts it, the driver reacts.
        if client.open_by_user[r.user_id or ""] >= cap:
            return Script.rejected(429, QUOTA)
        return Script.done(delay_s=0.02)

    client = ScriptedRunClient(script=quota)
    retry = RetryPolicy(attempts=20, base_s=0.01, max_s=0.03)
    history = History()
    driver = Driver(client, history, policy=CapPolicy.send_anyway(cap, retry))

    results = await OverCapWorkload().wave(driver, ctx(6))

    refusals = [o for o in history.operations() if o.outcome == "fail"]
    assert refusals and all(o.result["code"] == QUOTA for o in refusals)
    assert all(r.completed for r in results)
    assert client.peak_by_user["tpw0-u0"] <= cap


@pytest.mark.parametrize(
    ("policy", "scale", "message"),
    [
        (CapPolicy.gated(2), 6, "send_anyway"),
        (CapPolicy.send_anyway(0), 6, "cap"),
        (CapPolicy.send_anyway(4), 4, "exceed"),
    ],
)
async def test_over_cap_refuses_a_setup_that_would_not_exceed_the_cap(
    policy: CapPolicy, scale: int, message: str
) -> None:
    driver = Driver(slow_done(), History(), policy=policy)
    with pytest.raises(ValueError, match=message):
        await OverCapWorkload().wave(driver, ctx(scale))


async def test_group_takes_all_its_slots_or_none() -> None:
    gate = SlotGate(3)
    async with gate.hold(2):
        waiter = asyncio.create_task(_hold(gate, 3))
        await eventually(lambda: _now(gate.held == 2), what="gate to stay at 2", timeout=1.0)
        assert not waiter.done() and gate.held == 2
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
    # The cancelled group gave back the slot it had taken: all three are free again.
    async with asyncio.timeout(1.0), gate.hold(3):
        assert gate.held == 3


async def _hold(gate: SlotGate, n: int) -> None:
    async with gate.hold(n):
        return


async def _now(value: bool) -> bool:
    return value


async def test_a_group_larger_than_the_gate_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot hold 3 of 2"):
        async with SlotGate(2).hold(3):
            pass


def test_retry_policy_bounds_and_jitter() -> None:
    policy = RetryPolicy(attempts=4, base_s=0.1, max_s=0.3)
    rng = random.Random(1)
    delays = [policy.delay(a, rng) for a in (1, 2, 3, 4)]
    ceilings = [0.1, 0.2, 0.3, 0.3]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert policy.should_retry(QUOTA, 3) and not policy.should_retry(QUOTA, 4)
    assert not policy.should_retry("backpressure", 1) and not policy.should_retry(None, 1)
    assert policy.worst_case_s() == pytest.approx(0.6)
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)


async def test_lag_sampler_records_a_blocked_loop() -> None:
    history = History()
    async with LagSampler(history, interval_s=0.01) as sampler:
        await eventually(
            lambda: _now(len(sampler.samples) >= 2), what="two lag samples", timeout=2.0
        )
        time.sleep(0.15)  # noqa: ASYNC251 - blocking the loop on purpose: the lag to detect
        await eventually(
            lambda: _now(sampler.max_lag_s >= 0.1), what="the blocked stretch", timeout=2.0
        )
    assert history.lag_samples() == sampler.samples
    assert max(history.lag_samples()) >= 0.1
    assert min(history.lag_samples()) < 0.1  # and the calm samples stay small


async def test_lag_sampler_stops_by_itself_after_its_bound() -> None:
    history = History()
    async with LagSampler(history, interval_s=0.01, max_duration_s=0.05) as sampler:
        await eventually(lambda: _now(not sampler.running), what="sampler to stop", timeout=2.0)
        assert 1 <= len(sampler.samples) <= 6
