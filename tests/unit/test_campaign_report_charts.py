"""Every campaign chart, drawn from the hand-made fixtures and inspected as a Figure (not saved)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from chaos.campaign.report import charts_runtime, charts_waves
from chaos.campaign.report.analysis import Analysis, analyse
from chaos.campaign.report.data import CampaignData
from chaos.campaign.report.figures import rolling_mean
from chaos.campaign.report.load import load_campaign

FIXTURES = Path(__file__).parent / "data" / "campaign"


def _analysed(name: str) -> tuple[CampaignData, Analysis]:
    data = load_campaign(FIXTURES / name)
    return data, analyse(data)


@pytest.fixture(scope="module")
def soak() -> tuple[CampaignData, Analysis]:
    return _analysed("soak")


@pytest.fixture(scope="module")
def compare() -> tuple[CampaignData, Analysis]:
    return _analysed("compare")


@pytest.fixture(scope="module")
def ramp() -> tuple[CampaignData, Analysis]:
    return _analysed("ramp")


def _plot_axes(fig: Figure) -> list[Axes]:
    """The figure's axes that carry an x label (twin axes share their host's)."""
    return [ax for ax in fig.axes if ax.get_xlabel()]


def _labels(ax: Axes) -> list[str]:
    return [str(line.get_label()) for line in ax.get_lines()]


def test_wall_time_has_one_series_per_phase_and_marks_the_step(
    soak: tuple[CampaignData, Analysis],
) -> None:
    data, analysis = soak
    fig = charts_waves.wall_time(data, analysis)
    (ax,) = _plot_axes(fig)
    assert fig.get_suptitle().startswith("Wave wall time")
    assert ax.get_xlabel() == "minutes since campaign start"
    assert ax.get_ylabel() == "wave wall time (s)"
    p1, p2, step_line = ax.get_lines()
    assert (p1.get_label(), p2.get_label()) == ("p1", "p2")
    assert len(p1.get_xdata()) == len(p2.get_ydata()) == 12
    assert list(p2.get_ydata())[6] == pytest.approx(25.9)  # 20 + 6 s step - 0.1 noise, wave 19
    assert list(step_line.get_xdata()) == [4.0, 4.0]  # started_at 240 s
    assert [t.get_text() for t in ax.texts] == ["+6.0 s"]


def test_completion_plots_percent_and_silent_regressions_on_two_axes(
    soak: tuple[CampaignData, Analysis],
) -> None:
    data, _ = soak
    fig = charts_waves.completion(data)
    left, right = fig.axes
    assert left.get_ylabel() == "completed (% of circuits)"
    assert right.get_ylabel() == "silent regressions per wave"
    (done,) = left.get_lines()
    assert min(done.get_ydata()) == pytest.approx(95.0)  # 19 of 20 in wave 5
    (silent,) = right.collections
    assert [(a[0], a[1], b[1]) for a, b in silent.get_segments()] == [
        pytest.approx((317.9 / 60, 0.0, 1.0))  # one silent regression: wave 22, at 317.9 s
    ]


def test_latency_draws_the_four_percentiles_in_seconds(
    soak: tuple[CampaignData, Analysis],
) -> None:
    data, _ = soak
    (ax,) = charts_waves.latency(data).axes
    assert _labels(ax) == ["p50", "p95", "p99", "max"]
    assert ax.get_ylabel() == "latency (s)"
    assert ax.get_lines()[0].get_ydata()[0] == pytest.approx(2.5)


def test_the_ramp_chart_marks_both_knees(ramp: tuple[CampaignData, Analysis]) -> None:
    data, analysis = ramp
    fig = charts_waves.ramp(data, analysis)
    assert fig is not None
    left, right = fig.axes
    assert left.get_xlabel() == "scale (circuits per wave)"
    assert (left.get_ylabel(), right.get_ylabel()) == ("runs per second", "p99 latency (s)")
    knees = {line.get_label(): line.get_xdata()[0] for line in left.get_lines()[1:]}
    assert knees == {"knee runs_per_s": 6000.0, "knee p99_ms": 6000.0}
    assert list(left.get_lines()[0].get_xdata()) == [1000.0 * k for k in range(1, 9)]


def test_compare_charts_put_the_builds_side_by_side(
    compare: tuple[CampaignData, Analysis],
) -> None:
    data, analysis = compare
    assert data.arms == ["v1.58.0", "v1.59.0"]
    fig = charts_waves.wall_time(data, analysis)
    axes = _plot_axes(fig)
    assert [ax.get_title() for ax in axes] == ["v1.58.0", "v1.59.0"]
    assert axes[0].get_shared_y_axes().joined(axes[0], axes[1])
    memory = charts_runtime.memory(data)
    assert memory is not None and len(memory.axes) == 4  # RSS and goroutines, per build
    pair = charts_waves.compare(data, analysis)
    assert pair is not None
    reps, diffs = pair.axes
    assert _labels(reps) == ["v1.58.0", "v1.59.0"]
    ticks = [t.get_text() for t in diffs.get_yticklabels()]
    assert ticks[0].startswith("wall_s") and ticks[1].startswith("ms_per_circuit")
    assert charts_waves.compare(*_soak_like(data, analysis)) is None


def _soak_like(data: CampaignData, analysis: Analysis) -> tuple[CampaignData, Analysis]:
    one = CampaignData(
        data.out_dir, data.summary, data.waves, data.samples, data.cancels, data.reap, arms=["x"]
    )
    return one, analysis


def test_memory_has_raw_samples_and_a_rolling_mean_per_replica(
    soak: tuple[CampaignData, Analysis],
) -> None:
    data, _ = soak
    fig = charts_runtime.memory(data)
    assert fig is not None
    rss, goroutines = fig.axes
    assert (rss.get_ylabel(), goroutines.get_ylabel()) == ("RSS (MB)", "goroutines")
    labels = _labels(rss)
    assert [x for x in labels if "rolling mean" in x] == [
        "r1 (rolling mean of 5)",
        "r2 (rolling mean of 5)",
    ]
    raw, smooth = rss.get_lines()[0], rss.get_lines()[1]
    assert len(raw.get_xdata()) == len(smooth.get_xdata()) == 132


def test_active_runs_has_a_line_per_replica_and_the_queue_dashed(
    soak: tuple[CampaignData, Analysis],
) -> None:
    data, _ = soak
    fig = charts_runtime.active_runs(data)
    assert fig is not None
    (ax,) = fig.axes
    solid = [line for line in ax.get_lines() if line.get_linestyle() == "-"]
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert [line.get_label() for line in solid] == ["r1", "r2"]
    assert len(dashed) == 2


def test_load_split_bars_and_title_carry_the_spread(soak: tuple[CampaignData, Analysis]) -> None:
    _, analysis = soak
    fig = charts_runtime.load_split(analysis)
    assert fig is not None
    (ax,) = fig.axes
    assert "max share 50.6%" in ax.get_title() and "spread 2.40%" in ax.get_title()
    assert [bar.get_height() for bar in ax.patches] == [1012.0, 988.0]
    assert ax.get_lines()[0].get_ydata()[0] == 1000.0  # the even share


def test_cancel_acks_histogram_counts_every_cancel_by_outcome(
    soak: tuple[CampaignData, Analysis],
) -> None:
    data, _ = soak
    fig = charts_runtime.cancel_acks(data)
    assert fig is not None
    (ax,) = fig.axes
    assert ax.get_xlabel() == "ack latency (ms)"
    stacked_top = max(bar.get_y() + bar.get_height() for bar in ax.patches)
    assert stacked_top <= 10
    assert sum(bar.get_height() for bar in ax.patches) == 10
    p50, p99 = (str(line.get_label()) for line in ax.get_lines())
    assert p50.startswith("p50 ") and p99.startswith("p99 ")


def test_reap_timeline_rows_per_event_and_cumulative_reaps(
    soak: tuple[CampaignData, Analysis],
) -> None:
    data, _ = soak
    fig = charts_runtime.reap_timeline(data)
    assert fig is not None
    events, cumulative = fig.axes
    assert [t.get_text() for t in events.get_yticklabels()] == ["kill", "reaped", "ended"]
    (steps,) = cumulative.get_lines()
    assert list(steps.get_ydata()) == [1, 2, 3, 4]


def test_absent_files_give_no_chart(ramp: tuple[CampaignData, Analysis]) -> None:
    data, analysis = ramp
    assert charts_runtime.memory(data) is None
    assert charts_runtime.active_runs(data) is None
    assert charts_runtime.cancel_acks(data) is None
    assert charts_runtime.reap_timeline(data) is None
    assert charts_waves.compare(data, analysis) is None


def test_rolling_mean_skips_gaps() -> None:
    values = np.array([1.0, np.nan, 3.0, 5.0])
    assert rolling_mean(values, 2).tolist() == [1.0, 1.0, 3.0, 4.0]
