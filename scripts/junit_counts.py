"""Print what a JUnit XML file counted: tests, failures, errors, skipped and xfail.

``scripts/test.sh`` runs it after each tier, so CI's log shows at a glance
that the chaos tier ran its scenarios (a green run of zero scenarios proves
nothing) and how many of them are known findings (strict xfail).
Usage: python scripts/junit_counts.py reports/junit-chaos.xml
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET


def counts(path: str) -> dict[str, int]:
    root = ET.parse(path).getroot()
    cases = list(root.iter("testcase"))
    marks = [c.find("skipped") for c in cases]
    skipped = [m for m in marks if m is not None]
    xfail = [m for m in skipped if m.get("type") == "pytest.xfail"]
    return {
        "tests": len(cases),
        "failures": sum(c.find("failure") is not None for c in cases),
        "errors": sum(c.find("error") is not None for c in cases),
        "skipped": len(skipped) - len(xfail),
        "xfail": len(xfail),
    }


def main(argv: list[str]) -> int:
    for path in argv:
        c = counts(path)
        print(f"{path}: " + ", ".join(f"{v} {k}" for k, v in c.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
