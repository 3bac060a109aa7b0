"""Host clock steps: the pure detector, and what the plugin does with a chaos test that
fails while the wall clock steps (an inner pytest run; the step is recorded by hand)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from inner_run import run_inner

from chaos.hostclock import ClockStep, ClockWatch, HostClockStepped, steps_in

pytest_plugins = ["pytester"]


def test_a_step_is_the_wall_clock_moving_more_than_the_monotonic_one() -> None:
    # (mono, wall): slewing and a stalled process move both clocks alike: no step.
    steady = [(0.0, 100.0), (0.25, 100.2505), (10.0, 110.0), (10.25, 110.25)]
    assert steps_in(steady) == []
    # The evidence of the CI run: 1.99 s of monotonic time, 32.76 s of wall time.
    jumped = [(0.0, 100.0), (1.99, 132.759)]
    (step,) = steps_in(jumped)
    assert step.seconds == pytest.approx(30.769) and step.mono == 1.99
    # Stepped back, and the threshold's edge.
    assert steps_in([(0.0, 100.0), (1.0, 99.0)])[0].seconds == pytest.approx(-2.0)
    assert steps_in([(0.0, 100.0), (1.0, 102.0)]) == []  # exactly 1 s gained: not a step
    assert len(steps_in([(0.0, 100.0), (1.0, 102.01)])) == 1


def test_the_watch_keeps_steps_after_a_moment() -> None:
    watch = ClockWatch()
    watch.sample()
    assert watch.steps_since(0.0) == []
    watch.record(ClockStep(wall=1e9, mono=50.0, seconds=31.0))
    assert [s.seconds for s in watch.steps_since(49.0)] == [31.0]
    assert watch.steps_since(50.0) == []


def test_the_error_says_what_stepped_and_why_it_matters() -> None:
    text = str(HostClockStepped([ClockStep(wall=0.0, mono=1.0, seconds=30.8)]))
    assert "+30.8 s at 00:00:00 UTC" in text and "staleness on wall time" in text


INNER = """
import pytest, time
from chaos.hostclock import ClockStep
from chaos.plugin import CLOCK_PLUGIN

def step(request):
    watch = request.config.pluginmanager.get_plugin(CLOCK_PLUGIN)._watch()
    watch.record(ClockStep(wall=time.time(), mono=time.monotonic(), seconds=31.0))

@pytest.mark.chaos
def test_stepped_once(request, tmp_path_factory):
    marker = tmp_path_factory.getbasetemp() / "first"
    if not marker.exists():
        marker.write_text("x")
        step(request)
        assert False, "r1 reaped while alive"

@pytest.mark.chaos
def test_fails_without_a_step():
    assert False, "a real failure"

@pytest.mark.chaos
def test_stepped_every_time(request):
    step(request)
    assert False, "r2 reaped while alive"

@pytest.mark.chaos
@pytest.mark.xfail(strict=True, raises=AssertionError)
def test_finding(request):
    step(request)
    assert False, "a finding's reduction"
"""


def test_a_failure_with_a_step_runs_once_more_and_others_do_not(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_inner=INNER)
    result = run_inner(pytester, "--junitxml=out.xml")
    # Stepped once: failed, rerun, passed.  No step: failed at once.  Stepped each time:
    # failed after its one rerun, the original failure chained.  The xfail: untouched.
    result.assert_outcomes(passed=1, failed=2, xfailed=1)
    assert result.parseoutcomes().get("rerun") == 2
    out = result.stdout.str()
    assert "HostClockStepped" in out and "r2 reaped while alive" in out
    root = ET.parse(pytester.path / "out.xml").getroot()
    cases = {c.get("name"): c for c in root.iter("testcase")}
    failure = cases["test_fails_without_a_step"].find("failure")
    assert failure is not None and "HostClockStepped" not in (failure.get("message") or "")
    assert cases["test_stepped_once"].find("failure") is None
    props = {
        (c.get("name"), p.get("name")): p.get("value")
        for c in root.iter("testcase")
        for p in c.iter("property")
    }
    steps = json.loads(props[("test_stepped_once", "host_clock_steps")])
    assert steps[0]["seconds"] == 31.0


def test_without_rerunfailures_a_stepped_failure_is_reported_and_not_rerun(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_inner=INNER)
    result = run_inner(pytester, "-p", "no:rerunfailures", "-o", "strict_markers=true")
    result.assert_outcomes(passed=0, failed=3, xfailed=1)
    assert "rerun" not in result.parseoutcomes()
    assert "HostClockStepped" in result.stdout.str()
