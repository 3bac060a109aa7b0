"""Read back a pytest JUnit XML into the verdict table a person reads.

The plugin records every test's verdicts as a ``chaos_verdicts`` property
(``junit_family=xunit1``), so the report is rebuilt from the same file CI keeps.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

#: The JUnit property of the verdicts a test excused as a written-up finding.
KNOWN = "chaos_known_verdicts"


@dataclass
class TestOutcome:
    name: str
    outcome: str  # passed, failed, error, skipped, xfailed (a strict xfail that failed as marked)
    seconds: float
    message: str = ""
    verdicts: list[dict[str, object]] = field(default_factory=list)
    #: Failing verdicts the test excused as a written-up finding (``chaos_known_verdicts``).
    known: list[dict[str, object]] = field(default_factory=list)


def read_junit(path: Path) -> tuple[dict[str, str], list[TestOutcome]]:
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        return {}, []
    props = {p.get("name", ""): p.get("value", "") for p in suite.iterfind("properties/property")}
    outcomes = []
    for case in suite.iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome = {"failure": "failed"}.get(tag, tag)
                if tag == "skipped" and node.get("type") == "pytest.xfail":
                    outcome = "xfailed"
                message = (
                    (node.get("message") or "").splitlines()[0][:200] if node.get("message") else ""
                )
                break
        recorded: dict[str, list[dict[str, object]]] = {"chaos_verdicts": [], KNOWN: []}
        for prop in case.iterfind("properties/property"):
            if (key := prop.get("name", "")) in recorded:
                recorded[key].extend(json.loads(prop.get("value") or "[]"))
        seconds = float(case.get("time", "0") or 0)
        outcomes.append(
            TestOutcome(
                name, outcome, seconds, message, recorded["chaos_verdicts"], recorded[KNOWN]
            )
        )
    return props, outcomes


def _short_name(name: str, width: int = 80) -> str:
    """``tests.chaos.test_x::test_y[p]`` as ``test_x::test_y[p]``, cut at the right if long."""
    module, _, test = name.partition("::")
    short = f"{module.rsplit('.', 1)[-1]}::{test}" if test else name
    return short if len(short) <= width else short[: width - 3] + "..."


def summarize_junit(path: Path) -> str:
    """A table of tests and, under each chaos test, its invariants' verdicts."""
    if not path.exists():
        return f"no JUnit report at {path} (the run stopped before pytest wrote one)"
    props, outcomes = read_junit(path)
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.outcome] = counts.get(o.outcome, 0) + 1
    lines = [f"{'test':<80} {'outcome':<8} {'secs':>7}"]
    for o in sorted(outcomes, key=lambda o: (o.outcome == "passed", o.name)):
        lines.append(f"{_short_name(o.name):<80} {o.outcome:<8} {o.seconds:>7.1f}")
        if o.message and o.outcome != "passed":
            lines.append(f"    {o.message}")
        for v in o.verdicts:
            lines.append(f"    {v.get('status', '?'):<8} {v.get('invariant')}: {v.get('summary')}")
        for v in o.known:
            lines.append(f"    {'known':<8} {v.get('invariant')}: {v.get('summary')}")
    totals = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    lines.append(f"totals: {totals or 'no tests'}; seed {props.get('chaos_seed', '?')}")
    return "\n".join(lines)
