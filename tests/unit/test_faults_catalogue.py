"""Fault catalogue logic without Docker: names, validation, effect rules on canned probe results."""

from __future__ import annotations

import asyncio
import errno
from typing import Any, Literal

import asyncpg
import pytest

from chaos.faults import (
    Bandwidth,
    BlackHole,
    CancelStorm,
    FaultNotProven,
    Latency,
    LimitData,
    LinkTarget,
    PathResult,
    ProviderErrorStorm,
    ResetCut,
    ResetPeer,
    SlowClose,
    Stall,
    injected,
)
from chaos.faults.probes import classify
from chaos.faults.resources import (
    HEARTBEAT_SWEEPER_LOCK_KEY,
    REPLICAS_SWEEPER_LOCK_KEY,
    _lock_ids,
)
from chaos.record.history import History


class CannedPath:
    """A LinkPath that answers with whatever result the test put in."""

    def __init__(self, result: PathResult) -> None:
        self.result = result

    async def roundtrip(self, host: str, port: int, *, timeout: float) -> PathResult:
        return self.result

    async def bulk(
        self, host: str, port: int, *, nbytes: int, direction: Literal["down", "up"], timeout: float
    ) -> PathResult:
        return self.result

    async def close_delay(self, host: str, port: int, *, timeout: float) -> PathResult:
        return self.result


class FakeToxiproxy:
    """Only the three calls ToxicFault makes; records what it was asked."""

    def __init__(self) -> None:
        self.toxics_present: dict[str, dict[str, Any]] = {}
        self.removed: list[str] = []

    async def add_toxic(self, proxy: str, *, name: str, **kw: Any) -> dict[str, Any]:
        self.toxics_present[name] = {"name": name, **kw}
        return self.toxics_present[name]

    async def toxics(self, proxy: str) -> list[dict[str, Any]]:
        return list(self.toxics_present.values())

    async def remove_toxic(self, proxy: str, name: str) -> None:
        self.removed.append(name)
        del self.toxics_present[name]


def link(result: PathResult, toxi: Any = None) -> LinkTarget:
    return LinkTarget(
        toxi or FakeToxiproxy(), "pg_r1", ("127.0.0.1", 1), CannedPath(result), "pg:r1", "r1"
    )


OK_FAST = PathResult("ok", 0.01)
HANG = PathResult("timeout", 1.5)
CLOSED_FAST = PathResult("closed", 0.01)


def test_names_follow_the_link_prefix_and_direction() -> None:
    assert ResetCut(link(OK_FAST)).name == "link:reset_cut"
    assert BlackHole(link(OK_FAST)).name == "link:black_hole"
    assert BlackHole(link(OK_FAST), direction="up").name == "link:black_hole_up"
    assert Stall(link(OK_FAST), direction="down").name == "link:stall_down"
    fault = Latency(link(OK_FAST), 300, 50)
    assert fault.target == "pg:r1"
    assert fault.describe() == {
        "link": "pg:r1",
        "proxy": "pg_r1",
        "replica": "r1",
        "direction": "down",
        "toxic": "latency",
        "latency": 300,
        "jitter": 50,
    }


@pytest.mark.parametrize(
    "make",
    [
        lambda: Latency(link(OK_FAST), 120, 50),
        lambda: Bandwidth(link(OK_FAST), 0),
        lambda: Bandwidth(link(OK_FAST), 10_000),
        lambda: Bandwidth(link(OK_FAST), 100, direction="both"),
        lambda: SlowClose(link(OK_FAST), 100),
        lambda: LimitData(link(OK_FAST), 100, direction="both"),
    ],
)
def test_unprovable_parameters_are_refused(make: Any) -> None:
    with pytest.raises(ValueError):
        make()


@pytest.mark.parametrize(
    ("fault_cls", "violation", "control"),
    [
        (ResetCut, CLOSED_FAST, OK_FAST),
        (ResetCut, PathResult("refused", 0.001), HANG),  # a hang is not a cut
        (ResetPeer, CLOSED_FAST, OK_FAST),
        (BlackHole, HANG, OK_FAST),
        (BlackHole, HANG, CLOSED_FAST),  # closed at once is not a black hole
        (Stall, HANG, OK_FAST),
    ],
)
async def test_effect_rules(fault_cls: Any, violation: PathResult, control: PathResult) -> None:
    assert await fault_cls(link(violation)).effect_present()
    assert not await fault_cls(link(control)).effect_present()


async def test_latency_effect_and_heal_thresholds() -> None:
    slow = Latency(link(PathResult("ok", 0.26)), 300, 50)
    assert await slow.effect_present() and not await slow.heal_present()
    fast = Latency(link(PathResult("ok", 0.05)), 300, 50)
    assert not await fast.effect_present() and await fast.heal_present()
    middling = Latency(link(PathResult("ok", 0.2)), 300, 50)  # neither slow enough nor healed
    assert not await middling.effect_present() and not await middling.heal_present()


async def test_bandwidth_slow_close_limit_data_rules() -> None:
    assert await Bandwidth(link(PathResult("ok", 0.9)), 100).effect_present()
    assert not await Bandwidth(link(PathResult("ok", 0.1)), 100).effect_present()
    assert await Bandwidth(link(PathResult("ok", 0.1)), 100).heal_present()
    assert await SlowClose(link(PathResult("ok", 1.3)), 1500).effect_present()
    assert not await SlowClose(link(PathResult("ok", 0.01)), 1500).effect_present()
    assert await LimitData(link(CLOSED_FAST)).effect_present()
    assert not await LimitData(link(HANG)).effect_present()
    assert await LimitData(link(OK_FAST)).heal_present()


async def test_toxic_heal_removes_only_its_own_toxics_and_is_idempotent() -> None:
    toxi = FakeToxiproxy()
    await toxi.add_toxic("pg_r1", name="someone_elses")
    fault = BlackHole(link(OK_FAST, toxi))
    await fault.inject()
    assert set(toxi.toxics_present) == {
        "someone_elses",
        "loomchaos_black_hole_upstream",
        "loomchaos_black_hole_downstream",
    }
    await fault.heal()
    await fault.heal()  # a second heal (or one after a failed inject) must be harmless
    assert set(toxi.toxics_present) == {"someone_elses"}


def test_classify_maps_client_errors_to_path_outcomes() -> None:
    assert classify(ConnectionRefusedError())[0] == "refused"
    assert classify(TimeoutError())[0] == "timeout"
    assert classify(asyncpg.exceptions.ConnectionDoesNotExistError("gone"))[0] == "closed"
    assert classify(ConnectionResetError())[0] == "closed"
    assert classify(OSError(errno.EPIPE, "broken pipe"))[0] == "closed"
    outcome, detail = classify(asyncpg.exceptions.TooManyConnectionsError("too many clients"))
    assert outcome == "rejected" and detail.startswith("53300")
    assert classify(ValueError("x"))[0] == "error"


def test_advisory_lock_ids_split_the_key_as_pg_locks_shows_it() -> None:
    classid, objid = _lock_ids(REPLICAS_SWEEPER_LOCK_KEY)
    assert (classid << 32) | objid == REPLICAS_SWEEPER_LOCK_KEY
    classid, objid = _lock_ids(HEARTBEAT_SWEEPER_LOCK_KEY)  # negative: two's complement
    assert (classid << 32) | objid == HEARTBEAT_SWEEPER_LOCK_KEY + 2**64
    assert 0 <= classid < 2**32 and 0 <= objid < 2**32


async def test_cancel_storm_proves_reach_and_stops_on_heal() -> None:
    calls: list[int] = []

    async def cancel_one() -> str | None:
        calls.append(1)
        return None if len(calls) < 3 else "acknowledged"

    storm = CancelStorm("lb", cancel_one, interval_s=0.01, max_cancels=500)
    history = History()
    async with injected(storm, history):
        assert storm.counts["acknowledged"] >= 1
    assert storm._task is not None and storm._task.done()
    n = len(calls)
    assert n <= 500
    assert (await storm.evidence())["cancels"]["no_running_run"] == 2


async def test_cancel_storm_with_no_running_runs_is_not_proven() -> None:
    async def nothing_running() -> str | None:
        return None

    storm = CancelStorm("lb", nothing_running, interval_s=0.01)
    storm.effect_timeout = 0.3
    with pytest.raises(FaultNotProven):
        async with injected(storm, History()):
            pytest.fail("unreachable")
    assert storm._task is not None and storm._task.done()


async def test_provider_storm_needs_an_observed_rate_and_heals_to_zero() -> None:
    rates = {"now": 0.0}

    async def set_rates(r429: float, r500: float) -> None:
        rates["now"] = r429 + r500

    async def observed() -> float | None:
        return rates["now"]

    storm = ProviderErrorStorm("cluster", set_rates, observed, rate_429=0.4)
    history = History()
    async with injected(storm, history):
        assert rates["now"] == 0.4
    assert rates["now"] == 0.0

    async def never_fails() -> float | None:
        return 0.0

    dud = ProviderErrorStorm("cluster", set_rates, never_fails, rate_429=0.4)
    dud.effect_timeout = 0.3
    with pytest.raises(FaultNotProven):
        async with injected(dud, History()):
            pytest.fail("unreachable")
    with pytest.raises(ValueError):
        ProviderErrorStorm("c", set_rates, observed, rate_429=0.0, rate_500=0.0)


def test_fast_failure_constant_is_below_hang() -> None:
    from chaos.faults.link import FAST_FAILURE_S, HANG_S

    assert FAST_FAILURE_S < HANG_S
    assert asyncio.iscoroutinefunction(ResetCut.effect_present)
