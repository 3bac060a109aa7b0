"""The live machine's exploration time budget: parsed from the environment, and the
chunked exploration it drives (a toy machine on a fake clock, no cluster: ``explore``
is the same function the live test calls)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis.stateful import RuleBasedStateMachine, rule
from hypothesis.strategies import integers

from chaos.machine.live import run as live_run
from chaos.machine.live.profiles import (
    CHUNK_EXAMPLES,
    ENV_MINUTES,
    ENV_PROFILE,
    PROFILES,
    LiveProfile,
    active_profile,
    chunk_seed,
)
from chaos.machine.live.setup import LiveStats
from chaos.machine.run import failing_program


def test_deep_has_an_hour_and_ci_none() -> None:
    assert PROFILES["deep"].minutes == 60.0 and PROFILES["ci"].minutes is None
    # The test's timeout leaves room to finish the chunk in flight and shrink.
    assert PROFILES["deep"].timeout_s() == 60.0 * (60 + 60)
    assert PROFILES["ci"].timeout_s() == 1800.0


def test_minutes_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_PROFILE, "ci")
    monkeypatch.setenv(ENV_MINUTES, "7.5")
    profile = active_profile()
    assert (profile.name, profile.minutes, profile.max_examples) == ("ci", 7.5, 12)
    for bad in ("0", "-3", "soon", "inf", "nan"):
        monkeypatch.setenv(ENV_MINUTES, bad)
        with pytest.raises(ValueError, match="a positive number of minutes"):
            active_profile()
    monkeypatch.setenv(ENV_MINUTES, "")
    assert active_profile().minutes is None


def test_chunk_seeds_start_with_the_tests_own_and_differ() -> None:
    assert chunk_seed(42, 0) == 42
    seeds = {chunk_seed(42, k) for k in range(50)}
    assert len(seeds) == 50
    assert chunk_seed(42, 3) == chunk_seed(42, 3) != chunk_seed(43, 3)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


class ToyMachine(RuleBasedStateMachine):
    """Each example costs a minute of the fake clock; fails when ``poke`` gets a value
    above ``limit``."""

    clock: Clock
    examples: list[int]
    limit: int

    def __init__(self, runtime: Any, setup: Any) -> None:
        super().__init__()
        self.clock.now += 60.0
        self.examples.append(1)

    @rule(value=integers(0, 100))
    def poke(self, value: int) -> None:
        assert value <= self.limit, f"poked {value}"


def explore_toy(
    monkeypatch: pytest.MonkeyPatch, profile: LiveProfile, limit: int, tmp: Path
) -> tuple[Any, type[ToyMachine], Clock]:
    clock = Clock()
    monkeypatch.setattr(live_run.time, "monotonic", clock.monotonic)
    machine = type("Toy", (ToyMachine,), {"clock": clock, "examples": [], "limit": limit})
    setup = SimpleNamespace(bridge=None, seed=1, stats=LiveStats())
    live_run.explore(
        setup,  # type: ignore[arg-type]
        profile,
        seed=7,
        regressions_dir=tmp,
        machine=machine,  # type: ignore[arg-type]
    )
    return setup, machine, clock


def budgeted(
    max_examples: int, minutes: float, *, steps: int = 2, shrink: bool = False
) -> LiveProfile:
    return LiveProfile(
        "t",
        max_examples=max_examples,
        steps=steps,
        shrink=shrink,
        max_regressions=0,
        minutes=minutes,
    )


def test_a_budget_starts_no_chunk_once_spent(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    setup, machine, _ = explore_toy(monkeypatch, budgeted(200, 25.0), 1_000, tmp_path)
    # A chunk of 10 one-minute examples; 25 minutes: chunks start at 0, 10, 20 minutes.
    assert len(setup.stats.chunk_seeds) == 3
    assert setup.stats.chunk_seeds[0] == 7 and len(set(setup.stats.chunk_seeds)) == 3
    assert len(machine.examples) == 3 * CHUNK_EXAMPLES


def test_max_examples_still_bounds_a_budgeted_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    setup, machine, _ = explore_toy(monkeypatch, budgeted(15, 600.0), 1_000, tmp_path)
    assert len(setup.stats.chunk_seeds) == 2 and len(machine.examples) == 15


def test_a_failure_in_a_chunk_is_shrunk_saved_and_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    profile = budgeted(200, 1.0, steps=3, shrink=True)
    with pytest.raises(AssertionError, match="poked") as caught:
        explore_toy(monkeypatch, profile, 50, tmp_path)
    assert "state.poke(value=51)" in failing_program(caught.value)
    notes = "\n".join(caught.value.__notes__)
    assert "chunk 0 of the exploration, hypothesis seed 7" in notes
    assert "saved as a regression" in notes and list(tmp_path.glob("*.json"))
