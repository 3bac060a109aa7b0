"""The gate's verdict three ways that always agree: a table, JSON + Markdown, and JUnit XML.

The JUnit file has one test case per scenario (failing when a new finding, or
with ``--strict`` a known one, is in it) and a last case ``gate::verdict``
that fails exactly when the exit code is 1; the builds' labels, image ids,
seeds and scenarios are suite properties.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from chaos.gate.builds import Build
from chaos.gate.classify import GateFinding, Kind, Side
from chaos.mutants.scenarios import ScenarioRun


@dataclass(frozen=True)
class GateResult:
    candidate: Build
    baseline: Build | None
    seeds: Sequence[int]
    scenarios: Sequence[str]
    findings: Sequence[GateFinding]
    runs: Mapping[str, Sequence[ScenarioRun]]
    passed: bool
    strict: bool
    command: str
    wall_s: float
    #: The ``--target-config`` file ('' for the suite's presets) and its advisories.
    target_config: str = ""
    advisories: Sequence[str] = ()

    def failing(self, finding: GateFinding) -> bool:
        return finding.kind is Kind.NEW or (self.strict and finding.kind is Kind.KNOWN)


def _side(s: Side | None) -> dict[str, Any] | None:
    if s is None:
        return None
    sizes = {k: list(v) for k, v in s.sizes.items()}
    return {"hits": s.hits, "reps": s.reps, "sizes": sizes, "summary": s.summary}


def _build(b: Build | None) -> dict[str, str] | None:
    return None if b is None else {"label": b.label, "image": b.image, "image_id": b.image_id}


def to_json(result: GateResult) -> str:
    data = {
        "verdict": "pass" if result.passed else "fail",
        "strict": result.strict,
        "command": result.command,
        "wall_s": round(result.wall_s, 1),
        "candidate": _build(result.candidate),
        "baseline": _build(result.baseline),
        "seeds": list(result.seeds),
        "scenarios": list(result.scenarios),
        "target_config": result.target_config,
        "advisories": list(result.advisories),
        "runs": {
            label: [{"seconds": round(r.seconds, 1), "returncode": r.returncode} for r in runs]
            for label, runs in result.runs.items()
        },
        "findings": [
            {
                "scenario": f.key.scenario,
                "invariant": f.key.invariant,
                "signature": f.key.signature,
                "kind": f.kind.value,
                "why": f.why,
                "documented": f.documented,
                "candidate": _side(f.candidate),
                "baseline": _side(f.baseline),
            }
            for f in result.findings
        ],
    }
    return json.dumps(data, indent=1) + "\n"


def _cell(text: str, limit: int = 140) -> str:
    one = " ".join(text.split()).replace("|", "\\|")
    return one if len(one) <= limit else one[: limit - 3] + "..."


def _rate(s: Side | None) -> str:
    return "-" if s is None else s.rate()


def verdict_line(result: GateResult) -> str:
    counts = {k: sum(f.kind is k for f in result.findings) for k in Kind}
    word = "PASS" if result.passed else "FAIL"
    tally = ", ".join(f"{counts[k]} {k.value}" for k in Kind)
    strict = " (strict: known findings fail too)" if result.strict else ""
    return f"gate {word}: {result.candidate.label}: {tally}{strict}"


def to_markdown(result: GateResult) -> str:
    base = result.baseline
    lines = [
        "# Release gate",
        "",
        f"- command: `{result.command}`",
        f"- candidate: `{result.candidate.label}` (image `{result.candidate.image}`, "
        f"id `{result.candidate.image_id[:19]}`)",
        f"- baseline: `{base.label}` (image `{base.image}`, id `{base.image_id[:19]}`)"
        if base
        else "- baseline: none",
        f"- seeds: {', '.join(map(str, result.seeds))} ({len(result.seeds)} repetitions a build)",
        f"- scenarios: `{' '.join(result.scenarios)}`",
        f"- wall time: {result.wall_s:.0f} s",
        f"- target config: `{result.target_config}`"
        if result.target_config
        else "- target config: the suite's presets",
        *(f"  - advisory (not a verdict): {a}" for a in result.advisories),
        "",
        "| build | repetition | seed | wall s | exit | tests failed |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, runs in result.runs.items():
        for i, (seed, run) in enumerate(zip(result.seeds, runs, strict=False), start=1):
            failed = sum(t.outcome in ("failed", "error") for t in run.tests.values())
            lines.append(
                f"| `{label}` | {i} | {seed} | {run.seconds:.0f} | {run.returncode} | {failed} |"
            )
    lines += ["", "| finding | class | candidate | baseline | why | write-up | evidence |"]
    lines.append("|---|---|---:|---:|---|---|---|")
    for f in result.findings:
        evidence = f.candidate.summary or (f.baseline.summary if f.baseline else "")
        lines.append(
            f"| `{_cell(f.key.label(), 100)}` | **{f.kind.value}** | {_rate(f.candidate)} | "
            f"{_rate(f.baseline)} | {_cell(f.why)} | {f.documented or '-'} | {_cell(evidence)} |"
        )
    if not result.findings:
        lines.append("| (none) | | | | | | |")
    lines += ["", verdict_line(result), ""]
    return "\n".join(lines)


def to_junit(result: GateResult) -> bytes:
    suite = ET.Element("testsuite", name="loomchaos-gate")
    props = ET.SubElement(suite, "properties")
    values = {
        "candidate": result.candidate.label,
        "candidate_image": result.candidate.image,
        "candidate_image_id": result.candidate.image_id,
        "baseline": result.baseline.label if result.baseline else "",
        "baseline_image_id": result.baseline.image_id if result.baseline else "",
        "chaos_seeds": ",".join(map(str, result.seeds)),
        "scenarios": " ".join(result.scenarios),
        "verdict": "pass" if result.passed else "fail",
        "target_config": result.target_config,
        "target_config_advisories": json.dumps(list(result.advisories)),
    }
    for name, value in values.items():
        ET.SubElement(props, "property", name=name, value=value)
    scenarios = sorted({t for r in result.runs[result.candidate.label] for t in r.tests})
    failures = 0
    for name in scenarios:
        module, _, test = name.partition("::")
        case = ET.SubElement(suite, "testcase", classname=module, name=test or name)
        mine = [f for f in result.findings if f.key.scenario == name]
        bad = [f for f in mine if result.failing(f)]
        if bad:
            failures += 1
            text = "\n".join(f"{f.kind.value}: {f.key.label()}: {f.why}" for f in bad)
            node = ET.SubElement(case, "failure", message=_cell(text.splitlines()[0], 200))
            node.text = text
        others = [f for f in mine if not result.failing(f)]
        if others:
            cprops = ET.SubElement(case, "properties")
            for f in others:
                ET.SubElement(cprops, "property", name=f.kind.value, value=f.key.label())
    case = ET.SubElement(suite, "testcase", classname="gate", name="verdict")
    if not result.passed:
        failures += 1
        ET.SubElement(case, "failure", message=verdict_line(result))
    suite.set("tests", str(len(scenarios) + 1))
    suite.set("failures", str(failures))
    return bytes(ET.tostring(suite, encoding="utf-8", xml_declaration=True))


def verdict_table(result: GateResult) -> Table:
    table = Table(title=verdict_line(result), title_justify="left")
    for col in ("finding", "class", "candidate", "baseline", "why"):
        table.add_column(col, overflow="fold")
    styles = {Kind.NEW: "bold red", Kind.KNOWN: "yellow", Kind.FIXED: "green"}
    for f in result.findings:
        kind = f"[{styles[f.kind]}]{f.kind.value}[/]"
        why = f.why + (f" ({f.documented})" if f.documented else "")
        table.add_row(f.key.label(), kind, _rate(f.candidate), _rate(f.baseline), why)
    if not result.findings:
        table.add_row("(no finding)", "", "", "", "")
    return table


def write(result: GateResult, report_dir: Path, junit: Path | None) -> list[Path]:
    report_dir.mkdir(parents=True, exist_ok=True)
    paths = [report_dir / "report.md", report_dir / "report.json"]
    paths[0].write_text(to_markdown(result))
    paths[1].write_text(to_json(result))
    junit = junit or report_dir / "junit.xml"
    junit.parent.mkdir(parents=True, exist_ok=True)
    junit.write_bytes(to_junit(result))
    return [*paths, junit]


def print_verdict(result: GateResult, console: Console | None = None) -> None:
    console = console or Console()
    for advisory in result.advisories:
        console.print(f"advisory (not a verdict): {advisory}")
    console.print(verdict_table(result))
