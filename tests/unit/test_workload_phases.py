"""The phase engine: time and count bounds, fresh ids, stop, wave timeout, summaries."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from chaos.record.history import History
from chaos.record.vocabulary import OP_START_RUN
from chaos.sut.base import RunRequest
from chaos.workload import (
    CapPolicy,
    Driver,
    Phase,
    PhaseEngine,
    RetryPolicy,
    SingleAgentWorkload,
    WaveSummary,
    parse_phases,
    percentile,
    summarize_wave,
)
from chaos.workload.scripted import Script, ScriptedRunClient


def engine_for(
    script: Script, *, policy: CapPolicy | None = None, **kw: Any
) -> tuple[PhaseEngine, History, ScriptedRunClient]:
    client = ScriptedRunClient(script=lambda _r, _a: script)
    history = History()
    driver = Driver(client, history, policy=policy, poll_timeout_s=0.2, poll_interval_s=0.01)
    engine = PhaseEngine(driver, SingleAgentWorkload(), prefix="tp", **kw)
    return engine, history, client


async def test_a_phase_stops_on_time() -> None:
    engine, _, _ = engine_for(Script.done(delay_s=0.02), lag_interval_s=None)
    started = time.monotonic()

    waves = await engine.run([Phase(scale=2, duration_s=0.3)])

    elapsed = time.monotonic() - started
    assert 2 <= len(waves) < 100
    assert elapsed < 0.3 + 0.5  # at most one wave past the end
    assert all(w.completed == 2 and w.failed == 0 and w.unknown == 0 for w in waves)


async def test_a_phase_stops_on_count() -> None:
    engine, _, _ = engine_for(Script.done(), lag_interval_s=None)

    waves = await engine.run([Phase(scale=1, duration_s=60, max_waves=3)])

    assert [w.wave for w in waves] == ["p0w0", "p0w1", "p0w2"]


async def test_phases_run_in_order_with_fresh_ids_every_wave() -> None:
    engine, history, _ = engine_for(Script.done(), policy=CapPolicy.gated(2))

    waves = await engine.run(
        [Phase(scale=3, duration_s=60, max_waves=2), Phase(scale=5, duration_s=60, max_waves=1)]
    )

    assert [(w.wave, w.scale, w.launched) for w in waves] == [
        ("p0w0", 3, 3),
        ("p0w1", 3, 3),
        ("p1w0", 5, 5),
    ]
    invokes = [o.invoke for o in history.operations(OP_START_RUN)]
    agent_ids = [i.key or "" for i in invokes]
    assert len(set(agent_ids)) == len(agent_ids) == 11
    assert all(a.startswith("tp") for a in agent_ids)
    users_by_wave: dict[str, set[str]] = {}
    for inv in invokes:
        users_by_wave.setdefault(inv.data["wave"], set()).add(inv.data["user_id"])
    assert users_by_wave["p0w0"].isdisjoint(users_by_wave["p0w1"])
    assert users_by_wave["p0w0"] == {"tpp0w0-u0", "tpp0w0-u1"}  # 3 runs, 2 per user
    assert len([r for r in history.records if r.op == "wave"]) == 3


async def test_stop_event_ends_the_engine_between_waves() -> None:
    stop = asyncio.Event()
    engine, _, _ = engine_for(Script.done(), stop=stop, on_wave=lambda _s: stop.set())

    waves = await engine.run([Phase(scale=1, duration_s=60), Phase(scale=1, duration_s=60)])

    assert len(waves) == 1


async def test_a_stalled_wave_is_cut_recorded_and_ends_the_engine() -> None:
    engine, history, client = engine_for(Script.hanging(), wave_timeout_s=0.1)

    waves = await engine.run([Phase(scale=2, duration_s=60), Phase(scale=2, duration_s=60)])

    assert len(waves) == 1
    [wave] = waves
    assert wave.timed_out and wave.unknown == 2 and wave.completed == 0
    infos = [o.result for o in history.operations(OP_START_RUN)]
    assert all(r["cut"] is True and r["cancelled"] is True for r in infos)
    assert client.open_total == 0 and len(client.closed_early) == 2


async def test_summaries_come_from_the_history_with_percentiles_and_failures() -> None:
    def script(r: RunRequest, attempt: int) -> Script:
        agent_id = r.agent_id
        if agent_id.endswith("-a1"):
            return Script.error()
        if agent_id.endswith("-a2"):
            return (
                Script.rejected(429, "per_user_quota_exhausted") if attempt == 1 else Script.done()
            )
        return Script.done(delay_s=0.01)

    client = ScriptedRunClient(script=script)
    history = History()
    policy = CapPolicy.send_anyway(4, RetryPolicy(attempts=2, base_s=0.001, max_s=0.001))
    driver = Driver(client, history, policy=policy)
    engine = PhaseEngine(driver, SingleAgentWorkload(), prefix="tp", lag_interval_s=None)

    [wave] = await engine.run([Phase(scale=4, duration_s=60, max_waves=1)])

    assert (wave.launched, wave.completed, wave.failed, wave.rejected, wave.retries) == (
        4,
        3,
        1,
        0,
        1,
    )
    assert wave.p50_s is not None and wave.p99_s is not None and wave.p50_s <= wave.p99_s
    again = summarize_wave(history.records, "p0w0", phase=wave.phase, scale=4, wall_s=wave.wall_s)
    assert again == wave  # the same numbers from the history alone


def test_summarize_counts_refusals_and_unknowns_from_hand_made_records() -> None:
    h = History(clock=iter([0.0, 1.0, 2.0, 2.5, 3.0, 7.0, 8.0]).__next__)
    a = h.invoke(OP_START_RUN, "d-1", key="a", wave="w", attempt=1)  # 0.0
    h.complete(a, "ok", end="done")  # 1.0 -> latency 1.0
    b = h.invoke(OP_START_RUN, "d-2", key="b", wave="w", attempt=1)  # 2.0
    h.complete(b, "fail", status=429, code="per_user_quota_exhausted")  # 2.5
    c = h.invoke(OP_START_RUN, "d-3", key="c", wave="w", attempt=1)  # 3.0
    h.complete(c, "ok", end="done")  # 7.0 -> latency 4.0
    h.invoke(OP_START_RUN, "d-4", key="d", wave="other", attempt=1)  # 8.0, not this wave

    s = summarize_wave(h.records, "w")

    assert (s.launched, s.completed, s.failed, s.rejected, s.unknown) == (3, 2, 1, 1, 0)
    assert (s.p50_s, s.p99_s) == (1.0, 4.0)


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([float(i) for i in range(1, 101)], 99) == 99.0
    assert percentile([5.0], 99) == 5.0


def test_parse_phases_and_phase_validation() -> None:
    assert [(p.scale, p.duration_s) for p in parse_phases("10x60, 50x120s")] == [
        (10, 60.0),
        (50, 120.0),
    ]
    with pytest.raises(ValueError, match="SCALExSECONDS"):
        parse_phases("10:60")
    with pytest.raises(ValueError):
        Phase(scale=0, duration_s=1)


def test_wave_summary_as_dict_is_flat_data() -> None:
    s = WaveSummary("p", "p0w0", 1, 0.5, 1, 1, 0, 0, 0, 0, 0.4, 0.4, 0.0)
    assert s.as_dict()["p99_s"] == 0.4
