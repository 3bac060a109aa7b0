"""The concrete schedule: every random choice of a spec drawn from one seed, frozen.

:meth:`Schedule.build` reads the spec items in order and draws, in that order,
from the seed's ``faults`` stream (:func:`chaos.seeds.stream`): the same seed
gives the same schedule byte for byte (:meth:`Schedule.to_json`), whatever
else the test draws from its other streams.

A :class:`Step` is (phase, at_s, kind, op, target, params): ``at_s`` counts
from the start of its phase, phase 0 from the start of the run and phase k
from the moment the k-th ``until`` gate held.  Steps are in the order they
run: by phase, time, then spec order.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, cast, get_args

from chaos.record.history import History, Record
from chaos.record.vocabulary import NOTE_SCHEDULE
from chaos.schedule.spec import (
    After,
    AnyOf,
    At,
    Between,
    Choose,
    Chosen,
    Fault,
    Heal,
    Item,
    Load,
    Operation,
    Params,
    Quiesce,
    Scalar,
    Target,
    Until,
)
from chaos.seeds import FAULTS, stream

#: What a step does.  ``load``/``fault`` open something (the test's action may
#: return a context or a heal function), ``heal``/``end`` close what step
#: ``params["of"]`` opened, ``until`` waits for the test's condition,
#: ``quiesce`` runs the test's optional ``quiesce`` action.
StepKind = Literal["load", "fault", "heal", "end", "until", "quiesce"]
STEP_KINDS: frozenset[str] = frozenset(get_args(StepKind))
#: Kinds whose ``op`` is a name the test maps to an action.
ACTION_KINDS: frozenset[str] = frozenset({"load", "fault", "until"})
#: Milliseconds: enough for pacing on an event loop, and stable in JSON.
_DIGITS = 3


class ScheduleError(ValueError):
    """A spec that cannot be made concrete (heal with nothing open, unknown name...)."""


@dataclass(frozen=True)
class Step:
    """One concrete step; ``params`` hold only JSON values."""

    index: int
    phase: int
    at_s: float
    kind: StepKind
    op: str
    target: str | None
    params: Mapping[str, Any]
    timeout_s: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "phase": self.phase,
            "at_s": self.at_s,
            "kind": self.kind,
            "op": self.op,
            "target": self.target,
            "params": dict(self.params),
            "timeout_s": self.timeout_s,
        }

    @staticmethod
    def from_dict(raw: Mapping[str, Any]) -> Step:
        kind = str(raw["kind"])
        if kind not in STEP_KINDS:
            raise ScheduleError(f"unknown step kind {kind!r}")
        target = raw.get("target")
        return Step(
            index=int(raw["index"]),
            phase=int(raw["phase"]),
            at_s=float(raw["at_s"]),
            kind=cast(StepKind, kind),
            op=str(raw["op"]),
            target=None if target is None else str(target),
            params=MappingProxyType(dict(raw.get("params") or {})),
            timeout_s=float(raw["timeout_s"]),
        )

    def describe(self) -> str:
        """``p1 +3.214s fault kill r2`` (for notes and failure messages)."""
        what = self.kind if self.op == self.kind else f"{self.kind} {self.op}"
        target = f" {self.target}" if self.target is not None else ""
        params = f" {json.dumps(dict(self.params), sort_keys=True)}" if self.params else ""
        return f"#{self.index} p{self.phase} +{self.at_s:.3f}s {what}{target}{params}"


@dataclass(frozen=True)
class Schedule:
    """A concrete schedule: its seed, the named draws, and the steps in running order."""

    seed: int
    steps: tuple[Step, ...]
    bindings: Mapping[str, str]

    @staticmethod
    def build(seed: int, items: Iterable[Item]) -> Schedule:
        """Draw every choice of ``items`` from ``seed``'s "faults" stream; see the module doc."""
        return _Builder(stream(seed, FAULTS)).build(int(seed), list(items))

    # -- reading ---------------------------------------------------------------------
    def of_kind(self, kind: StepKind) -> list[Step]:
        return [s for s in self.steps if s.kind == kind]

    def first(self, op: str) -> Step:
        """The first step whose ``op`` is ``op`` (e.g. the ``kill``)."""
        for step in self.steps:
            if step.op == op:
                return step
        raise KeyError(f"no {op!r} step in the schedule")

    def describe(self) -> list[str]:
        return [s.describe() for s in self.steps]

    # -- JSON and the history ----------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "bindings": dict(self.bindings),
            "steps": [s.to_dict() for s in self.steps],
        }

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces): equal schedules give equal bytes."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @staticmethod
    def from_dict(raw: Mapping[str, Any]) -> Schedule:
        steps = tuple(Step.from_dict(s) for s in raw["steps"])
        if [s.index for s in steps] != list(range(len(steps))):
            raise ScheduleError("step indexes must be 0..n-1 in order")
        bindings = {str(k): str(v) for k, v in (raw.get("bindings") or {}).items()}
        return Schedule(int(raw["seed"]), steps, MappingProxyType(bindings))

    @staticmethod
    def from_json(text: str) -> Schedule:
        return Schedule.from_dict(json.loads(text))

    def record(self, history: History) -> Record:
        """The plan, once, before it runs: a note ``schedule`` with ``steps``."""
        return history.note(NOTE_SCHEDULE, **self.to_dict())

    @staticmethod
    def recorded(history: History) -> list[Schedule]:
        """Every plan ``history`` holds (not the per-step ``ran`` notes), in order."""
        return [
            Schedule.from_dict(r.data)
            for r in history.records
            if r.type == "note" and r.op == NOTE_SCHEDULE and "steps" in r.data
        ]


# -- building ---------------------------------------------------------------------------
@dataclass
class _Draft:
    seq: int
    phase: int
    at_s: float
    kind: StepKind
    op: str
    target: str | None
    params: dict[str, Any]
    timeout_s: float
    opens: int | None = None  # for heal/end: the seq of the step it closes


class _Builder:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.bindings: dict[str, str] = {}
        self.drafts: list[_Draft] = []
        self.open: list[_Draft] = []  # loads and faults not yet closed, oldest first
        self.phase = 0
        self.cursor = 0.0  # the moment of the previous item, within the phase
        self.phase_end = 0.0  # the latest moment scheduled so far in the phase
        self.quiesced = False

    def build(self, seed: int, items: Sequence[Item]) -> Schedule:
        for item in items:
            if self.quiesced:
                raise ScheduleError(f"nothing may follow Quiesce, got {item!r}")
            self.add(item)
        ordered = sorted(self.drafts, key=lambda d: (d.phase, d.at_s, d.seq))
        index_of = {d.seq: i for i, d in enumerate(ordered)}
        steps = []
        for i, d in enumerate(ordered):
            params = dict(d.params)
            if d.opens is not None:
                params["of"] = index_of[d.opens]
            steps.append(
                Step(
                    i,
                    d.phase,
                    d.at_s,
                    d.kind,
                    d.op,
                    d.target,
                    MappingProxyType(params),
                    d.timeout_s,
                )
            )
        return Schedule(seed, tuple(steps), MappingProxyType(dict(self.bindings)))

    # -- draws -------------------------------------------------------------------------
    def draw_time(self, between: tuple[float, float]) -> float:
        lo, hi = between
        return round(self.rng.uniform(lo, hi), _DIGITS)

    def target(self, target: Target) -> str | None:
        if target is None or isinstance(target, str):
            return target
        value = self.value(target)
        return None if value is None else str(value)

    def value(self, value: Any) -> Scalar:
        if isinstance(value, AnyOf):
            return value.choices[self.rng.randrange(len(value.choices))]
        if isinstance(value, Between):
            return self.draw_time((value.lo, value.hi))
        if isinstance(value, Chosen):
            if value.name not in self.bindings:
                raise ScheduleError(f"Chosen({value.name!r}) before any Choose of that name")
            return self.bindings[value.name]
        if value is None or isinstance(value, str | int | float | bool):
            return value
        raise ScheduleError(f"a parameter must be a JSON scalar or a draw, got {value!r}")

    def params(self, params: Params) -> dict[str, Any]:
        # Sorted, so that the draw order does not depend on how the dict was written.
        return {key: self.value(params[key]) for key in sorted(params)}

    # -- items -------------------------------------------------------------------------
    def add(self, item: Item) -> None:
        if isinstance(item, Choose):
            if item.name in self.bindings:
                raise ScheduleError(f"{item.name!r} is chosen twice")
            self.bindings[item.name] = str(self.value(item.among))
            return
        if isinstance(item, At):
            self.operation(item.do, self.draw_time(item.between))
        elif isinstance(item, After):
            self.operation(item.do, round(self.cursor + self.draw_time(item.between), _DIGITS))
        else:
            self.operation(item, None)

    def draft(
        self,
        at_s: float,
        kind: StepKind,
        op: str,
        target: str | None,
        params: dict[str, Any],
        timeout_s: float,
        opens: int | None = None,
    ) -> _Draft:
        if timeout_s <= 0:
            raise ScheduleError(f"{kind} {op}: timeout_s must be > 0")
        d = _Draft(
            len(self.drafts), self.phase, at_s, kind, op, target, params, float(timeout_s), opens
        )
        self.drafts.append(d)
        self.phase_end = max(self.phase_end, at_s)
        return d

    def operation(self, op: Operation, at: float | None) -> None:
        # A gate and the quiesce come after everything already scheduled in the phase.
        if isinstance(op, Until | Quiesce):
            if at is not None:
                raise ScheduleError(f"{type(op).__name__} cannot be timed: it follows the rest")
            at = self.phase_end
        moment = self.cursor if at is None else at
        if isinstance(op, Load):
            self.load(op, moment)
        elif isinstance(op, Fault):
            opened = self.draft(
                moment,
                "fault",
                op.name,
                self.target(op.target),
                self.params(op.params),
                op.timeout_s,
            )
            self.open.append(opened)
        elif isinstance(op, Heal):
            self.close(self.heal_of(op.fault, moment), moment, "heal", op.timeout_s)
        elif isinstance(op, Until):
            target = self.target(op.target)
            self.draft(moment, "until", op.name, target, self.params(op.params), op.timeout_s)
            self.phase, self.cursor, self.phase_end = self.phase + 1, 0.0, 0.0
            return
        else:
            for still_open in reversed(list(self.open)):
                kind: StepKind = "end" if still_open.kind == "load" else "heal"
                self.close(still_open, moment, kind, op.timeout_s)
            self.draft(moment, "quiesce", "quiesce", None, {}, op.timeout_s)
            self.quiesced = True
        self.cursor = moment

    def load(self, op: Load, moment: float) -> None:
        params = self.params(op.params)
        if op.duration_s is not None:
            if op.duration_s < 0:
                raise ScheduleError("a load's duration_s must be >= 0")
            params["duration_s"] = float(op.duration_s)
        opened = self.draft(moment, "load", op.name, None, params, op.timeout_s)
        if op.duration_s is None:
            self.open.append(opened)
            return
        end_at = round(moment + op.duration_s, _DIGITS)
        self.draft(end_at, "end", "end", None, {"load": op.name}, op.timeout_s, opens=opened.seq)

    def heal_of(self, name: str | None, moment: float) -> _Draft:
        for opened in reversed(self.open):
            if opened.kind == "fault" and (name is None or opened.op == name):
                if (self.phase, moment) < (opened.phase, opened.at_s):
                    raise ScheduleError(
                        f"heal at {moment}s would come before its fault {opened.op} "
                        f"at {opened.at_s}s"
                    )
                return opened
        raise ScheduleError(f"Heal({name!r}): no such fault is in force")

    def close(self, opened: _Draft, moment: float, kind: StepKind, timeout_s: float) -> None:
        self.open.remove(opened)
        params = {"fault" if kind == "heal" else "load": opened.op}
        self.draft(moment, kind, kind, opened.target, params, timeout_s, opens=opened.seq)
