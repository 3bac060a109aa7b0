"""Campaign data: CSV files with the contract's columns, wave rows and cancels from a
hand-made history, resource arithmetic, gauges, the compare interval (no Docker)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from chaos.campaign.data import (
    CANCELS_COLUMNS,
    REAP_COLUMNS,
    SAMPLES_COLUMNS,
    WAVES_COLUMNS,
    OutputFolder,
    cell,
    write_summary,
)
from chaos.campaign.faults import reap_rows
from chaos.campaign.measures import (
    cancel_samples,
    compare_intervals,
    completed_circuits,
    load_split,
    wave_circuits,
    wave_row,
    welch_interval,
)
from chaos.campaign.replicas import cgroup_reading, cpu_percent
from chaos.record.history import FaultWindow, History
from chaos.record.vocabulary import OP_CANCEL, OP_START_RUN, RunRow
from chaos.sut.loomcycle.campaign import parse_gauges
from chaos.workload.phases import summarize_wave


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_csv_files_have_the_contract_columns_in_order(tmp_path: Path) -> None:
    with OutputFolder(tmp_path) as out:
        out.waves.add({"campaign": "burst", "wave": 1, "p50_ms": 1.23456, "cancel_p50_ms": None})
        with pytest.raises(KeyError, match="unknown columns"):
            out.samples.add({"nope": 1})
    headers = {
        name: next(csv.reader((tmp_path / name).open()))
        for name in ("waves.csv", "samples.csv", "cancels.csv", "reap.csv")
    }
    assert headers["waves.csv"][:6] == ["campaign", "build", "replicas", "phase", "wave", "scale"]
    assert tuple(headers["waves.csv"]) == WAVES_COLUMNS and len(WAVES_COLUMNS) == 20
    assert tuple(headers["samples.csv"]) == SAMPLES_COLUMNS
    assert tuple(headers["cancels.csv"]) == CANCELS_COLUMNS == ("t", "replica", "ack_ms", "outcome")
    assert tuple(headers["reap.csv"]) == REAP_COLUMNS == ("t", "event", "run_id", "replica")
    rows = list(csv.DictReader((tmp_path / "waves.csv").open()))
    assert (
        rows[0]["p50_ms"] == "1.235" and rows[0]["cancel_p50_ms"] == "" and rows[0]["wave"] == "1"
    )


def test_cells() -> None:
    assert [cell(None), cell(float("nan")), cell(2.0), cell(0.0), cell(True), cell(3)] == [
        "",
        "",
        "2",
        "0",
        "true",
        "3",
    ]


def test_summary_is_written_whole(tmp_path: Path) -> None:
    write_summary(tmp_path, {"campaign": "x", "exit_code": 1})
    assert json.loads((tmp_path / "summary.json").read_text())["exit_code"] == 1
    assert not (tmp_path / "summary.json.tmp").exists()


def one_wave_history() -> History:
    clock = Clock()
    h = History(seed=1, clock=clock, wall_clock=clock)
    tags = {"phase": "burst", "wave": "p0w0"}
    runs = []
    for n, (latency, end) in enumerate([(1.0, "done"), (2.0, "done"), (3.0, "error")]):
        inv = h.invoke(OP_START_RUN, "d", key=f"a{n}", user_id="u", attempt=1, **tags)
        runs.append((inv, latency, end))
    for inv, latency, end in runs:
        clock.now = 100.0 + latency
        h.complete(inv, "ok", end=end, run_id=f"r{inv.key}", replica_id="r1")
    broken = h.invoke(OP_START_RUN, "d", key="a9", user_id="u", attempt=1, **tags)
    h.complete(broken, "info", end="broken", error="stream broke")
    cancel = h.invoke(OP_CANCEL, "cancel@r2", key="a0", via="r2", reason="x")
    h.complete(cancel, "ok", classification="acknowledged", client_latency_s=0.05)
    lost = h.invoke(OP_CANCEL, "cancel@r1", key="a1", via="r1", reason="x")
    h.complete(lost, "info", error="timeout")
    return h


def test_wave_row_from_a_hand_made_history() -> None:
    h = one_wave_history()
    summary = summarize_wave(h.records, "p0w0", phase="burst", scale=4, wall_s=4.0)
    row = wave_row(summary, h.records, campaign="burst", build="v1", replicas=3, started_at=5.0)
    assert set(row) == set(WAVES_COLUMNS)
    assert (row["completed"], row["failed"], row["silent_regressions"]) == (2, 1, 1)
    assert row["runs_per_s"] == pytest.approx(0.5)
    assert (row["p50_ms"], row["p99_ms"], row["max_ms"]) == (1000.0, 2000.0, 2000.0)
    assert row["cancels"] == 2 and row["cancel_p50_ms"] == pytest.approx(50.0)


def test_cancel_samples_classify_every_answer() -> None:
    samples = cancel_samples(one_wave_history().records)
    assert [(s.replica, s.outcome, s.ack_s) for s in samples] == [
        ("r2", "acknowledged", 0.05),
        ("r1", "no_answer", None),
    ]


def row(run_id: str, replica: str | None, stop: str, completed_at: float | None) -> RunRow:
    return RunRow(run_id, f"a-{run_id}", "u", replica, "failed", stop, None, 0.0, completed_at, 0.0)


def test_load_split_and_reap_timeline() -> None:
    rows = [
        row("1", "r1", "end_turn", 1000.0),
        row("2", "r2", "replica_died", 1070.0),
        row("3", "r2", "end_turn", 990.0),
        row("4", "r2", "end_turn", 1002.0),
        row("5", None, "x", None),
    ]
    assert load_split(rows) == {"r1": 1, "r2": 3}
    window = FaultWindow("kill", "r2", 1.0, 80.0, 1000.0, 1080.0, True, True)
    timeline = reap_rows(window, rows, wall0=900.0)
    assert [(r["t"], r["event"], r["run_id"]) for r in timeline] == [
        (100.0, "kill", ""),
        (102.0, "ended", "4"),
        (170.0, "reaped", "2"),
        (180.0, "rejoined", ""),
    ]


def test_cpu_and_memory_from_engine_stats() -> None:
    first = cgroup_reading(
        {
            "cpu_stats": {"cpu_usage": {"total_usage": 1_000_000_000}},
            "memory_stats": {
                "usage": 300 * 1048576,
                "stats": {"total_inactive_file": 100 * 1048576},
            },
        },
        10.0,
    )
    second = cgroup_reading({"cpu_stats": {"cpu_usage": {"total_usage": 1_500_000_000}}}, 11.0)
    assert first.memory_bytes == 200 * 1048576 and second.memory_bytes is None
    assert cpu_percent(None, first) is None
    assert cpu_percent(first, second) == pytest.approx(50.0)
    restarted = cgroup_reading({"cpu_stats": {"cpu_usage": {"total_usage": 5}}}, 12.0)
    assert cpu_percent(second, restarted) is None


def test_gauges_from_a_metrics_page() -> None:
    page = (
        "# TYPE loomcycle_process_goroutines gauge\n"
        'loomcycle_process_goroutines{replica_id="r1"} 123\n'
        "# TYPE loomcycle_concurrency_active gauge\n"
        'loomcycle_concurrency_active{replica_id="r1"} 7\n'
    )
    gauges = parse_gauges(page)
    assert (gauges.goroutines, gauges.active_runs, gauges.queued_runs) == (123.0, 7.0, None)
    assert parse_gauges("{not prometheus").goroutines is None


def test_welch_interval_known_values_and_a_build_against_itself() -> None:
    same = welch_interval("p50_ms", [10.0, 12.0, 11.0], [11.0, 10.0, 12.0])
    assert same is not None and same.contains_zero and same.diff == pytest.approx(0.0)
    # Hand-computed: means 2 and 5, variances 1 and 1, n 3+3: se sqrt(2/3), dof 4,
    # t(0.975, 4) = 2.7764: half-width 2.2670.
    shifted = welch_interval("x", [1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert shifted is not None and not shifted.contains_zero
    assert (shifted.low, shifted.high) == (
        pytest.approx(0.733, abs=1e-3),
        pytest.approx(5.267, abs=1e-3),
    )
    flat = welch_interval("x", [1.0, 1.0], [1.0, 1.0])
    assert flat is not None and (flat.low, flat.high) == (0.0, 0.0)
    assert welch_interval("x", [1.0], [1.0, 2.0]) is None


def test_compare_intervals_go_by_side_not_label() -> None:
    rows = {
        "rep1-baseline": [{"p50_ms": 10.0, "runs_per_s": 5.0}],
        "rep1-candidate": [{"p50_ms": 11.0, "runs_per_s": 5.0}],
        "rep2-candidate": [{"p50_ms": 10.0, "runs_per_s": 5.0}],
        "rep2-baseline": [{"p50_ms": 11.0, "runs_per_s": 5.0}],
    }
    sides = {name: name.split("-")[1] for name in rows}
    intervals = {i.metric: i for i in compare_intervals(rows, sides)}
    assert set(intervals) == {"p50_ms", "runs_per_s"}  # no wall_s/p99 in these rows
    assert intervals["p50_ms"].contains_zero and intervals["p50_ms"].n_baseline == 2


def test_completed_circuits_need_all_three_runs_done() -> None:
    clock = Clock()
    h = History(seed=1, clock=clock, wall_clock=clock)
    tags = {"phase": "burst", "wave": "p0w0"}
    ends = {("c1", "researcher"): "done", ("c1", "editor"): "done", ("c1", "evaluator"): "done"}
    ends |= {("c2", "researcher"): "done", ("c2", "editor"): "error", ("c2", "evaluator"): "done"}
    for (circuit, role), end in ends.items():
        inv = h.invoke(
            OP_START_RUN,
            "d",
            key=f"{role}-{circuit}",
            user_id=f"u{circuit}",
            attempt=1,
            circuit=circuit,
            **tags,
        )
        h.complete(inv, "ok", end=end)
    assert completed_circuits(h.records) == [("c1", "uc1")]
    assert wave_circuits(h.records, "p0w0") == 2 and wave_circuits(h.records, "p0w1") == 0
