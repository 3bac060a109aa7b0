"""The driver benchmark's pure helpers, and the load sink's wire shape against the real client."""

from __future__ import annotations

import asyncio
import math

import pytest

from chaos.bench.driver_load import CountingClient, describe_failures, ramp_streams
from chaos.bench.stats import Spread, format_table, percentile
from chaos.record.history import History
from chaos.sut.base import RunRequest
from chaos.sut.loomcycle.bench_sink import BadRequest, LoadSink, SinkConfig, chunk, parse_head
from chaos.wait import eventually
from chaos.workload.driver import Driver, RunResult


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0  # unsorted input
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 99) == 0.0


@pytest.mark.parametrize("q", [0, -1, 100.5])
def test_percentile_rejects_bad_q(q: float) -> None:
    with pytest.raises(ValueError, match="q must be"):
        percentile([1.0], q)


def test_spread_formats_milliseconds_and_empty_sets() -> None:
    spread = Spread.of([0.001, 0.002, 0.010])
    assert spread.count == 3 and spread.max == 0.010
    assert spread.ms() == "2.0/10.0/10.0"
    assert Spread.of([]).ms() == "no samples"


def test_format_table_aligns_columns() -> None:
    text = format_table(["name", "n"], [["a", 1], ["long name", 1000]])
    lines = text.splitlines()
    assert lines[0] == "name          n"
    assert lines[1] == "---------  ----"
    assert lines[2] == "a             1"
    assert lines[3] == "long name  1000"


def test_format_table_rejects_ragged_rows() -> None:
    with pytest.raises(ValueError, match="expected 2"):
        format_table(["a", "b"], [["only one"]])


def test_parse_head_reads_method_path_headers() -> None:
    raw = (
        b"POST /v1/runs?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\nConnection: close\r\n\r\n"
    )
    head = parse_head(raw)
    assert (head.method, head.path, head.content_length) == ("POST", "/v1/runs", 12)
    assert head.keep_alive is False
    assert parse_head(b"GET / HTTP/1.1\r\n\r\n").keep_alive is True


@pytest.mark.parametrize(
    "raw",
    [b"garbage\r\n\r\n", b"GET / HTTP/1.1\r\nno colon here\r\n\r\n"],
)
def test_parse_head_rejects_malformed(raw: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_head(raw)


def test_bad_content_length_is_a_bad_request() -> None:
    head = parse_head(b"POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n")
    with pytest.raises(BadRequest):
        _ = head.content_length


def test_chunk_encoding() -> None:
    assert chunk(b"hello") == b"5\r\nhello\r\n"
    assert chunk(b"x" * 26).startswith(b"1a\r\n")


def test_hold_for_prefers_the_request_and_is_capped() -> None:
    config = SinkConfig(hold_s=0.05, max_hold_s=10.0)
    assert config.hold_for({}) == 0.05
    assert config.hold_for({"metadata": {"hold_ms": 250}}) == 0.25
    assert config.hold_for({"metadata": {"hold_ms": 10**9}}) == 10.0
    assert config.hold_for({"metadata": {"hold_ms": "soon"}}) == 0.05


def _result(end: str, error: str | None = None) -> RunResult:
    outcome = "ok" if end == "done" else "info"
    return RunResult("a", None, outcome, end, 0.1, error=error)  # type: ignore[arg-type]


def test_describe_failures_counts_non_done_endings() -> None:
    results = [_result("done"), _result("broken", "E1"), _result("broken", "E1"), _result("cut")]
    assert describe_failures(results) == "2x broken: E1; 1x cut: "
    assert describe_failures([_result("done")]) == "none"


async def test_driver_and_real_client_complete_runs_against_the_sink() -> None:
    """The sink speaks the shape the real client parses: every run ends done/end_turn."""
    sink = LoadSink(SinkConfig(hold_s=0.01, keepalive_s=0.005))
    port = await sink.start()
    client = CountingClient.for_streams(f"http://127.0.0.1:{port}", streams=5)
    try:
        driver = Driver(client, History(), via="sink", run_timeout_s=10.0, poll_timeout_s=1.0)
        reqs = [RunRequest("bench", f"t-{i}", "x", metadata={"hold_ms": 30}) for i in range(5)]
        results = [await driver.run(r) for r in reqs[:2]]  # sequential: connection reuse
        results += await asyncio.gather(*(driver.run(r) for r in reqs[2:]))
        assert [r.end for r in results] == ["done"] * 5
        assert {r.stop_reason for r in results} == {"end_turn"}
        assert all(r.run_id and r.run_id.startswith("r_") for r in results)
        assert client.peak_open >= 1 and client.open_streams == 0
        assert sink.served == 5 and sink.open_streams == 0
        assert math.isclose(sink.stats()["served"], 5)
    finally:
        await client.aclose()
        await sink.aclose()


async def test_release_ends_held_streams_early() -> None:
    sink = LoadSink(SinkConfig(hold_s=60.0, keepalive_s=0.05))
    port = await sink.start()
    client = CountingClient.for_streams(f"http://127.0.0.1:{port}", streams=3)
    try:
        driver = Driver(client, History(), via="sink", run_timeout_s=20.0, poll_timeout_s=1.0)
        tasks = [
            asyncio.create_task(driver.run(RunRequest("bench", f"h-{i}", "x"))) for i in range(3)
        ]

        async def all_open() -> bool:
            return client.open_streams == 3

        await eventually(all_open, what="3 held streams", timeout=10.0, interval=0.02)
        assert sink.release() == 3
        async with asyncio.timeout(10.0):
            results = await asyncio.gather(*tasks)
        assert [r.end for r in results] == ["done"] * 3
    finally:
        await client.aclose()
        await sink.aclose()


async def test_ramp_holds_every_step_and_drains_after_release() -> None:
    sink = LoadSink(SinkConfig(keepalive_s=0.05))
    port = await sink.start()
    try:
        ramp = await ramp_streams(
            f"http://127.0.0.1:{port}",
            steps=[3, 6],
            release=sink.release,
            step_timeout_s=10.0,
            hold_window_s=0.2,
            budget_s=30.0,
            open_batch=2,
        )
    finally:
        await sink.aclose()
    assert [(s.target, s.held, s.open_streams) for s in ramp.steps] == [(3, True, 3), (6, True, 6)]
    assert ramp.highest_held is not None and ramp.highest_held.target == 6
    assert ramp.first_failed is None and ramp.skipped == []
    assert ramp.drained == 6 and ramp.drain_failures == "none"
    assert ramp.steps[0].hold_lag.count > 0


async def test_ramp_step_fails_when_held_streams_end_early() -> None:
    """A sink that will not hold (max_hold_s tiny): the first step must not count as held."""
    sink = LoadSink(SinkConfig(keepalive_s=0.05, max_hold_s=0.05))
    port = await sink.start()
    try:
        ramp = await ramp_streams(
            f"http://127.0.0.1:{port}",
            steps=[3, 6],
            release=sink.release,
            step_timeout_s=10.0,
            hold_window_s=0.5,
            budget_s=30.0,
        )
    finally:
        await sink.aclose()
    assert len(ramp.steps) == 1 and not ramp.steps[0].held
    assert ramp.steps[0].failure is not None and "ended" in ramp.steps[0].failure
    assert ramp.highest_held is None and ramp.skipped == [6]


@pytest.mark.parametrize("steps", [[], [5, 3], [0, 2], [2, 2]])
async def test_ramp_rejects_bad_steps(steps: list[int]) -> None:
    with pytest.raises(ValueError, match="steps"):
        await ramp_streams("http://127.0.0.1:9", steps=steps, release=lambda: None)
