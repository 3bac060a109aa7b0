"""Which findings are written up in ``docs/findings/``: a gate finding matched by front matter.

A write-up matches a gate finding when its ``invariant`` names the finding's
invariant (the field is a comma-separated list; text in parentheses is a
comment) and the finding's scenario is its ``reproduction`` test or one of
its optional ``scenarios`` (comma-separated test ids where it also shows).
Matching by invariant alone would let any failure of ``one_truth`` pass as
LC-004; the scenario keeps the match to where the write-up says it shows.
Closed write-ups (``status: fixed``) match nothing: a fixed finding that
comes back is new.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from chaos.findings import Finding
from chaos.gate.observe import FindingKey

_PARENS = re.compile(r"\([^)]*\)")


def junit_name(test_id: str) -> str:
    """``tests/chaos/test_x.py::test_y`` as JUnit names it: ``tests.chaos.test_x::test_y``."""
    path, sep, rest = test_id.strip().partition("::")
    module = path.removesuffix(".py").replace("/", ".")
    return f"{module}{sep}{rest}"


def _base(name: str) -> str:
    """A test name without its parameters: ``t::x[a-b]`` is ``t::x``."""
    return name.split("[", 1)[0]


@dataclass(frozen=True)
class Documented:
    id: str
    invariants: frozenset[str]
    scenarios: frozenset[str]

    @staticmethod
    def of(finding: Finding) -> Documented:
        invariants = frozenset(
            part.strip() for part in _PARENS.sub("", finding.invariant).split(",") if part.strip()
        )
        tests = (finding.reproduction, *finding.scenarios)
        return Documented(finding.id, invariants, frozenset(_base(junit_name(t)) for t in tests))

    def matches(self, key: FindingKey) -> bool:
        return key.invariant in self.invariants and _base(key.scenario) in self.scenarios


def documented_findings(findings: Iterable[Finding]) -> list[Documented]:
    return [Documented.of(f) for f in findings if f.status == "open"]


def written_up(key: FindingKey, documented: Sequence[Documented]) -> str:
    """The id of the open write-up that describes ``key``, or ''."""
    return next((d.id for d in documented if d.matches(key)), "")
