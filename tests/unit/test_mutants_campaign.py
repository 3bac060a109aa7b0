"""The campaign loop and its report with a fake builder, images, prober and runner."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from chaos.errors import SetupError
from chaos.mutants.build import BuildResult
from chaos.mutants.campaign import Campaign
from chaos.mutants.classify import Fate
from chaos.mutants.cli import exit_code
from chaos.mutants.patches import Patch, parse_patch
from chaos.mutants.probe import Start, StartResult
from chaos.mutants.report import json_report, markdown_report, markdown_table, score
from chaos.mutants.scenarios import ScenarioRun, TestObs, VerdictObs
from chaos.mutants.workspace import Workspace

TEST = "tests.chaos.test_smoke::test_smoke"


def _diff(line: str) -> str:
    return f"--- a/main.go\n+++ b/main.go\n@@ -1,2 +1,2 @@\n package main\n-// ok\n+// {line}\n"


def _patches(folder: Path, *names: str) -> list[Patch]:
    out = []
    for name in names:
        path = folder / f"{name}.patch"
        path.write_text(f"Description: {name} bug\nArea: test\n\n{_diff(name)}")
        out.append(parse_patch(path))
    return out


@dataclass
class FakeBuilder:
    """'Builds' by copying main.go; a tree marked ``syntax-error`` fails, like go would."""

    built: list[str] = field(default_factory=list)

    def build(self, tree: Path, out: Path) -> BuildResult:
        source = (tree / "main.go").read_text()
        self.built.append(source.splitlines()[-1])
        if "syntax-error" in source:
            return BuildResult(False, 0.1, None, "main.go:2: syntax error")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(source)
        return BuildResult(True, 0.1, out)


@dataclass
class FakeImages:
    live: dict[str, str] = field(default_factory=dict)
    made: int = 0

    def make(self, binary: Path, name: str) -> str:
        tag = f"mutants/x:{name}-{self.made}"
        self.made += 1
        self.live[tag] = binary.read_text()
        return tag

    def remove(self, tag: str) -> None:
        del self.live[tag]


@dataclass
class FakeProber:
    images: FakeImages

    def probe(self, image: str) -> StartResult:
        source = self.images.live[image]
        if "exits" in source:
            return StartResult(Start.EXITED, "exit code 2: panic")
        if "hangs" in source:
            return StartResult(Start.NEVER_HEALTHY, "timeout")
        return StartResult(Start.HEALTHY)


@dataclass
class FakeRunner:
    """The scenarios: ``leaks`` fails no_quota_leaks, ``exits``/``hangs`` error, the rest pass."""

    images: FakeImages
    runs: int = 0
    stop_early: list[bool] = field(default_factory=list)

    def run(self, image: str, seed: int, out_dir: Path, stop_early: bool = False) -> ScenarioRun:
        self.runs += 1
        self.stop_early.append(stop_early)
        source = self.images.live[image]
        if "exits" in source or "hangs" in source:  # no cluster ever gets ready
            return ScenarioRun({TEST: TestObs("error", "cluster not ready")}, 1, 2.0)
        leaks = "leaks" in source
        verdict = VerdictObs("fail" if leaks else "pass", "leak" if leaks else "fine", {})
        test = TestObs("failed" if leaks else "passed", "", {"no_quota_leaks": verdict})
        return ScenarioRun({TEST: test}, int(leaks), 2.0, f"pytest --chaos-seed={seed}")


@pytest.fixture
def campaign(tmp_path: Path) -> Iterator[Campaign]:
    src = tmp_path / "src"
    src.mkdir()
    (src / "main.go").write_text("package main\n// ok\n")
    images = FakeImages()
    locks: list[str] = []

    @contextlib.contextmanager
    def lock() -> Iterator[None]:
        locks.append("held")
        yield

    ws = Workspace.create(tmp_path / "cache", "s1")
    yield Campaign(
        source=src,
        workspace=ws,
        builder=FakeBuilder(),
        images=images,
        prober=FakeProber(images),
        runner=FakeRunner(images),
        seed=7,
        out_dir=tmp_path / "runs",
        context="v1 smoke",
        controls=2,
        lock=lock,
        progress=lambda line: None,
    )
    ws.remove()


def test_each_patch_gets_its_fate_and_every_image_is_removed(
    campaign: Campaign, tmp_path: Path
) -> None:
    patches = _patches(tmp_path, "leaks", "harmless", "syntax-error", "exits", "hangs")
    results, controls = campaign.run(patches)
    fates = {r.name: r.fate for r in results}
    assert fates == {
        "leaks": Fate.KILLED,
        "harmless": Fate.SURVIVED,
        "syntax-error": Fate.BROKEN,
        "exits": Fate.BROKEN,
        "hangs": Fate.KILLED,
    }
    assert isinstance(campaign.images, FakeImages) and campaign.images.live == {}
    # Two controls (run whole), then every patch but the one that does not build (stop early).
    assert isinstance(campaign.runner, FakeRunner)
    assert campaign.runner.stop_early == [False, False, True, True, True, True]
    assert len(controls) == 2 and controls[0].outcomes == {TEST: "passed"}
    by_name = {r.name: r for r in results}
    assert "build failed: main.go:2: syntax error" in by_name["syntax-error"].reasons[0]
    assert by_name["exits"].start == "exited" and by_name["hangs"].start == "never_healthy"
    assert by_name["leaks"].replay == "pytest --chaos-seed=7"
    assert score(results) == pytest.approx(2 / 3)
    assert exit_code(results, 0.5) == 1  # a broken patch fails the run whatever the score
    assert exit_code([r for r in results if r.fate is not Fate.BROKEN], 0.5) == 0


def test_the_builds_are_the_control_then_one_per_patch(campaign: Campaign, tmp_path: Path) -> None:
    campaign.run(_patches(tmp_path, "leaks", "harmless"))
    assert isinstance(campaign.builder, FakeBuilder)
    assert campaign.builder.built == ["// ok", "// leaks", "// harmless"]


def test_reuse_reads_back_identical_results_and_reruns_changed_ones(
    campaign: Campaign, tmp_path: Path
) -> None:
    first, _ = campaign.run(_patches(tmp_path, "leaks"))
    assert isinstance(campaign.runner, FakeRunner)
    campaign.reuse, campaign.control_runs = True, []
    campaign.runner.runs = 0
    again, _ = campaign.run(_patches(tmp_path, "leaks"))
    assert campaign.runner.runs == 0
    assert again[0].reused and again[0].fate is first[0].fate and again[0].wall_s == first[0].wall_s
    (tmp_path / "leaks.patch").write_text(f"Description: changed\n\n{_diff('leaks again')}")
    changed, _ = campaign.run([parse_patch(tmp_path / "leaks.patch")])
    assert campaign.runner.runs == 1 and not changed[0].reused


def test_a_control_that_does_not_build_stops_the_campaign(
    campaign: Campaign, tmp_path: Path
) -> None:
    (campaign.source / "main.go").write_text("package main\n// syntax-error\n")
    with pytest.raises(SetupError, match="unpatched control does not build"):
        campaign.run(_patches(tmp_path, "leaks"))
    with pytest.raises(SetupError, match="run the controls"):
        campaign.judge(_patches(tmp_path, "leaks")[0])


def test_the_report_has_the_table_the_score_and_json(campaign: Campaign, tmp_path: Path) -> None:
    results, controls = campaign.run(_patches(tmp_path, "leaks", "harmless"))
    table = markdown_table(results)
    assert (
        "| `leaks` | test | **killed** |" in table
        and "| `harmless` | test | **survived** |" in table
    )
    text = markdown_report(results, controls, "# head")
    assert "score 0.50 = killed 1 / (killed 1 + survived 1); broken 0" in text
    assert "control 1: 2 s, exit 0, failing: none" in text
    doc = json.loads(json_report(results, controls, {"seed": 7}))
    assert doc["score"] == 0.5 and doc["counts"] == {"killed": 1, "survived": 1, "broken": 0}
    assert [m["fate"] for m in doc["mutants"]] == ["killed", "survived"]
