"""The campaign report's analyses on generated data with a known answer (no Docker, no files)."""

from __future__ import annotations

import numpy as np
import pytest

from chaos.campaign.report.arms import wave_arms
from chaos.campaign.report.compare import PAIRED, WELCH, compare_builds
from chaos.campaign.report.data import Table
from chaos.campaign.report.drift import block_means, sampled_slope, slope
from chaos.campaign.report.events import cancel_stats, reap_after_kills
from chaos.campaign.report.knee import find_knee
from chaos.campaign.report.spread import load_spread
from chaos.campaign.report.steps import phase_steps


def _table(text: dict[str, list[str]], numbers: dict[str, list[float]]) -> Table:
    rows = len(next(iter(text.values())))
    return Table(
        {k: np.array(v, dtype=str) for k, v in text.items()},
        {k: np.array(v, dtype=np.float64) for k, v in numbers.items()},
        rows,
    )


# -- knee -------------------------------------------------------------------------------


def test_the_throughput_knee_is_where_the_ramp_stops_rising() -> None:
    scale = np.repeat(np.arange(1000.0, 10001.0, 1000.0), 3)
    runs_per_s = np.minimum(scale, 6000.0) / 20.0 + np.tile([-1.0, 0.0, 1.0], 10)
    knee = find_knee("runs_per_s", scale, runs_per_s, curve="concave")
    assert knee.scale == 6000.0
    assert len(knee.scales) == 10  # one point per scale: the medians


def test_the_latency_knee_is_where_p99_turns_up() -> None:
    scale = np.arange(1000.0, 10001.0, 1000.0)
    p99 = np.where(scale <= 7000, 4000.0, 4000.0 + (scale - 7000.0) * 5.0)
    assert find_knee("p99_ms", scale, p99, curve="convex").scale == 7000.0


def test_a_straight_ramp_has_no_knee_and_two_scales_are_too_few() -> None:
    scale = np.arange(1000.0, 6001.0, 1000.0)
    straight = find_knee("runs_per_s", scale, scale / 10.0, curve="concave")
    assert straight.scale is None and "no knee" in straight.note
    few = find_knee("runs_per_s", scale[:2], scale[:2], curve="concave")
    assert few.scale is None and "needs 3 scales" in few.note


# -- drift ------------------------------------------------------------------------------


def test_a_known_slope_lies_in_its_interval_which_excludes_zero() -> None:
    rng = np.random.default_rng(11)
    t = np.arange(0.0, 7200.0, 1.0)  # two hours of 1 s samples
    rss = 300.0 + 10.0 * t / 3600.0 + rng.normal(0.0, 5.0, len(t))  # +10 MB/h
    drift = sampled_slope("rss_mb", "g", t, rss)
    assert drift is not None
    assert drift.low < 10.0 < drift.high
    assert drift.significant
    assert drift.points == 20  # regressed on the block means


def test_a_flat_series_interval_contains_zero_even_with_a_sawtooth() -> None:
    t = np.arange(0.0, 7200.0, 1.0)
    sawtooth = 300.0 + 40.0 * ((t % 97.0) / 97.0)  # a GC-like saw, no trend
    drift = sampled_slope("rss_mb", "g", t, sawtooth)
    assert drift is not None
    assert drift.low <= 0.0 <= drift.high
    assert not drift.significant


def test_constant_and_short_series() -> None:
    t = np.arange(10.0)
    constant = slope("goroutines", "g", t, np.full(10, 400.0))
    assert constant is not None and (constant.slope_per_h, constant.low, constant.high) == (0, 0, 0)
    assert slope("wall_s", "g", t[:2], t[:2]) is None
    assert slope("wall_s", "g", np.array([1.0, np.nan, 3.0]), np.array([1.0, 2.0, 3.0])) is None


def test_block_means_average_each_equal_time_block() -> None:
    t = np.arange(0.0, 100.0)
    bt, by = block_means(t, t.copy(), blocks=4)
    assert len(bt) == 4
    assert by.tolist() == pytest.approx([12.0, 37.0, 62.0, 87.0], abs=0.6)


# -- steps (the writeup's Finding 1) ----------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_thirteen_second_step_at_wave_101_is_found_there(seed: int) -> None:
    rng = np.random.default_rng(seed)
    wall = 60.0 + rng.normal(0.0, 3.0, 160)
    wall[100:] += 13.0
    steps = phase_steps("v / p1", np.arange(1.0, 161.0), np.arange(160.0) * 62.0, wall)
    assert len(steps) == 1
    step = steps[0]
    assert abs(step.wave - 101.0) <= 2
    assert step.direction == "up"
    assert 10.0 < step.size < 16.0


def test_a_flat_phase_and_a_short_phase_have_no_step() -> None:
    rng = np.random.default_rng(5)
    flat = 60.0 + rng.normal(0.0, 3.0, 160)
    assert phase_steps("g", np.arange(160.0), np.arange(160.0), flat) == []
    exact = np.full(40, 60.0)
    assert phase_steps("g", np.arange(40.0), np.arange(40.0), exact) == []
    short = np.array([10.0, 10.0, 10.0, 30.0, 30.0, 30.0])
    assert phase_steps("g", np.arange(6.0), np.arange(6.0), short) == []


def test_a_step_down_is_reported_as_down() -> None:
    wall = np.r_[np.full(20, 30.0), np.full(20, 20.0)] + np.tile([0.2, -0.2], 20)
    (step,) = phase_steps("g", np.arange(40.0), np.arange(40.0), wall)
    assert step.index == 20 and step.direction == "down"
    assert step.size == pytest.approx(-10.0, abs=0.1)


# -- compare ----------------------------------------------------------------------------


def _compare_waves(walls: dict[str, list[list[float]]]) -> Table:
    """Waves of each arm: ``walls[arm][rep]`` is that repetition's per-wave walls."""
    arm, phase, wall, scale = [], [], [], []
    for name, reps in walls.items():
        for rep, values in enumerate(reps, start=1):
            for value in values:
                arm.append(name)
                phase.append(f"rep{rep}")
                wall.append(value)
                scale.append(20.0)
    return _table({"arm": arm, "phase": phase}, {"wall_s": wall, "scale": scale})


def _reps(rng: np.random.Generator, reps: int, waves: int, shift: float = 0.0) -> list[list[float]]:
    # Each repetition has its own machine slowness (shared by both arms in a real run).
    return [list(60.0 + shift + rng.normal(0.0, 2.0, waves)) for _ in range(reps)]


def test_a_build_compared_with_itself_gives_an_interval_containing_zero() -> None:
    rng = np.random.default_rng(2026)
    waves = _compare_waves({"A": _reps(rng, 5, 8), "B": _reps(rng, 5, 8)})
    diff = compare_builds(waves, "A", "B", "wall_s")
    assert diff is not None and diff.method == PAIRED and diff.n == 5
    assert diff.low <= 0.0 <= diff.high
    assert not diff.significant


def test_the_self_compare_interval_covers_zero_about_95_percent_of_the_time() -> None:
    covered = 0
    trials = 400
    for seed in range(trials):
        rng = np.random.default_rng(seed)
        waves = _compare_waves({"A": _reps(rng, 4, 5), "B": _reps(rng, 4, 5)})
        diff = compare_builds(waves, "A", "B", "wall_s")
        assert diff is not None
        covered += diff.low <= 0.0 <= diff.high
    assert 0.91 <= covered / trials <= 0.99


def test_a_known_difference_is_found_with_its_sign_and_size() -> None:
    rng = np.random.default_rng(3)
    waves = _compare_waves({"A": _reps(rng, 4, 8), "B": _reps(rng, 4, 8, shift=8.0)})
    diff = compare_builds(waves, "A", "B", "wall_s")
    assert diff is not None and diff.significant
    assert diff.low < 8.0 < diff.high
    per_circuit = compare_builds(waves, "A", "B", "ms_per_circuit")
    assert per_circuit is not None
    assert per_circuit.diff == pytest.approx(diff.diff * 1000.0 / 20.0)


def test_without_two_paired_repetitions_welch_is_used_and_says_so() -> None:
    waves = _table(
        {"arm": ["A"] * 4 + ["B"] * 4, "phase": ["burst"] * 8},
        {"wall_s": [10, 11, 10, 11, 20, 21, 20, 21], "scale": [20.0] * 8},
    )
    diff = compare_builds(waves, "A", "B", "wall_s")
    assert diff is not None and diff.method == WELCH
    assert diff.diff == pytest.approx(10.0)
    assert compare_builds(waves.matching(arm="A"), "A", "B", "wall_s") is None


# -- load, cancels, reaps, arms ---------------------------------------------------------


def test_the_writeups_eight_hour_load_split_is_a_014_percent_spread() -> None:
    load = load_spread({"r1": 950_633, "r2": 951_189, "r3": 950_413, "r4": 951_765})
    assert load is not None
    assert load.spread == pytest.approx(0.00142, abs=0.00001)
    assert load.max_share == pytest.approx(951_765 / 3_804_000, rel=1e-3)
    assert 0 < load.cv < load.spread
    assert load_spread({}) is None


def test_cancel_stats_and_reap_times_per_kill() -> None:
    cancels = _table(
        {"replica": ["r1", "r2", "r1"], "outcome": ["acknowledged", "acknowledged", "lost"]},
        {"t": [1.0, 2.0, 3.0], "ack_ms": [20.0, 40.0, np.nan]},
    )
    stats = cancel_stats(cancels)
    assert stats["all"]["count"] == 2 and stats["all"]["max"] == 40.0
    assert stats["by_outcome"]["lost"] == {"count": 0}
    reap = _table(
        {
            "event": ["kill", "reaped", "reaped", "ended", "kill", "reaped"],
            "run_id": ["", "a", "b", "c", "", "d"],
            "replica": ["r2", "r2", "r2", "r1", "r1", "r1"],
        },
        {"t": [100.0, 118.0, 121.0, 122.0, 300.0, 319.0]},
    )
    first, second = reap_after_kills(reap)
    assert (first.replica, first.reaped, first.ended) == ("r2", 2, 1)
    assert (first.first_reaped_after_s, first.last_reaped_after_s) == (18.0, 21.0)
    assert (second.replica, second.reaped, second.last_reaped_after_s) == ("r1", 1, 19.0)


def test_a_self_compare_gets_its_sides_from_the_legs() -> None:
    waves = _table({"build": ["v1"] * 4}, {})
    legs = [
        {"name": "rep1-baseline", "build": "v1", "side": "baseline", "waves": 1},
        {"name": "rep1-candidate", "build": "v1", "side": "candidate", "waves": 2},
        {"name": "rep2-baseline", "build": "v1", "side": "baseline", "waves": 1},
    ]
    assert wave_arms(waves, {"legs": legs}).tolist() == [
        "baseline (v1)",
        "candidate (v1)",
        "candidate (v1)",
        "baseline (v1)",
    ]
    # Counts that do not add up: the build label, never a guess.
    assert wave_arms(waves, {"legs": legs[:2]}).tolist() == ["v1"] * 4
