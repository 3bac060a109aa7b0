"""killed / survived against the controls' range, on hand-made runs (no Docker, no Go)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chaos.mutants.classify import Fate, causes, classify, evidence_difference, sizes
from chaos.mutants.scenarios import (
    ScenarioRun,
    TestObs,
    VerdictObs,
    observe_junit,
    run_from_dict,
    run_to_dict,
    verdicts_by_invariant,
)

KILL = "tests.chaos.test_scenario_crash::test_kill_replica_owning_runs"
SMOKE = "tests.chaos.test_smoke::test_smoke"


def v(status: str, **evidence: Any) -> VerdictObs:
    return VerdictObs(status, f"{status} summary", evidence)


def run(**tests: TestObs) -> ScenarioRun:
    names = {"kill": KILL, "smoke": SMOKE}
    return ScenarioRun({names[k]: t for k, t in tests.items()}, 0, 1.0)


def ok(**verdicts: VerdictObs) -> TestObs:
    return TestObs("passed", "", verdicts)


def bad(**verdicts: VerdictObs) -> TestObs:
    return TestObs("failed", "InvariantViolation", verdicts)


GREEN = run(smoke=ok(no_zombies=v("pass")), kill=ok(no_quota_leaks=v("pass")))


def test_an_invariant_failing_only_on_the_mutant_kills_it() -> None:
    mutant = run(smoke=ok(no_zombies=v("pass")), kill=bad(no_quota_leaks=v("fail", count=2)))
    result = classify(mutant, [GREEN, GREEN])
    assert result.fate is Fate.KILLED
    assert result.reasons == (f"{KILL} no_quota_leaks: fails only on the mutant: fail summary",)


def test_the_same_red_as_the_control_survives() -> None:
    red = run(
        smoke=ok(no_zombies=v("pass")),
        kill=bad(no_zombies=v("fail", zombie_count=2, zombies=[{"stop_reason": None}] * 2)),
    )
    wider = run(
        smoke=ok(no_zombies=v("pass")),
        kill=bad(no_zombies=v("fail", zombie_count=4, zombies=[{"stop_reason": None}] * 4)),
    )
    mutant = run(
        smoke=ok(no_zombies=v("pass")),
        kill=bad(no_zombies=v("fail", zombie_count=3, zombies=[{"stop_reason": None}] * 3)),
    )
    assert classify(mutant, [red, wider]).fate is Fate.SURVIVED


def test_the_same_invariant_failing_with_other_evidence_kills() -> None:
    control = run(kill=bad(no_zombies=v("fail", zombie_count=2, rows=[{"status": "running"}])))
    bigger = run(kill=bad(no_zombies=v("fail", zombie_count=9, rows=[{"status": "running"}])))
    other_cause = run(kill=bad(no_zombies=v("fail", zombie_count=2, rows=[{"status": "failed"}])))
    assert "outside the controls' range [2, 2]" in classify(bigger, [control]).reasons[0]
    assert (
        "cause never seen on a control: status=failed"
        in classify(other_cause, [control]).reasons[0]
    )


def test_a_test_the_controls_pass_failing_without_a_verdict_kills() -> None:
    never_ready = run(smoke=TestObs("error", "cluster not ready: /healthz lists r1 only"))
    result = classify(never_ready, [GREEN])
    assert result.fate is Fate.KILLED
    assert any("error on the mutant only" in r for r in result.reasons)
    assert any("missing from the mutant's run" in r for r in result.reasons)


def test_after_maxfail_a_test_that_never_ran_is_no_evidence() -> None:
    stopped = ScenarioRun({SMOKE: bad(no_zombies=v("fail"))}, 1, 1.0, stopped_early=True)
    result = classify(stopped, [GREEN])
    assert result.reasons == (f"{SMOKE} no_zombies: fails only on the mutant: fail summary",)


def test_noise_the_controls_already_show_is_no_kill() -> None:
    flaky = run(smoke=TestObs("error", "FaultNotProven"), kill=ok(no_quota_leaks=v("pass")))
    same = run(smoke=TestObs("error", "FaultNotProven"), kill=ok(no_quota_leaks=v("pass")))
    assert classify(same, [GREEN, flaky]).fate is Fate.SURVIVED
    vacuous = run(smoke=ok(no_zombies=v("vacuous")), kill=ok(no_quota_leaks=v("pass")))
    assert classify(vacuous, [GREEN]).fate is Fate.SURVIVED


def test_evidence_reading_keeps_causes_and_counts_not_ids_or_times() -> None:
    evidence = {
        "zombie_count": 2,
        "samples": 40,
        "zombies": [{"run_id": "r-1", "status": "running", "started_at": "2026-12-01"}],
        "nested": {"stop_reason": "replica_died", "n": 3, "ok": True},
    }
    assert causes(evidence) == {"status=running", "stop_reason=replica_died"}
    assert sizes(evidence) == {"zombie_count": 2, "len(zombies)": 1, "nested.n": 3}
    assert evidence_difference(v("fail", **evidence), [v("fail", **evidence)]) is None


def test_repeated_invariants_in_one_test_are_kept_apart() -> None:
    raw = [
        {"invariant": "no_zombies", "status": "pass", "evidence": {}},
        {"invariant": "no_zombies", "status": "fail", "summary": "later", "evidence": None},
    ]
    got = verdicts_by_invariant(raw)
    assert list(got) == ["no_zombies", "no_zombies#2"]
    assert got["no_zombies#2"] == VerdictObs("fail", "later", {})


JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest">
<properties><property name="chaos_seed" value="7"/></properties>
<testcase classname="tests.chaos.test_smoke" name="test_smoke" time="8.1">
<properties><property name="chaos_verdicts" value='{verdicts}'/></properties>
<failure message="InvariantViolation: no_quota_leaks">...</failure>
</testcase>
<testcase classname="tests.chaos.test_scenario_cancel" name="test_storm" time="2.0">
<error message="cluster not ready">...</error>
</testcase>
</testsuite></testsuites>
"""


def test_a_junit_file_reads_back_as_outcomes_and_verdicts(tmp_path: Path) -> None:
    verdicts = json.dumps(
        [{"invariant": "no_quota_leaks", "status": "fail", "summary": "1 slot", "evidence": {}}]
    ).replace("'", "&apos;")
    path = tmp_path / "junit.xml"
    path.write_text(JUNIT.format(verdicts=verdicts))
    tests = observe_junit(path)
    assert tests[SMOKE].outcome == "failed"
    assert tests[SMOKE].verdicts == {"no_quota_leaks": VerdictObs("fail", "1 slot", {})}
    storm = tests["tests.chaos.test_scenario_cancel::test_storm"]
    assert (storm.outcome, storm.message, dict(storm.verdicts)) == (
        "error",
        "cluster not ready",
        {},
    )
    assert observe_junit(tmp_path / "missing.xml") == {}
    again = run_from_dict(json.loads(json.dumps(run_to_dict(ScenarioRun(tests, 1, 3.5, "cmd")))))
    assert again == ScenarioRun(tests, 1, 3.5, "cmd")
