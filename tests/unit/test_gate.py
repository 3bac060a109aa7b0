"""The release gate's judgement on hand-made runs: findings, new/known/fixed, reports, exit codes.

No Docker: runs are :class:`ScenarioRun` values, the scenario runner and the
start prober are fakes.
"""

from __future__ import annotations

import contextlib
import json
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chaos.errors import SetupError
from chaos.findings import finding_from
from chaos.gate.builds import Build, kind_of
from chaos.gate.classify import Kind, classify, gate_passes, rate_upper_bound
from chaos.gate.cli import EXIT_ENVIRONMENT, GATE_SCENARIOS
from chaos.gate.documented import Documented, documented_findings, junit_name
from chaos.gate.observe import SCENARIO, FindingKey, exception_type, run_findings
from chaos.gate.report import GateResult, to_json, to_junit, to_markdown
from chaos.gate.run import Repetitions, rep_seeds
from chaos.mutants.probe import Start, StartResult
from chaos.mutants.scenarios import ScenarioRun, TestObs, VerdictObs

CANCEL = "tests.chaos.test_scenario_cancel::test_cancel_racing_completion"
KILL = "tests.chaos.test_scenario_crash::test_kill_replica_owning_runs"


def v(status: str, **evidence: Any) -> VerdictObs:
    return VerdictObs(status, f"{status}: {evidence}", evidence)


def run(**tests: TestObs) -> ScenarioRun:
    names = {"cancel": CANCEL, "kill": KILL}
    return ScenarioRun({names[k]: t for k, t in tests.items()}, 0, 60.0)


GREEN = run(cancel=TestObs("passed", "", {"one_truth": v("pass")}), kill=TestObs("passed"))


def zombies(count: int, status: str = "running") -> ScenarioRun:
    rows = [{"status": status}] * count
    verdict = v("fail", zombie_count=count, rows=rows)
    return run(
        cancel=TestObs("passed"), kill=TestObs("failed", "Invariant", {"no_zombies": verdict})
    )


# -- what one run found --------------------------------------------------------------------
def test_a_failing_verdict_is_a_finding_keyed_by_its_causes() -> None:
    found = run_findings(zombies(2))
    assert list(found) == [FindingKey(KILL, "no_zombies", "status=running")]
    assert found[FindingKey(KILL, "no_zombies", "status=running")].sizes == {
        "zombie_count": 2,
        "len(rows)": 2,
    }


def test_the_same_invariant_with_another_cause_is_another_finding() -> None:
    a, b = run_findings(zombies(2)), run_findings(zombies(2, status="failed"))
    assert set(a).isdisjoint(b)


def test_a_test_failing_without_a_verdict_is_named_by_its_exception_type() -> None:
    gave_up = run(kill=TestObs("error", "chaos.wait.WaitTimeout: timed out after 60.0s on r_1f"))
    assert list(run_findings(gave_up)) == [FindingKey(KILL, SCENARIO, "chaos.wait.WaitTimeout")]
    assert exception_type("assert 7 == 0") == "failure"


def test_passing_skipped_and_xfailed_tests_give_nothing() -> None:
    assert run_findings(GREEN) == {}
    assert run_findings(run(kill=TestObs("skipped", "xfail: finding LC-003"))) == {}


# -- new / known / fixed -------------------------------------------------------------------
def test_a_finding_only_on_the_candidate_is_new_and_fails_the_gate() -> None:
    found = classify([zombies(2), GREEN, GREEN], [GREEN] * 3)
    assert [(f.kind, f.candidate.rate(), f.baseline and f.baseline.rate()) for f in found] == [
        (Kind.NEW, "1/3", "0/3")
    ]
    assert not gate_passes(found)


def test_a_finding_on_both_within_range_is_known_and_passes_unless_strict() -> None:
    found = classify([zombies(2), zombies(3), GREEN], [zombies(3), GREEN, zombies(2)])
    assert [f.kind for f in found] == [Kind.KNOWN]
    assert gate_passes(found)
    assert not gate_passes(found, strict=True)


def test_a_known_finding_whose_rate_rose_past_the_bound_is_new() -> None:
    found = classify([zombies(2)] * 3, [zombies(2), GREEN, GREEN])
    assert found[0].kind is Kind.NEW
    assert "rate 3/3 above the baseline's 1/3" in found[0].why


def test_a_known_finding_that_grew_is_new_and_one_that_shrank_is_not() -> None:
    grown = classify([zombies(5)] * 3, [zombies(2)] * 3)
    assert grown[0].kind is Kind.NEW
    assert grown[0].why == "len(rows) was 5..5, above the baseline's 2..2"
    assert classify([zombies(1)] * 3, [zombies(2)] * 3)[0].kind is Kind.KNOWN


def test_a_size_that_varies_grows_only_when_every_candidate_rep_tops_the_baseline() -> None:
    # One candidate repetition above the baseline's largest is chance, not growth.
    overlapping = classify([zombies(2), zombies(5), zombies(3)], [zombies(2), zombies(4)] * 3)
    assert [f.kind for f in overlapping] == [Kind.KNOWN]
    above = classify([zombies(5), zombies(6), zombies(5)], [zombies(2), zombies(4)] * 3)
    assert [f.kind for f in above] == [Kind.NEW]
    assert above[0].why.startswith("len(rows) was 5..6, above the baseline's 2..4")


def known_zombies(count: int) -> ScenarioRun:
    """A test that passed, excusing a written-up no_zombies failure (chaos_known_verdicts)."""
    verdict = v("fail", zombie_count=count, rows=[{"status": "running"}] * count)
    return run(kill=TestObs("passed", "", {"one_truth": v("pass")}, {"no_zombies": verdict}))


def test_a_known_verdict_excused_by_a_passing_test_is_still_a_finding() -> None:
    assert list(run_findings(known_zombies(2))) == [
        FindingKey(KILL, "no_zombies", "status=running")
    ]
    doc = Documented("LC-002", frozenset({"no_zombies"}), frozenset({KILL}))
    same = classify([known_zombies(2)] * 3, [known_zombies(2)] * 3, [doc])
    assert [(f.kind, f.documented) for f in same] == [(Kind.KNOWN, "LC-002")]
    # Written up or not, a known finding that grew past the baseline fails the gate.
    grown = classify([known_zombies(9)] * 3, [known_zombies(2)] * 3, [doc])
    assert [f.kind for f in grown] == [Kind.NEW]
    assert not gate_passes(grown)


def test_known_verdicts_survive_the_junit_and_the_saved_run(tmp_path: Path) -> None:
    from chaos.mutants.scenarios import observe_junit, run_from_dict, run_to_dict

    evidence = {"zombie_count": 3}
    known = json.dumps(
        [{"invariant": "no_zombies", "status": "fail", "summary": "s", "evidence": evidence}]
    )
    junit = tmp_path / "junit.xml"
    junit.write_text(
        '<testsuite><testcase classname="tests.chaos.test_scenario_crash" '
        'name="test_kill_replica_owning_runs" time="1"><properties>'
        '<property name="chaos_verdicts" value="[]"/>'
        f'<property name="chaos_known_verdicts" value="{known.replace(chr(34), "&quot;")}"/>'
        "</properties></testcase></testsuite>"
    )
    tests = observe_junit(junit)
    assert tests[KILL].known["no_zombies"].evidence == evidence
    saved = ScenarioRun(tests, 0, 1.0)
    assert run_from_dict(json.loads(json.dumps(run_to_dict(saved)))) == saved
    # A run saved before known verdicts were recorded reads back with none.
    old = run_to_dict(saved)
    del old["tests"][KILL]["known"]
    assert run_from_dict(old).tests[KILL].known == {}


def test_a_finding_only_on_the_baseline_is_fixed_and_passes() -> None:
    found = classify([GREEN] * 3, [zombies(2)] * 3)
    assert [f.kind for f in found] == [Kind.FIXED]
    assert gate_passes(found, strict=True)


def test_without_a_baseline_only_written_up_findings_are_known() -> None:
    doc = Documented("LC-009", frozenset({"no_zombies"}), frozenset({KILL}))
    assert classify([zombies(2)], None)[0].kind is Kind.NEW
    found = classify([zombies(2)], None, [doc])
    assert (found[0].kind, found[0].documented) == (Kind.KNOWN, "LC-009")


def test_the_rate_bound_is_clopper_pearson() -> None:
    assert rate_upper_bound(3, 3) == 1.0
    assert rate_upper_bound(1, 3) == pytest.approx(0.9057, abs=1e-4)
    with pytest.raises(ValueError):
        rate_upper_bound(0, 0)


# -- written-up findings -------------------------------------------------------------------
def _write_up(tmp_path: Path, status: str = "open") -> Path:
    path = tmp_path / "LC-004.md"
    path.write_text(
        "---\nid: LC-004\ninvariant: one_truth, no_zombies (the second one)\n"
        "target_version: v1.59.0\nsource_lines: internal/a.go:1\n"
        "reproduction: tests/chaos/test_finding_x.py::test_x\n"
        "scenarios: tests/chaos/test_scenario_cancel.py::test_cancel_racing_completion\n"
        f"status: {status}\n---\n"
    )
    return path


def test_a_write_up_matches_its_invariants_in_its_scenarios_only(tmp_path: Path) -> None:
    (doc,) = documented_findings([finding_from(_write_up(tmp_path))])
    assert doc.matches(FindingKey(CANCEL, "one_truth", "status=cancelled"))
    assert doc.matches(FindingKey(CANCEL + "[p1]", "no_zombies", ""))
    assert not doc.matches(FindingKey(KILL, "one_truth", ""))
    assert not doc.matches(FindingKey(CANCEL, "no_quota_leaks", ""))


def test_a_fixed_write_up_matches_nothing(tmp_path: Path) -> None:
    assert documented_findings([finding_from(_write_up(tmp_path, "fixed"))]) == []


def test_junit_names_of_test_ids() -> None:
    assert junit_name("tests/chaos/test_x.py::test_y[a]") == "tests.chaos.test_x::test_y[a]"


def test_the_repositorys_write_ups_all_parse() -> None:
    root = Path(__file__).resolve().parents[2]
    docs = documented_findings(finding_from(p) for p in (root / "docs/findings").glob("LC-*.md"))
    lc004 = next(d for d in docs if d.id == "LC-004")
    assert CANCEL in lc004.scenarios


# -- builds --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("label", "kind"),
    [
        ("v1.58.0", "version"),
        ("v1.60.0-rc.1", "version"),
        ("image:loomchaos/loomcycle:local", "image"),
        ("registry.example/x:tag", "image"),
        ("bin:/no/such/file", "binary"),
    ],
)
def test_build_labels(label: str, kind: str) -> None:
    assert kind_of(label) == kind


def test_a_label_that_is_nothing_is_a_one_line_error() -> None:
    with pytest.raises(SetupError, match="give a module version"):
        kind_of("latest")


# -- repetitions ---------------------------------------------------------------------------
class FakeRunner:
    def __init__(self, runs: list[ScenarioRun]) -> None:
        self.runs = runs
        self.calls: list[tuple[str, int]] = []

    def run(self, image: str, seed: int, out_dir: Path, stop_early: bool = False) -> ScenarioRun:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.calls.append((image, seed))
        return self.runs.pop(0)


class FakeProber:
    def __init__(self, start: Start) -> None:
        self.start = start

    def probe(self, image: str) -> StartResult:
        return StartResult(self.start, "exited 2: bad config")


CAND, BASE = Build("v2", "img:2", "sha256:2"), Build("v1", "img:1", "sha256:1")


def test_repetitions_interleave_the_builds_with_the_same_seeds(tmp_path: Path) -> None:
    runner = FakeRunner([GREEN] * 4)
    reps = Repetitions(runner, FakeProber(Start.HEALTHY), [7, 8], tmp_path, "ctx", progress=str)
    runs = reps.run([CAND, BASE])
    assert runner.calls == [("img:2", 7), ("img:1", 7), ("img:2", 8), ("img:1", 8)]
    assert [len(r) for r in runs.values()] == [2, 2]


class OverlapRunner:
    """Each run waits until ``width`` runs are in flight at once (or times out): proves
    the sessions really overlap; returns a run named by its seed."""

    def __init__(self, width: int) -> None:
        self.barrier = threading.Barrier(width, timeout=10.0)
        self.calls: list[tuple[str, int]] = []
        self.lock = threading.Lock()

    def run(self, image: str, seed: int, out_dir: Path, stop_early: bool = False) -> ScenarioRun:
        out_dir.mkdir(parents=True, exist_ok=True)
        with self.lock:
            self.calls.append((image, seed))
        self.barrier.wait()
        return ScenarioRun({f"t{seed}": TestObs("passed")}, 0, float(seed))


def test_jobs_run_sessions_side_by_side_and_keep_the_order(tmp_path: Path) -> None:
    held: list[str] = []

    @contextlib.contextmanager
    def lock() -> Iterator[None]:
        held.append("take")
        yield
        held.append("give")

    runner = OverlapRunner(width=2)
    reps = Repetitions(
        runner, FakeProber(Start.HEALTHY), [7, 8], tmp_path, "ctx", lock=lock, progress=str, jobs=2
    )
    runs = reps.run([CAND, BASE])
    # Two at a time (the barrier of two would time out otherwise), seeds kept per build.
    assert sorted(runner.calls) == sorted([("img:2", 7), ("img:1", 7), ("img:2", 8), ("img:1", 8)])
    assert [r.seconds for r in runs["v2"]] == [7.0, 8.0]
    assert [r.seconds for r in runs["v1"]] == [7.0, 8.0]
    assert held == ["take", "give"]  # the Docker lock once around all of them


def test_an_environment_failure_side_by_side_stops_the_gate(tmp_path: Path) -> None:
    empty = ScenarioRun({}, 4, 1.0)
    reps = Repetitions(
        FakeRunner([empty, GREEN, GREEN, GREEN]),
        FakeProber(Start.HEALTHY),
        [7, 8],
        tmp_path,
        "c",
        jobs=2,
    )
    with pytest.raises(SetupError, match="pytest wrote no results"):
        reps.run([CAND, BASE])


def test_a_saved_run_is_reused_only_for_the_same_image_seed_and_context(tmp_path: Path) -> None:
    Repetitions(FakeRunner([zombies(2)]), FakeProber(Start.HEALTHY), [7], tmp_path, "c").one(
        CAND, 1, 7
    )
    again = Repetitions(FakeRunner([]), FakeProber(Start.HEALTHY), [7], tmp_path, "c", reuse=True)
    assert again.one(CAND, 1, 7) == zombies(2)
    other = Repetitions(
        FakeRunner([GREEN]), FakeProber(Start.HEALTHY), [7], tmp_path, "other", reuse=True
    )
    assert other.one(CAND, 1, 7) == GREEN


def test_a_build_that_never_gets_healthy_is_an_environment_failure(tmp_path: Path) -> None:
    dead = run(kill=TestObs("error", "cluster not ready"))
    reps = Repetitions(FakeRunner([dead]), FakeProber(Start.EXITED), [7], tmp_path, "c")
    with pytest.raises(SetupError, match="v2 never got healthy: exited 2"):
        reps.one(CAND, 1, 7)


def test_a_run_without_results_is_an_environment_failure(tmp_path: Path) -> None:
    empty = ScenarioRun({}, 4, 1.0)
    reps = Repetitions(FakeRunner([empty]), FakeProber(Start.HEALTHY), [7], tmp_path, "c")
    with pytest.raises(SetupError, match="pytest wrote no results"):
        reps.one(CAND, 1, 7)


def test_rep_seeds_start_with_the_given_seed_and_differ() -> None:
    seeds = rep_seeds(11, 3)
    assert seeds[0] == 11 and len(set(seeds)) == 3
    assert rep_seeds(11, 3) == seeds


# -- reports agree with the exit code ------------------------------------------------------
def _result(cand: list[ScenarioRun], base: list[ScenarioRun], strict: bool = False) -> GateResult:
    found = classify(cand, base)
    return GateResult(
        CAND,
        BASE,
        [1, 2, 3],
        GATE_SCENARIOS,
        found,
        {"v2": cand, "v1": base},
        gate_passes(found, strict),
        strict,
        "loomchaos gate --candidate v2 --baseline v1",
        1.0,
    )


def test_junit_json_and_markdown_say_fail_when_a_finding_is_new() -> None:
    result = _result([zombies(2), GREEN, GREEN], [GREEN] * 3)
    suite = ET.fromstring(to_junit(result))
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["verdict"] == "fail" and props["candidate_image_id"] == "sha256:2"
    failed = {c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None}
    assert failed == {"test_kill_replica_owning_runs", "verdict"}
    assert json.loads(to_json(result))["findings"][0]["kind"] == "new"
    assert to_markdown(result).rstrip().endswith("gate FAIL: v2: 1 new, 0 known, 0 fixed")


def test_junit_says_pass_with_a_known_finding_and_fail_when_strict() -> None:
    both = [zombies(2)] * 3
    loose, strict = _result(both, both), _result(both, both, strict=True)
    assert ET.fromstring(to_junit(loose)).get("failures") == "0"
    assert ET.fromstring(to_junit(strict)).get("failures") == "2"


def test_exit_code_for_the_environment_differs_from_a_finding() -> None:
    assert EXIT_ENVIRONMENT not in (0, 1, 2)


# -- the command line ------------------------------------------------------------------------
def test_a_wrong_build_label_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    from chaos.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["gate", "--candidate", "latest"])
    assert exc.value.code == 2
    assert "give a module version" in capsys.readouterr().err


def test_outside_a_checkout_the_gate_fails_in_one_line_before_docker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from chaos.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["gate", "--candidate", "v1.59.0"]) == EXIT_ENVIRONMENT
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "tests/chaos/ is not here" in err


def test_a_missing_target_config_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from chaos.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["gate", "--candidate", "v1.59.0", "--target-config", str(tmp_path / "no.yaml")])
    assert exc.value.code == 2
    assert "No such file" in capsys.readouterr().err


def test_the_deployed_config_reaches_the_runs_and_its_secrets_leave_them(tmp_path: Path) -> None:
    from chaos.gate.deployed import Deployed

    cfg = tmp_path / "deployed.yaml"
    cfg.write_text("env:\n  LOOMCYCLE_AUTH_TOKEN: tok-123456\n")
    deployed = Deployed.of(str(cfg))
    assert deployed.env == {"LOOMCHAOS_TARGET_CONFIG": str(cfg)}
    assert Deployed.of(None).digest == "" and deployed.digest
    (tmp_path / "run").mkdir()
    log = tmp_path / "run" / "pytest.log"
    log.write_text("Authorization: Bearer tok-123456\n")
    assert deployed.redact_folder(tmp_path / "run") == [log]
    assert "tok-123456" not in log.read_text()


def test_every_gate_and_full_scenario_names_a_test_file_that_exists() -> None:
    from chaos.gate.cli import FULL_SCENARIOS

    root = Path(__file__).resolve().parents[2]
    files = {
        s.split("::", 1)[0]
        for s in (*GATE_SCENARIOS, *FULL_SCENARIOS)
        if s.endswith(".py") or "::" in s
    }
    assert files and all((root / f).is_file() for f in files), sorted(
        f for f in files if not (root / f).is_file()
    )
