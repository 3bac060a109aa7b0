"""What outlives one example of the live machine: the cluster, the bridge, the tallies.

Hypothesis builds a fresh machine per example (and per shrink attempt); each
resets the same cluster, opens its own scenario frame under its own id prefix
and its own History (so the checkers judge exactly one example), and adds its
figures to :class:`LiveStats`, which the test prints and records.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from chaos.checks.context import CheckContext
from chaos.cluster.view import ScenarioCluster
from chaos.machine.live.bridge import SessionLoopBridge
from chaos.record.history import FaultWindow, History
from chaos.record.vocabulary import Snapshot
from chaos.verdict import Verdict


class ResettableCluster(ScenarioCluster, Protocol):
    """A scenario cluster the machine can bring back to its verified start state, whose
    Postgres it can reach from the host (the sweeper's lock, a link cut's proofs)."""

    async def reset(self) -> float: ...

    @property
    def pg_port(self) -> int: ...

    @property
    def pg_credentials(self) -> Any: ...


@dataclass(frozen=True)
class ExampleFacts:
    """What a known-finding signature needs about one finished example."""

    ctx: CheckContext
    final: Snapshot
    #: Fault windows of the example by name ("kill", "stop", "pause").
    windows: Sequence[FaultWindow]
    cancel_reason: str


#: ``explain(verdict, facts)``: the id of the known finding whose signature the failing
#: verdict matches (e.g. "LC-004"), or None when no write-up explains it.
Explain = Callable[[Verdict, ExampleFacts], str | None]


def explains_nothing(verdict: Verdict, facts: ExampleFacts) -> str | None:
    return None


@dataclass
class LiveStats:
    """Tallies over every example of one machine run (shrink attempts included)."""

    examples: int = 0
    steps: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    reset_s: list[float] = field(default_factory=list)
    example_s: list[float] = field(default_factory=list)
    #: Of each example: its teardown (reaps, heals, run drain, convergence, checkers).
    teardown_s: list[float] = field(default_factory=list)
    known: dict[str, int] = field(default_factory=dict)
    #: Examples that ended in a failure: a rule, a per-step invariant or the teardown.
    failed_examples: int = 0
    #: Each Hypothesis run's seed, when a time budget chunks the exploration.
    chunk_seeds: list[int] = field(default_factory=list)
    #: Each example's rules in order (faults' inject/heal included), for the report.
    programs: list[list[str]] = field(default_factory=list)
    #: Verdict statuses over every judged example ("pass", "vacuous", "fail").
    verdicts: dict[str, int] = field(default_factory=dict)
    #: The failing verdicts a write-up explained (for the JUnit's ``chaos_known_verdicts``).
    known_verdicts: list[Verdict] = field(default_factory=list)
    #: How often each rule ran.
    rules: dict[str, int] = field(default_factory=dict)
    #: Where the time went: seconds per phase (reset, frame, each rule, teardown parts ...).
    time_s: dict[str, float] = field(default_factory=dict)
    began: float = field(default_factory=time.monotonic)

    def fault(self, name: str) -> None:
        self.faults[name] = self.faults.get(name, 0) + 1

    def add_time(self, phase: str, seconds: float) -> None:
        self.time_s[phase] = self.time_s.get(phase, 0.0) + seconds

    def summary(self) -> dict[str, Any]:
        minutes = max(1e-9, (time.monotonic() - self.began) / 60.0)
        resets = sorted(self.reset_s)
        return {
            "examples": self.examples,
            "steps": self.steps,
            "faults": dict(sorted(self.faults.items())),
            "examples_per_minute": round(self.examples / minutes, 2),
            "wall_s": round(minutes * 60.0, 1),
            "reset_s_median": round(resets[len(resets) // 2], 2) if resets else None,
            "reset_s_max": round(resets[-1], 2) if resets else None,
            "example_s": [round(x, 1) for x in self.example_s],
            "teardown_s": [round(x, 1) for x in self.teardown_s],
            "known_findings": dict(sorted(self.known.items())),
            "failed_examples": self.failed_examples,
            "chunk_seeds": self.chunk_seeds,
            "verdicts": dict(sorted(self.verdicts.items())),
            "rules": dict(sorted(self.rules.items())),
            "time_s": {
                k: round(v, 1) for k, v in sorted(self.time_s.items(), key=lambda kv: -kv[1])
            },
            "programs": self.programs,
        }


@dataclass
class LiveSetup:
    """The shared pieces every example of the live machine uses."""

    cluster: ResettableCluster
    bridge: SessionLoopBridge
    #: The test's id prefix; example n uses ``<prefix>-e<n>``.
    prefix: str
    #: The test's seed and history meta, copied into each example's History.
    seed: int
    meta: Mapping[str, Any]
    explain: Explain = explains_nothing
    #: Where a failing example's history is saved (None: not saved).
    artifacts: Path | None = None
    stats: LiveStats = field(default_factory=LiveStats)
    #: The cluster was just acquired (verified): the first example needs no reset.
    fresh: bool = True
    #: The last example serial handed out (:meth:`next_serial`).
    serial: int = 0

    def next_serial(self) -> int:
        """1, 2, 3 ... over every machine this setup builds (explorations and replays alike),
        so no two examples of one test share an id prefix (a replay after an exploration
        would otherwise reuse ``-e1`` and the checkers would judge both examples' runs)."""
        self.serial += 1
        return self.serial

    def new_history(self, example: int) -> History:
        return History(seed=self.seed, meta={**self.meta, "machine_example": example})
