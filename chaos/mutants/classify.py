"""killed / survived / broken, judged against unpatched control runs of the same seed.

The target already fails some scenarios, so a red verdict alone proves
nothing.  A mutant is **killed** when, in some test:

* an invariant fails that never failed on a control run; or
* an invariant that also fails on the controls fails with different evidence:
  a cause the controls never showed (``stop_reason``, ``status``, ``error``... in
  the evidence or its rows) or a size (a ``*count*`` field, a list's length)
  outside the range the controls spanned; or
* a test every control passed fails or errors without a failing verdict (the
  cluster never got ready, a scenario step gave up); or
* the process never got healthy.

It is **broken** only when the build fails or the process exits before
``/healthz`` answers, and **survived** otherwise.  Pure functions: no Docker, no Go.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chaos.mutants.scenarios import ScenarioRun, TestObs, VerdictObs

#: Evidence keys whose string values name a cause (compared as sets).
CAUSE_KEYS = frozenset(
    {"status", "stop_reason", "error", "cause", "reason", "kind", "outcome", "state"}
)


class Fate(enum.StrEnum):
    KILLED = "killed"
    SURVIVED = "survived"
    BROKEN = "broken"


@dataclass(frozen=True)
class Classification:
    fate: Fate
    reasons: tuple[str, ...] = ()


def _walk(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    yield path, value
    if isinstance(value, Mapping):
        for key, inner in value.items():
            yield from _walk(inner, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for inner in value:
            yield from _walk(inner, f"{path}[]")


def causes(evidence: Mapping[str, Any]) -> set[str]:
    """``key=value`` for every cause-naming string anywhere in the evidence."""
    out: set[str] = set()
    for path, value in _walk(evidence, ""):
        key = path.rsplit(".", 1)[-1].removesuffix("[]")
        if key in CAUSE_KEYS and isinstance(value, str):
            out.add(f"{key}={value}")
    return out


def sizes(evidence: Mapping[str, Any]) -> dict[str, int]:
    """Counts in the evidence: ``*count*``/``n`` integers and every list's length."""
    out: dict[str, int] = {}
    for path, value in _walk(evidence, ""):
        key = path.rsplit(".", 1)[-1]
        if isinstance(value, list) and "[]" not in path:
            out[f"len({path})"] = len(value)
        elif (
            isinstance(value, int)
            and not isinstance(value, bool)
            and "[]" not in path
            and ("count" in key or key == "n")
        ):
            out[path] = value
    return out


def evidence_difference(mutant: VerdictObs, controls: Sequence[VerdictObs]) -> str | None:
    """Why the mutant's failing evidence is outside the failing controls' range, or None."""
    seen: set[str] = set()
    for c in controls:
        seen |= causes(c.evidence)
    new_causes = sorted(causes(mutant.evidence) - seen)
    if new_causes:
        return f"cause never seen on a control: {', '.join(new_causes[:4])}"
    control_sizes = [sizes(c.evidence) for c in controls]
    for path, value in sorted(sizes(mutant.evidence).items()):
        observed = [s[path] for s in control_sizes if path in s]
        if observed and not min(observed) <= value <= max(observed):
            return f"{path}={value} outside the controls' range [{min(observed)}, {max(observed)}]"
    return None


def _test_kills(
    name: str, mutant: TestObs | None, controls: Sequence[TestObs | None], stopped_early: bool
) -> list[str]:
    present = [c for c in controls if c is not None]
    always_passed = len(present) == len(controls) and all(c.outcome == "passed" for c in present)
    if mutant is None:
        # After --maxfail=1 a missing test simply never ran: that is no evidence.
        missing = always_passed and not stopped_early
        return [f"{name}: missing from the mutant's run"] if missing else []
    reasons: list[str] = []
    for key, verdict in mutant.verdicts.items():
        if verdict.status != "fail":
            continue
        failing = [c.verdicts[key] for c in present if c.verdicts.get(key, None) is not None]
        failing = [v for v in failing if v.status == "fail"]
        if not failing:
            reasons.append(f"{name} {key}: fails only on the mutant: {verdict.summary}")
        elif (why := evidence_difference(verdict, failing)) is not None:
            reasons.append(f"{name} {key}: fails with other evidence ({why}): {verdict.summary}")
    if not reasons and always_passed and mutant.outcome in ("failed", "error"):
        reasons.append(f"{name}: {mutant.outcome} on the mutant only: {mutant.message}")
    return reasons


def compare_runs(mutant: ScenarioRun, controls: Sequence[ScenarioRun]) -> list[str]:
    """Every reason the mutant's run differs from all controls in a way that kills it."""
    names = sorted(set(mutant.tests).union(*(c.tests for c in controls)))
    reasons: list[str] = []
    for name in names:
        reasons += _test_kills(
            name,
            mutant.tests.get(name),
            [c.tests.get(name) for c in controls],
            mutant.stopped_early,
        )
    return reasons


def classify(mutant: ScenarioRun, controls: Sequence[ScenarioRun]) -> Classification:
    if not controls:
        raise ValueError("classification needs at least one control run")
    reasons = compare_runs(mutant, controls)
    return Classification(Fate.KILLED if reasons else Fate.SURVIVED, tuple(reasons))
