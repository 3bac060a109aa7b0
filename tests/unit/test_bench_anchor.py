"""The anchor benchmark's pure helpers: circuit-stress output, /proc parsing, config fit, tables."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from chaos.bench.anchor import (
    CircuitTally,
    DriverRun,
    PhaseTimes,
    circuit_stress_gaps,
    connections_to_port,
    driver_rows,
    established_to_port,
    markdown_table,
    parse_cs_results,
    parse_cs_summary,
    per_1000,
    socket_inode,
    spread_s,
    tally_runs,
    total,
)
from chaos.sut.loomcycle.config import render_config
from chaos.sut.loomcycle.settings import loomcycle_spec

CS_STDOUT = """
─── Summary ────────────────────────────────────────────────
  Circuits: 30 total / 28 completed / 1 failed / 1 timeout / 0 skipped
  Duration: p50=2840ms  p95=4120ms  p99=5870ms  max=8200ms
  Results:  results/circuits.jsonl
"""


def _cs_row(cid: int, status: str, done_roles: int = 3, ms: int = 2000, error: str = "") -> str:
    roles = ["researcher", "editor", "evaluator"]
    agent_status = {r: "completed" for r in roles[:done_roles]}
    agent_status.update({r: "failed" for r in roles[done_roles:]})
    row = {
        "circuit_id": cid,
        "status": status,
        "agent_status": agent_status,
        "duration_ms": ms,
        "error": error,
    }
    return json.dumps(row)


def test_per_1000_and_empty_counts() -> None:
    assert per_1000(0.9, 90) == pytest.approx(10.0)
    assert per_1000(1.5, 30) == pytest.approx(50.0)
    assert per_1000(1.0, 0) is None


def test_parse_cs_summary_reads_the_circuits_line() -> None:
    summary = parse_cs_summary(CS_STDOUT)
    assert summary is not None
    assert (summary.total, summary.completed, summary.failed) == (30, 28, 1)
    assert (summary.timeout, summary.skipped) == (1, 0)
    assert parse_cs_summary("no summary here") is None


def test_parse_cs_results_counts_circuits_runs_and_failures() -> None:
    text = "\n".join(
        [
            _cs_row(1, "completed", ms=1500),
            _cs_row(2, "completed", ms=2500),
            _cs_row(3, "failed", done_roles=3, error="silent regression: missing outputs"),
            _cs_row(4, "timeout", done_roles=1, error="circuit timed out"),
            json.dumps({"circuit_id": 5, "status": "skipped", "error": "quota"}),
            "",
        ]
    )
    tally = parse_cs_results(text)
    assert (tally.circuits, tally.circuits_completed) == (4, 2)
    assert (tally.runs, tally.runs_completed) == (12, 3 + 3 + 3 + 1)
    assert tally.durations_s == (1.5, 2.5)
    assert tally.failures["skipped"] == 1
    assert "timeout: circuit timed out" in tally.describe_failures()


def test_tally_runs_groups_by_circuit_and_takes_the_slowest_run() -> None:
    results = [
        ("researcher-c31-bax", True, 1.0, "done: "),
        ("editor-c31-bax", True, 2.0, "done: "),
        ("evaluator-c31-bax", True, 3.0, "done: "),
        ("researcher-c32-bax", True, 1.0, "done: "),
        ("editor-c32-bax", False, 9.0, "timeout: no done"),
        ("evaluator-c32-bax", True, 4.0, "done: "),
    ]
    tally = tally_runs(results)
    assert (tally.circuits, tally.circuits_completed) == (2, 1)
    assert (tally.runs, tally.runs_completed) == (6, 5)
    assert tally.durations_s == (3.0,)
    assert tally.describe_failures() == "1x timeout: no done"


def test_spread_s() -> None:
    assert spread_s([]) == "n/a"
    assert spread_s([1.0, 2.0, 3.0, 4.0]) == "2.00/4.00/4.00"


TCP_TABLE = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:C350 0100007F:7918 01 00000000:00000000 00:00000000 00000000     0        0 111 1
   1: 0100007F:C351 0100007F:7918 06 00000000:00000000 00:00000000 00000000     0        0 112 1
   2: 0100007F:C352 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 113 1
   3: 0100007F:7918 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 114 1
   4: garbage
"""


def test_established_to_port_keeps_established_connections_to_the_port() -> None:
    # 0x7918 = 31000; row 1 is TIME_WAIT, row 2 another port, row 3 the server side.
    assert established_to_port(TCP_TABLE, 31000) == {111}
    assert established_to_port(TCP_TABLE, 8080) == {113}
    tcp6 = (
        "  sl  local_address remote_address st ... inode\n"
        "   0: 00000000000000000000000001000000:C350 "
        "00000000000000000000000001000000:7918 01 0:0 00:0 0 0 0 222 1\n"
    )
    assert established_to_port(tcp6, 31000) == {222}


def test_socket_inode() -> None:
    assert socket_inode("socket:[4242]") == 4242
    assert socket_inode("pipe:[4242]") is None
    assert socket_inode("/dev/null") is None


def test_connections_to_port_counts_this_process_own_socket() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    accepted, _ = server.accept()
    try:
        # The accepted socket's remote port is the client's, so only the client counts.
        assert connections_to_port(os.getpid(), port) == 1
    finally:
        for s in (client, accepted, server):
            s.close()
    with pytest.raises(OSError):
        connections_to_port(2**22 + 1, port, proc=Path("/proc"))


def test_our_rendered_config_fits_circuit_stress() -> None:
    spec = loomcycle_spec(circuits=6, max_runs_per_user=30)
    assert circuit_stress_gaps(render_config(spec), scale=6, circuits_per_user=10) == []


def test_gaps_name_missing_channels_cap_agents_and_acls() -> None:
    config = render_config(loomcycle_spec(circuits=2, max_runs_per_user=4))
    gaps = circuit_stress_gaps(config, scale=5, circuits_per_user=10)
    assert any("channels for circuits 3..5" in g for g in gaps)
    assert any("per-user cap 4 < 3 x 10" in g for g in gaps)
    del config["agents"]["evaluator"]
    config["agents"]["editor"]["channels"]["subscribe"] = []
    config["agents"]["researcher"]["model"] = "mock-generic"
    gaps = circuit_stress_gaps(config, scale=2, circuits_per_user=1)
    assert "agent 'evaluator' is not declared" in gaps
    assert "agent 'editor' may not subscribe ['research-done/*']" in gaps
    assert "agent 'researcher' does not use model 'mock-researcher'" in gaps
    assert circuit_stress_gaps({}, scale=1, circuits_per_user=1)[0] == (
        "agent 'researcher' is not declared"
    )


def test_cap_off_is_no_gap_and_fallback_models_count() -> None:
    from chaos.sut.loomcycle.settings import MockProvider

    spec = loomcycle_spec(circuits=1, max_runs_per_user=0, mock=MockProvider(fallback=True))
    assert circuit_stress_gaps(render_config(spec), scale=1, circuits_per_user=50) == []


def _run(driver: str, cpu: float, runs: int, peak: int | None, **kw: object) -> DriverRun:
    tally = CircuitTally(
        circuits=runs // 3,
        circuits_completed=runs // 3,
        runs=runs,
        runs_completed=runs,
        durations_s=(1.0,),
        failures={"x": 1} if kw.pop("failed", False) else {},
    )
    return DriverRun(driver, tally, wall_s=10.0, cpu_s=cpu, peak_streams=peak, **kw)  # type: ignore[arg-type]


def test_total_sums_rounds_and_keeps_peaks() -> None:
    one = _run("ours", 1.0, 90, 90, workload_cpu_s=0.5, peak_lb_conns=95, failed=True)
    two = _run("ours", 2.0, 90, 60, workload_cpu_s=1.0, peak_lb_conns=99)
    summed = total([one, two])
    assert summed.cpu_s == 3.0 and summed.wall_s == 20.0
    assert summed.tally.runs == 180 and summed.tally.circuits == 60
    assert summed.workload_cpu_s == 1.5
    assert summed.peak_streams == 90 and summed.peak_lb_conns == 99
    assert summed.tally.failures == {"x": 1}
    assert total([_run("cs", 1.0, 3, None)]).peak_streams is None
    with pytest.raises(ValueError):
        total([])


def test_driver_rows_render_per_1000_and_unmeasured_cells() -> None:
    ours = _run("ours", 0.9, 90, 90, workload_cpu_s=0.45, startup_cpu_s=0.3)
    theirs = _run("cs", 0.18, 90, None, design_streams=90)
    rows = {r[0]: r[1:] for r in driver_rows(ours, theirs)}
    assert rows["CPU s per 1,000 runs (launched)"] == ["10.00", "2.00"]
    assert rows["CPU s per 1,000 circuits (launched)"] == ["30.00", "6.00"]
    assert rows["CPU s per 1,000 runs, workload only"] == ["5.00", "not separable"]
    assert rows["streams held, driver's own count (peak)"] == [
        "90",
        "not counted by it (by design 90 runs in flight)",
    ]
    table = markdown_table(["measure", "ours", "circuit-stress"], driver_rows(ours, theirs))
    lines = table.splitlines()
    assert lines[0] == "| measure | ours | circuit-stress |"
    assert lines[1] == "|---|---|---|"
    assert all(line.startswith("| ") and line.endswith(" |") for line in lines[2:])


def test_markdown_table_escapes_pipes_and_checks_widths() -> None:
    assert markdown_table(["a"], [["x|y"]]).splitlines()[-1] == "| x\\|y |"
    with pytest.raises(ValueError, match="expected 2"):
        markdown_table(["a", "b"], [["only one"]])


def test_phase_times_rows() -> None:
    phases = PhaseTimes()
    phases.add("reset", 2.0)
    phases.add("reset", 1.0)
    phases.add("reset", 3.0)
    phases.add("cold start", 20.0)
    assert phases.rows() == [
        ["reset", "3", "2.00", "1.00", "3.00"],
        ["cold start", "1", "20.00", "20.00", "20.00"],
    ]
