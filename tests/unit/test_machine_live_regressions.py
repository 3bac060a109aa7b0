"""Saving and loading the live machine's failing programs; its profiles; the loop bridge."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos.machine.live.bridge import SessionLoopBridge
from chaos.machine.live.profiles import ENV_PROFILE, PROFILES, active_profile
from chaos.machine.live.regressions import (
    load_regression,
    load_regressions,
    save_regression,
    validate_program,
)
from chaos.machine.loop import StepTimeout
from chaos.machine.run import program_rules

PROGRAM = [
    "state = LiveClusterMachine()",
    "state.start_runs(count=2, user=1, via='r2')",
    "state.cluster_matches_the_model()",
    "state.kill_owner_during_cancel(delay=0.05, pick=3)",
    "state.teardown()",
]


def test_a_saved_program_loads_back_the_same(tmp_path: Path) -> None:
    path = save_regression(
        tmp_path, machine="LiveClusterMachine", seed=7, program=PROGRAM, error="boom", now=0.0
    )
    reg = load_regression(path)
    assert reg.program == tuple(PROGRAM) and reg.seed == 7 and reg.finding is None
    assert reg.created == "1970-01-01T00:00:00Z" and reg.name.startswith("LiveClusterMachine-")
    # The same program lands in the same file (saving twice does not pile up copies).
    again = save_regression(
        tmp_path, machine="LiveClusterMachine", seed=8, program=PROGRAM, error="boom"
    )
    assert again == path and len(list(tmp_path.glob("*.json"))) == 1


def test_the_saved_file_is_readable_json(tmp_path: Path) -> None:
    path = save_regression(tmp_path, machine="M", seed=None, program=PROGRAM, error="e")
    body = json.loads(path.read_text())
    assert body["program"][1] == "state.start_runs(count=2, user=1, via='r2')"
    assert set(body) == {"schema", "machine", "seed", "created", "error", "finding", "program"}


def test_a_program_without_rule_calls_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one"):
        save_regression(tmp_path, machine="M", seed=1, program=["state = M()"], error="e")


def test_a_call_that_is_not_literal_cannot_be_saved_or_loaded(tmp_path: Path) -> None:
    bad = ["state.cancel(pick=runs_0, via='r1')"]
    with pytest.raises(ValueError):
        validate_program(bad)
    path = tmp_path / "M-x.json"
    path.write_text(json.dumps({"schema": 1, "machine": "M", "program": bad}))
    with pytest.raises(ValueError):
        load_regression(path)


def test_a_file_of_another_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "M-x.json"
    path.write_text(json.dumps({"schema": 99, "machine": "M", "program": PROGRAM}))
    with pytest.raises(ValueError, match="schema"):
        load_regression(path)


def test_replay_is_bounded_oldest_first(tmp_path: Path) -> None:
    for n in range(4):
        program = [*PROGRAM[:1], f"state.start_runs(count={n + 1}, user=0, via='lb')"]
        save_regression(tmp_path, machine="M", seed=n, program=program, error="e", now=1000.0 - n)
    loaded = load_regressions(tmp_path, limit=2)
    assert [r.seed for r in loaded] == [3, 2]
    assert load_regressions(tmp_path / "absent", limit=5) == []
    assert load_regressions(tmp_path, limit=0) == []


def test_a_file_names_the_finding_that_explains_it(tmp_path: Path) -> None:
    path = save_regression(tmp_path, machine="M", seed=1, program=PROGRAM, error="e")
    body = json.loads(path.read_text())
    body["finding"] = "LC-004"
    path.write_text(json.dumps(body))
    assert load_regression(path).finding == "LC-004"


def test_the_committed_regressions_all_load() -> None:
    root = Path(__file__).resolve().parents[2] / "tests" / "regressions" / "live_machine"
    for reg in load_regressions(root, limit=1000):
        assert reg.machine == "LiveClusterMachine" and validate_program(reg.program)


def test_saved_rule_lines_are_what_replay_runs() -> None:
    from chaos.machine.live.machine import LiveClusterMachine

    rules = program_rules(PROGRAM, LiveClusterMachine)
    assert rules == [PROGRAM[1], PROGRAM[3]]


# -- profiles --------------------------------------------------------------------------------
def test_profiles_have_no_deadline_and_a_bounded_ci() -> None:
    ci, deep = PROFILES["ci"], PROFILES["deep"]
    for p in PROFILES.values():
        s = p.hypothesis_settings()
        assert s.deadline is None and s.database is None
    assert ci.max_examples < deep.max_examples and ci.steps < deep.steps
    assert 0 < ci.max_regressions < deep.max_regressions


def test_the_profile_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_PROFILE, raising=False)
    assert active_profile().name == "ci"
    monkeypatch.setenv(ENV_PROFILE, "deep")
    assert active_profile().name == "deep"
    monkeypatch.setenv(ENV_PROFILE, "nightly")
    with pytest.raises(ValueError, match="choose one of"):
        active_profile()


# -- the bridge ------------------------------------------------------------------------------
@pytest.fixture
def loop_in_thread() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()


def test_the_bridge_runs_work_on_the_other_loop(loop_in_thread: asyncio.AbstractEventLoop) -> None:
    bridge = SessionLoopBridge(loop_in_thread)

    async def which_loop() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    assert bridge.run(which_loop(), timeout=5, what="probe") is loop_in_thread
    assert bridge.submit(which_loop()).result(timeout=5) is loop_in_thread


def test_the_bridge_bounds_a_step(loop_in_thread: asyncio.AbstractEventLoop) -> None:
    bridge = SessionLoopBridge(loop_in_thread)
    with pytest.raises(StepTimeout, match=r"hang did not finish within 0\.1s"):
        bridge.run(asyncio.sleep(30), timeout=0.1, what="hang")


def test_the_bridge_refuses_its_own_loops_thread() -> None:
    async def inside() -> None:
        bridge = SessionLoopBridge(asyncio.get_running_loop())
        with pytest.raises(RuntimeError, match="own loop"):
            bridge.run(asyncio.sleep(0), timeout=1, what="self-wait")

    asyncio.run(inside())


# -- the tallies the test reports ------------------------------------------------------------
def test_stats_summary_counts_and_rates() -> None:
    from chaos.machine.live.setup import LiveStats

    stats = LiveStats(began=time.monotonic() - 60.0)  # a minute of exploring
    stats.examples, stats.steps = 3, 12
    stats.fault("kill")
    stats.fault("kill")
    stats.reset_s.extend([2.0, 1.0, 3.0])
    stats.example_s.append(20.04)
    summary = stats.summary()
    assert summary["faults"] == {"kill": 2} and summary["steps"] == 12
    assert summary["reset_s_median"] == 2.0 and summary["reset_s_max"] == 3.0
    assert summary["example_s"] == [20.0]
    assert 2.9 < summary["examples_per_minute"] <= 3.0


def test_example_serials_are_unique_across_explorations_and_replays() -> None:
    from chaos.machine.live.setup import LiveSetup

    setup = LiveSetup(cluster=None, bridge=None, prefix="p", seed=1, meta={})  # type: ignore[arg-type]
    assert [setup.next_serial() for _ in range(3)] == [1, 2, 3]
    assert setup.new_history(3).meta["machine_example"] == 3
