"""Verdicts: what a checker concludes, with the evidence to believe it.

A verdict is ``pass``, ``fail`` or ``vacuous``.  Vacuous means the history did
not hold enough evidence to judge (a killed replica that owned no run, a p99
over three samples): it counts as a failure unless the test explicitly allows
it, because a check that silently judges nothing is how regressions slip by.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from chaos.record.history import FaultWindow
from chaos.seeds import Replay, replay_line


class Status(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    VACUOUS = "vacuous"


@dataclass(frozen=True)
class Verdict:
    """The judgement of one invariant over one scenario."""

    invariant: str
    status: Status
    summary: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    fault_windows: tuple[FaultWindow, ...] = ()
    allow_vacuous: bool = False

    @property
    def ok(self) -> bool:
        return self.status is Status.PASS or (self.status is Status.VACUOUS and self.allow_vacuous)

    def allowing_vacuous(self) -> Verdict:
        return Verdict(
            self.invariant, self.status, self.summary, self.evidence, self.fault_windows, True
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "invariant": self.invariant,
            "status": self.status.value,
            "ok": self.ok,
            "summary": self.summary,
            "evidence": dict(self.evidence),
            "fault_windows": [w.describe() for w in self.fault_windows],
        }

    @staticmethod
    def passed(invariant: str, summary: str, **evidence: Any) -> Verdict:
        return Verdict(invariant, Status.PASS, summary, evidence)

    @staticmethod
    def failed(
        invariant: str,
        summary: str,
        windows: Iterable[FaultWindow] = (),
        **evidence: Any,
    ) -> Verdict:
        return Verdict(invariant, Status.FAIL, summary, evidence, tuple(windows))

    @staticmethod
    def vacuous(invariant: str, summary: str, **evidence: Any) -> Verdict:
        return Verdict(invariant, Status.VACUOUS, summary, evidence)


def _ordered(verdicts: Iterable[Verdict]) -> list[Verdict]:
    """Failing verdicts first, then the rest, each group in its given order."""
    items = list(verdicts)
    return [v for v in items if not v.ok] + [v for v in items if v.ok]


def _short(value: Any, limit: int = 300) -> str:
    text = json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def verdict_table(verdicts: Iterable[Verdict]) -> str:
    """A plain-text table, one line per invariant, failures first."""
    rows = _ordered(verdicts)
    if not rows:
        return "(no verdicts)"
    width = max(len(v.invariant) for v in rows)
    lines = [f"{'invariant':<{width}}  status   summary", f"{'-' * width}  -------  -------"]
    for v in rows:
        status = v.status.value + ("*" if v.status is Status.VACUOUS and v.allow_vacuous else "")
        lines.append(f"{v.invariant:<{width}}  {status:<7}  {v.summary}")
    return "\n".join(lines)


def render_failure(
    verdicts: Sequence[Verdict], *, seed: int | Replay, artifacts: Path | None = None
) -> str:
    """The text a failing test shows: failing verdicts with evidence, then seed and artifacts.

    ``seed`` is the test's seed as the ``chaos_seed`` fixture gives it (it knows its
    session seed and test id, which the line prints: they replay it) or a
    :class:`~chaos.seeds.Replay`; a bare number is printed as not replayable.
    """
    lines = [verdict_table(verdicts), ""]
    for v in _ordered(verdicts):
        if v.ok:
            continue
        lines.append(f"[{v.status.value.upper()}] {v.invariant}: {v.summary}")
        for key, value in v.evidence.items():
            lines.append(f"    {key}: {_short(value)}")
        for w in v.fault_windows:
            lines.append(f"    fault window: {w.describe()}")
    lines.append(replay_line(seed))
    if artifacts is not None:
        lines.append(f"artifacts: {artifacts}")
    return "\n".join(lines)


class AssertVerdicts(Protocol):
    """The ``chaos_verdicts`` fixture: asserts ``verdicts``; records ``known`` (failing
    verdicts a written-up finding excuses) beside them without asserting them."""

    def __call__(self, verdicts: Sequence[Verdict], known: Sequence[Verdict] = ()) -> None: ...


class InvariantViolation(AssertionError):
    """Raised by :func:`assert_verdicts`; carries the verdicts for the plugin."""

    def __init__(
        self, verdicts: Sequence[Verdict], seed: int | Replay, artifacts: Path | None
    ) -> None:
        self.verdicts = list(verdicts)
        self.seed = seed
        self.artifacts = artifacts
        super().__init__(render_failure(verdicts, seed=seed, artifacts=artifacts))


def assert_verdicts(
    verdicts: Sequence[Verdict], *, seed: int | Replay, artifacts: Path | None = None
) -> None:
    if not verdicts:
        raise InvariantViolation(
            [Verdict.vacuous("any", "no invariant was checked")], seed, artifacts
        )
    if not all(v.ok for v in verdicts):
        raise InvariantViolation(verdicts, seed, artifacts)
