"""new / known / fixed: every finding of the candidate's runs judged against the baseline's.

Both builds ran the same seeds, ``reps`` times each.  For one finding identity:

* **fixed**: the baseline shows it, the candidate never does;
* **new**: the candidate shows it and the baseline never does (and no open
  write-up describes it); or both show it but the candidate's rate is above
  the baseline rate's 95 % Clopper-Pearson upper bound (with three
  repetitions: the baseline 1 in 3, the candidate 3 in 3); or one of its
  sizes (a count in the evidence) was, in every candidate repetition, above
  every size the baseline showed.
  A drop in rate or size is an improvement, reported, never a failure;
* **known**: otherwise: on both within the baseline's range, or on the
  candidate alone but written up in ``docs/findings/``.

Without a baseline, a finding is known if written up and new otherwise.
Pure functions: no Docker.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scipy.stats import beta

from chaos.gate.documented import Documented, written_up
from chaos.gate.observe import FindingKey, Sighting, run_findings
from chaos.mutants.scenarios import ScenarioRun

CONFIDENCE = 0.95


class Kind(enum.StrEnum):
    NEW = "new"
    KNOWN = "known"
    FIXED = "fixed"


@dataclass(frozen=True)
class Side:
    """One build's record of one finding: in how many of its repetitions, and how big."""

    hits: int
    reps: int
    sizes: Mapping[str, tuple[int, int]]  # path -> (min, max) over the repetitions that hit
    summary: str = ""

    def rate(self) -> str:
        return f"{self.hits}/{self.reps}"


@dataclass(frozen=True)
class GateFinding:
    key: FindingKey
    kind: Kind
    why: str
    candidate: Side
    baseline: Side | None
    documented: str = ""


def rate_upper_bound(hits: int, reps: int, confidence: float = CONFIDENCE) -> float:
    """The two-sided Clopper-Pearson upper bound of a rate seen ``hits`` times in ``reps``."""
    if reps <= 0:
        raise ValueError("a rate needs at least one repetition")
    if hits >= reps:
        return 1.0
    return float(beta.ppf(1 - (1 - confidence) / 2, hits + 1, reps - hits))


def side(key: FindingKey, per_run: Sequence[Mapping[FindingKey, Sighting]]) -> Side:
    seen = [found[key] for found in per_run if key in found]
    ranges: dict[str, tuple[int, int]] = {}
    for sighting in seen:
        for path, value in sighting.sizes.items():
            low, high = ranges.get(path, (value, value))
            ranges[path] = (min(low, value), max(high, value))
    return Side(len(seen), len(per_run), ranges, seen[0].summary if seen else "")


def _grown(candidate: Side, baseline: Side) -> str:
    """A size grew when every candidate repetition that showed it is bigger than every
    baseline one: the candidate's range lies above the baseline's.  Comparing only the
    maxima would fail a gate at random, since a size that varies from run to run (zombies
    left by a drain) tops three baseline repetitions in about half of the candidate's;
    all three above all three happens by chance in 1 case of 20 (3! 3! / 6!)."""
    for path, (low, high) in sorted(candidate.sizes.items()):
        if path in baseline.sizes and low > baseline.sizes[path][1]:
            base_low, base_high = baseline.sizes[path]
            return f"{path} was {low}..{high}, above the baseline's {base_low}..{base_high}"
    return ""


def judge(
    key: FindingKey, candidate: Side, baseline: Side | None, documented: Sequence[Documented]
) -> GateFinding:
    doc = written_up(key, documented)
    if candidate.hits == 0:
        if baseline is None or baseline.hits == 0:  # pragma: no cover - no such key
            raise ValueError(f"{key.label()} was seen on neither build")
        return GateFinding(key, Kind.FIXED, "on the baseline only", candidate, baseline, doc)
    if baseline is None or baseline.hits == 0:
        where = "no baseline" if baseline is None else "not on the baseline"
        if doc:
            return GateFinding(key, Kind.KNOWN, f"{where}; written up", candidate, baseline, doc)
        return GateFinding(key, Kind.NEW, f"{where}; not written up", candidate, baseline, doc)
    bound = rate_upper_bound(baseline.hits, baseline.reps)
    if candidate.hits / candidate.reps > bound:
        why = (
            f"rate {candidate.rate()} above the baseline's {baseline.rate()} "
            f"(95 % upper bound {bound:.2f})"
        )
        return GateFinding(key, Kind.NEW, why, candidate, baseline, doc)
    if grown := _grown(candidate, baseline):
        return GateFinding(key, Kind.NEW, grown, candidate, baseline, doc)
    return GateFinding(
        key, Kind.KNOWN, "on both, within the baseline's range", candidate, baseline, doc
    )


def classify(
    candidate: Sequence[ScenarioRun],
    baseline: Sequence[ScenarioRun] | None,
    documented: Sequence[Documented] = (),
) -> list[GateFinding]:
    """Every finding of either build, classified; new first, then known, then fixed."""
    if not candidate or (baseline is not None and not baseline):
        raise ValueError("classification needs at least one run of each build")
    cand = [run_findings(r) for r in candidate]
    base = [run_findings(r) for r in baseline] if baseline is not None else None
    keys = set().union(*cand, *(base or []))
    order = {Kind.NEW: 0, Kind.KNOWN: 1, Kind.FIXED: 2}
    found = [
        judge(k, side(k, cand), side(k, base) if base is not None else None, documented)
        for k in keys
    ]
    return sorted(found, key=lambda f: (order[f.kind], f.key))


def gate_passes(findings: Sequence[GateFinding], strict: bool = False) -> bool:
    """No new finding (and with ``strict``, no known one either)."""
    failing = {Kind.NEW, Kind.KNOWN} if strict else {Kind.NEW}
    return not any(f.kind in failing for f in findings)
