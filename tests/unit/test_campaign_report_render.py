"""render_report on the hand-made campaign folders: the files it writes, and bad input."""

from __future__ import annotations

import ast
import json
import re
import shutil
from pathlib import Path

import pytest

from chaos.campaign.report import CampaignDataError, render_report
from chaos.campaign.report.render import target_mode
from chaos.testing.imports import ImportGraph

FIXTURES = Path(__file__).parent / "data" / "campaign"
ROOT = Path(__file__).resolve().parents[2]


def _copy(name: str, tmp: Path) -> Path:
    out = tmp / name
    shutil.copytree(FIXTURES / name, out)
    return out


@pytest.fixture(scope="module")
def soak_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = _copy("soak", tmp_path_factory.mktemp("report"))
    render_report(out)
    return out


def test_the_report_files_are_written_and_the_html_is_self_contained(soak_report: Path) -> None:
    html = (soak_report / "report.html").read_text()
    charts = sorted(p.name for p in (soak_report / "charts").glob("*.png"))
    assert charts == [
        "active_runs.png",
        "cancel_acks.png",
        "completion.png",
        "latency.png",
        "load_split.png",
        "memory.png",
        "ramp.png",
        "reap_timeline.png",
        "wall_time.png",
    ]
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(embedded) == len(charts)
    assert re.findall(r'src="(?!data:)', html) == []
    assert "<script" not in html


def test_the_verdict_table_comes_first_with_known_and_new_marks(soak_report: Path) -> None:
    html = (soak_report / "report.html").read_text()
    verdicts = html.index("<h2>Verdicts</h2>")
    assert verdicts < html.index('<section id="wall_time">')
    rows = re.findall(
        r"<td>(no_\w+|bounded_\w+)</td>\s*<td>(\w+)</td>\s*<td[^>]*>([^<]*)</td>", html
    )
    assert rows == [
        ("no_quota_leaks", "fail", "KNOWN (LC-003)"),
        ("bounded_recovery", "fail", "NEW"),
        ("no_zombies", "pass", ""),
    ]


def test_analysis_json_holds_every_analysis_and_no_nan(soak_report: Path) -> None:
    text = (soak_report / "analysis.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    analysis = json.loads(text)
    assert set(analysis["methods"]) == {"knee", "drift", "steps", "load", "compare"}
    (step,) = analysis["steps"]
    assert (step["group"], step["wave"], step["direction"]) == ("v1.59.0 / p2", 19.0, "up")
    assert analysis["load"]["max_share"] == pytest.approx(0.506)
    assert analysis["reaps"][0]["last_reaped_after_s"] == 20.5
    assert analysis["totals"]["v1.59.0"]["silent_regressions"] == 1
    series = {(d["series"], d["group"]) for d in analysis["drift"]}
    assert ("rss_mb", "v1.59.0 / p1 / r1") in series and ("wall_s", "v1.59.0 / p2") in series


def test_the_markdown_report_has_the_verdicts_and_links_the_charts(soak_report: Path) -> None:
    md = (soak_report / "report.md").read_text()
    assert "| soak | bounded_recovery | fail | NEW |" in md
    assert "![Wave wall time](charts/wall_time.png)" in md
    assert "| v1.59.0 / p2 | 19 |" in md


def test_a_compare_and_a_ramp_without_optional_files_render(tmp_path: Path) -> None:
    ramp = _copy("ramp", tmp_path)
    render_report(ramp)
    assert not (ramp / "charts" / "memory.png").exists()  # no samples.csv: no chart
    knees = json.loads((ramp / "analysis.json").read_text())["knees"]["v1.59.0"]
    assert [k["scale"] for k in knees] == [6000.0, 6000.0]
    compare = _copy("compare", tmp_path)
    html = render_report(compare).read_text()
    assert '<section id="compare">' in html
    (wall, _) = json.loads((compare / "analysis.json").read_text())["compare"]
    assert (wall["baseline"], wall["candidate"]) == ("v1.58.0", "v1.59.0")
    assert wall["low"] < 1.5 < wall["high"]


def test_a_campaign_interrupted_before_its_first_wave_still_renders(tmp_path: Path) -> None:
    out = _copy("soak", tmp_path)
    header = (out / "waves.csv").read_text().splitlines()[0]
    (out / "waves.csv").write_text(header + "\n")
    html = render_report(out).read_text()
    assert "wall_time" not in html and '<section id="memory">' in html
    assert "NEW" in html  # the verdicts are still there


def test_bad_input_is_one_line_naming_the_file(tmp_path: Path) -> None:
    out = _copy("ramp", tmp_path)
    (out / "waves.csv").write_text(
        (out / "waves.csv").read_text().replace("ramp,v1.59.0,4,ramp,3,", "ramp,v1.59.0,4,ramp,x,")
    )
    with pytest.raises(CampaignDataError, match=r"waves.csv:4 column wave: 'x' is not a number"):
        render_report(out)
    (out / "waves.csv").unlink()
    with pytest.raises(CampaignDataError, match=r"waves.csv: missing"):
        render_report(out)
    (out / "waves.csv").write_text("campaign,build\nramp,v1\n")
    with pytest.raises(CampaignDataError, match=r"missing columns phase, replicas, wave"):
        render_report(out)
    (out / "summary.json").write_text("{not json")
    with pytest.raises(CampaignDataError, match=r"summary.json: not valid JSON") as info:
        render_report(out)
    assert "\n" not in str(info.value)


def _closure(graph: ImportGraph, start: set[str]) -> set[str]:
    """Every chaos module imported, directly or not, from ``start`` (package inits included)."""
    seen: set[str] = set()
    todo = list(start)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        parents = [module.rsplit(".", k)[0] for k in range(1, module.count(".") + 1)]
        todo += [*graph.edges.get(module, ()), *(p for p in parents if p in graph.modules)]
    return seen


def _imports_docker(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module]
        if any(n == "docker" or n.startswith("docker.") for n in names):
            return True
    return False


def test_the_report_package_imports_neither_docker_nor_the_cluster() -> None:
    graph = ImportGraph(ROOT)
    report = {m for m in graph.modules if m.startswith("chaos.campaign.report")}
    reached = _closure(graph, report)
    assert sorted(m for m in reached if m.startswith("chaos.cluster")) == []
    assert sorted(m for m in reached if _imports_docker(graph.modules[m])) == []
    assert "chaos.campaign.report.render" in reached  # the walk did walk


@pytest.mark.parametrize(
    ("options", "mode"),
    [
        ({"cluster_mode": False}, "single binary (no cluster mode)"),
        ({"cluster_mode": True}, "cluster mode"),
        ({}, "cluster mode"),  # folders written before the option existed: all cluster mode
        (None, "cluster mode"),
    ],
)
def test_the_report_says_how_the_target_ran(options: object, mode: str) -> None:
    assert target_mode({"options": options}) == mode


def test_the_single_binary_mode_is_in_the_reports_header(tmp_path: Path) -> None:
    out = _copy("soak", tmp_path)
    summary = json.loads((out / "summary.json").read_text())
    summary.setdefault("options", {})["cluster_mode"] = False
    (out / "summary.json").write_text(json.dumps(summary))
    render_report(out)
    assert "· single binary (no cluster mode) ·" in (out / "report.html").read_text()
    assert "· single binary (no cluster mode) ·" in (out / "report.md").read_text()
