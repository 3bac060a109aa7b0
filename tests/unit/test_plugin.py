"""The plugin's contract, exercised through pytester (an inner pytest run)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from inner_run import run_inner

from chaos.seeds import derive_test_seed

pytest_plugins = ["pytester"]

#: The inner runs have no ini file: set what pytest-asyncio would otherwise warn about.
QUIET = ("-o", "asyncio_default_fixture_loop_scope=function")

SCENARIO = """
import pytest
from chaos.verdict import Verdict

@pytest.mark.chaos
def test_violates(chaos_history, chaos_verdicts, chaos_seed):
    chaos_history.note("hello", seed=chaos_seed)
    inj = chaos_history.fault("inject", "kill", "r2")
    chaos_history.fault("healed", "kill", "r2", inj)
    chaos_verdicts([Verdict.failed("no_zombies", "run r_1 still running", run_ids=["r_1"])])

def test_fast():
    pass
"""


def test_failure_names_invariant_seed_and_writes_history_and_junit(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_scenario=SCENARIO)
    result = run_inner(
        pytester, "--chaos-seed=1234", "--junitxml=out.xml", "-o", "junit_family=xunit1"
    )
    result.assert_outcomes(passed=1, failed=1)
    test_seed = derive_test_seed(1234, "test_scenario.py::test_violates")
    # The failure names the SESSION seed (what --chaos-seed takes) and the test id,
    # never the test's own seed as if --chaos-seed took it.
    replay = (
        f"seed: session 1234, test {test_seed} "
        "(replay: pytest 'test_scenario.py::test_violates' -m chaos --chaos-seed=1234)"
    )
    result.stdout.fnmatch_lines(["*seed=1234*", "*no_zombies*run r_1 still running*", replay])
    assert f"--chaos-seed={test_seed}" not in result.stdout.str()
    histories = list((pytester.path / "art").rglob("history.jsonl"))
    assert len(histories) == 1 and "hello" in histories[0].read_text()
    head = json.loads(histories[0].read_text().splitlines()[0])
    assert head["seed"] == test_seed and head["meta"]["session_seed"] == 1234
    root = ET.parse(pytester.path / "out.xml").getroot()
    suite_props = {p.get("name"): p.get("value") for p in root.iterfind("testsuite/properties/")}
    assert suite_props["chaos_seed"] == "1234" and suite_props["chaos_session"]
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["chaos_seed"] == "1234" and props["chaos_test_seed"] == str(test_seed)
    assert props["chaos_replay"].endswith("-m chaos --chaos-seed=1234")
    assert "no_zombies" in props["chaos_verdicts"]
    assert "kill@r2" in props["chaos_fault_timeline"]


def test_strict_markers_and_chaos_timeout_applied(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_t="""
import pytest
@pytest.mark.chaos
def test_c(request):
    assert request.node.get_closest_marker("timeout").args == (77.0,)
"""
    )
    result = pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "--chaos-skip-provision",
        "-o",
        "asyncio_default_fixture_loop_scope=function",
        "--strict-markers",
        "--chaos-test-timeout=77",
    )
    result.assert_outcomes(passed=1)


def test_session_deadline_stops_chaos_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_d="""
import pytest
@pytest.mark.chaos
def test_a():
    pass
"""
    )
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--chaos-skip-provision", *QUIET, "--chaos-session-deadline=-1"
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*session deadline passed*"])


def test_same_seed_same_test_seed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_s="""
def test_s(chaos_seed, pytestconfig):
    with open("seeds.txt", "a") as fp:
        fp.write(f"{chaos_seed}\\n")
"""
    )
    for _ in range(2):
        pytester.runpytest(
            "-p", "no:cacheprovider", "--chaos-skip-provision", *QUIET, "--chaos-seed=9"
        ).assert_outcomes(passed=1)
    pytester.runpytest(
        "-p", "no:cacheprovider", "--chaos-skip-provision", *QUIET, "--chaos-seed=10"
    ).assert_outcomes(passed=1)
    a, b, c = (pytester.path / "seeds.txt").read_text().split()
    assert a == b != c


def test_streams_differ_and_hypothesis_gets_its_own(pytester: pytest.Pytester) -> None:
    """chaos_rng, the driver's default stream and Hypothesis's seed are three streams of
    one seed, not the same number handed to three consumers."""
    pytester.makepyfile(
        test_r="""
import random
from chaos.seeds import FAULTS, HYPOTHESIS, WORKLOAD, stream, stream_seed

def test_r(chaos_seed, chaos_rng, pytestconfig):
    assert chaos_rng.random() == stream(chaos_seed, FAULTS).random()
    assert chaos_rng.random() != random.Random(chaos_seed).random()
    assert stream(chaos_seed, WORKLOAD).random() != stream(chaos_seed, FAULTS).random()
    assert pytestconfig.option.hypothesis_seed == stream_seed(5, HYPOTHESIS)
"""
    )
    pytester.runpytest(
        "-p", "no:cacheprovider", "--chaos-skip-provision", *QUIET, "--chaos-seed=5"
    ).assert_outcomes(passed=1)


def test_failure_without_chaos_marker_replays_without_m_chaos(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_plain="""
def test_p(chaos_history):
    assert False
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider", *QUIET, "--chaos-seed=77")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*(replay: pytest 'test_plain.py::test_p' --chaos-seed=77)"])


EVIDENCE = """
import pytest
from chaos.findings import known_finding
from chaos.verdict import InvariantViolation, Verdict

@pytest.mark.chaos
@known_finding("LC-003", raises=InvariantViolation)
def test_known(chaos_history, chaos_verdicts):
    chaos_history.note("known finding reproduced")
    chaos_verdicts([Verdict.failed("no_quota_leaks", "u1 holds 1 slot", run_ids=["r_1"])])

@pytest.mark.chaos
def test_clean(chaos_history):
    chaos_history.note("nothing to keep")
"""


def test_a_known_findings_xfail_keeps_its_history_and_a_pass_does_not(
    pytester: pytest.Pytester,
) -> None:
    # The replay hit rate of a finding is measured from its xfail's artifact folder.
    pytester.makepyfile(test_evidence=EVIDENCE)
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--chaos-skip-provision", *QUIET,
        f"--chaos-artifacts={pytester.path / 'art'}",
    )  # fmt: skip
    result.assert_outcomes(passed=1, xfailed=1)
    kept = sorted(p.parent.name for p in (pytester.path / "art").rglob("history.jsonl"))
    assert len(kept) == 1 and "test_known" in kept[0]
    assert (
        "known finding reproduced"
        in next((pytester.path / "art").rglob("history.jsonl")).read_text()
    )
    assert list((pytester.path / "art").rglob("verdicts.txt"))


NO_HISTORY = """
import pytest
from chaos.findings import known_finding

@pytest.mark.chaos
@known_finding("LC-001", raises=AssertionError)
def test_contract_only():
    assert False, "the 404 body is not JSON"

@pytest.mark.chaos
def test_fails_without_history():
    assert False

@pytest.mark.chaos
def test_passes_without_history():
    pass
"""


def test_a_chaos_test_without_a_history_still_leaves_what_replay_reads(
    pytester: pytest.Pytester,
) -> None:
    from chaos.replay import plan_from

    pytester.makepyfile(test_nohist=NO_HISTORY)
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--chaos-skip-provision", *QUIET, "--chaos-seed=77",
        f"--chaos-artifacts={pytester.path / 'art'}",
    )  # fmt: skip
    result.assert_outcomes(passed=1, failed=1, xfailed=1)
    folders = sorted(p.parent for p in (pytester.path / "art").rglob("history.jsonl"))
    assert [f.name for f in folders] == [
        "test_nohist.py_test_contract_only",
        "test_nohist.py_test_fails_without_history",
    ]
    plan = plan_from(folders[0])
    assert plan.replay.nodeid == "test_nohist.py::test_contract_only"
    assert plan.replay.session_seed == 77
