"""What one pytest run of the gate scenarios found: findings keyed by their identity.

A finding's identity is (scenario, invariant, cause signature):

* a failing verdict gives its invariant and the sorted cause strings of its
  evidence (``stop_reason=...``, ``status=...``: :func:`chaos.mutants.classify.causes`),
  so "no_zombies failed with status=running" and "no_zombies failed with
  status=failed" are different findings;
* a test that failed or errored with no failing verdict (a step gave up, the
  cluster never got ready) gives the pseudo-invariant ``scenario`` and the
  exception's type as its signature: the message itself carries run ids and
  times that differ on every repetition.

Its size is every count in the evidence (:func:`chaos.mutants.classify.sizes`),
so a known finding that grew can be told from one that did not.  A test that
excuses a written-up finding records its failing verdicts apart
(``chaos_known_verdicts``): they are findings here all the same.  Skipped and
xfailed tests (a known finding's strict-xfail reproduction) give nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from chaos.mutants.classify import causes, sizes
from chaos.mutants.scenarios import ScenarioRun, TestObs

SCENARIO = "scenario"
_EXCEPTION = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Timeout|Exit|Interrupt|Failed))\b")


@dataclass(frozen=True, order=True)
class FindingKey:
    scenario: str
    invariant: str
    signature: str

    def label(self) -> str:
        sig = f" [{self.signature}]" if self.signature else ""
        return f"{self.scenario} {self.invariant}{sig}"


@dataclass(frozen=True)
class Sighting:
    """One finding in one run: its sizes and the summary a person reads."""

    sizes: Mapping[str, int] = field(default_factory=dict)
    summary: str = ""


def exception_type(message: str) -> str:
    """``chaos.wait.WaitTimeout`` from ``chaos.wait.WaitTimeout: timed out after ...``."""
    match = _EXCEPTION.match(message.strip())
    return match.group(1) if match else "failure"


def _invariant(key: str) -> str:
    """``no_zombies#2`` (a second verdict of one invariant in a test) is ``no_zombies``."""
    return key.split("#", 1)[0]


def findings_of_test(name: str, test: TestObs) -> dict[FindingKey, Sighting]:
    """A test's failing verdicts, the asserted and the known (excused as a written-up
    finding) alike: a known finding is still a finding, whose rate and size the gate
    compares between builds."""
    out: dict[FindingKey, Sighting] = {}
    for key, verdict in [*test.verdicts.items(), *test.known.items()]:
        if verdict.status != "fail":
            continue
        signature = ", ".join(sorted(causes(verdict.evidence)))
        fkey = FindingKey(name, _invariant(key), signature)
        # Two verdicts of one identity in one test: keep the bigger sizes.
        merged = dict(out[fkey].sizes) if fkey in out else {}
        for path, value in sizes(verdict.evidence).items():
            merged[path] = max(value, merged.get(path, value))
        out[fkey] = Sighting(merged, verdict.summary)
    if not out and test.outcome in ("failed", "error"):
        out[FindingKey(name, SCENARIO, exception_type(test.message))] = Sighting({}, test.message)
    return out


def run_findings(run: ScenarioRun) -> dict[FindingKey, Sighting]:
    """Every finding of one run, by identity."""
    out: dict[FindingKey, Sighting] = {}
    for name, test in sorted(run.tests.items()):
        out.update(findings_of_test(name, test))
    return out
