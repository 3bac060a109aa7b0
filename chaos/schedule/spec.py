"""What a schedule says, before any random choice is drawn: the spec items.

A spec is a list of items read in order.  Operations (:class:`Load`,
:class:`Fault`, :class:`Heal`, :class:`Until`, :class:`Quiesce`) happen at the
schedule's cursor unless wrapped in a timing (:class:`At`, :class:`After`);
:class:`Choose` draws a value once and names it for later items
(:class:`Chosen`).  Targets and parameters may be drawn: :class:`AnyOf` (one of
some choices), :class:`Between` (a number in a range).

Nothing here knows what a "kill" or a "load" does: those are names the test
maps to callables when it runs the concrete schedule
(:func:`chaos.schedule.runner.run_schedule`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

#: How long a step's action (or a gate's wait, or a heal) may take unless it says.
DEFAULT_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class AnyOf:
    """One of ``choices``, drawn when the schedule is built (a new draw per use)."""

    choices: tuple[str, ...]

    def __init__(self, choices: Sequence[str]) -> None:
        if isinstance(choices, str) or not choices:
            raise ValueError("AnyOf needs a non-empty sequence of choices")
        object.__setattr__(self, "choices", tuple(choices))


@dataclass(frozen=True)
class Between:
    """A number drawn uniformly from [lo, hi] when the schedule is built (rounded to ms)."""

    lo: float
    hi: float

    def __post_init__(self) -> None:
        check_range((self.lo, self.hi))


@dataclass(frozen=True)
class Chosen:
    """The value an earlier :class:`Choose` drew under ``name``."""

    name: str


#: What names a target: a literal, a draw, or a named earlier draw.
Target: TypeAlias = str | AnyOf | Chosen | None
Scalar: TypeAlias = str | int | float | bool | None
#: A parameter's value before the build: a JSON scalar, or something to draw.
ParamValue: TypeAlias = Scalar | AnyOf | Between | Chosen
Params: TypeAlias = Mapping[str, ParamValue]


def check_range(between: tuple[float, float]) -> None:
    lo, hi = between
    if lo < 0 or hi < lo:
        raise ValueError(f"a time or number range needs 0 <= lo <= hi, got [{lo}, {hi}]")


# -- operations -----------------------------------------------------------------------
@dataclass(frozen=True)
class Load:
    """Start the action ``name`` (the test's load) at the cursor; it runs beside what
    follows.  With ``duration_s`` an ``end`` step closes it that long after; without,
    :class:`Quiesce` (or the end of the schedule) closes it."""

    duration_s: float | None = None
    name: str = "load"
    params: Params = field(default_factory=dict)
    timeout_s: float = DEFAULT_TIMEOUT_S


@dataclass(frozen=True)
class Fault:
    """Inject the fault ``name`` on ``target``; it stays until a :class:`Heal` (or
    :class:`Quiesce`) closes it."""

    name: str
    target: Target = None
    params: Params = field(default_factory=dict)
    timeout_s: float = DEFAULT_TIMEOUT_S


@dataclass(frozen=True)
class Heal:
    """Heal the most recent fault still in force (the latest one named ``fault`` if given)."""

    fault: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S


@dataclass(frozen=True)
class Until:
    """A gate: wait until the test's condition ``name`` holds (for ``target``), after
    everything scheduled before it.  Times of the items after it count from the moment
    it held (a new phase): "2 s after the victim owns runs" is ``Until`` then ``At``."""

    name: str
    target: Target = None
    params: Params = field(default_factory=dict)
    timeout_s: float = DEFAULT_TIMEOUT_S


@dataclass(frozen=True)
class Quiesce:
    """After everything scheduled: heal every fault and end every load still open (latest
    first, each within ``timeout_s``), then run the test's ``quiesce`` action if it has one."""

    timeout_s: float = DEFAULT_TIMEOUT_S


Operation: TypeAlias = Load | Fault | Heal | Until | Quiesce


# -- timings and bindings -------------------------------------------------------------
def _between(value: float | tuple[float, float]) -> tuple[float, float]:
    between = (float(value), float(value)) if isinstance(value, int | float) else value
    check_range(between)
    return (float(between[0]), float(between[1]))


@dataclass(frozen=True)
class At:
    """``do`` at a moment drawn from [lo, hi] s after the start of the phase (the
    schedule's start, or the last :class:`Until`'s moment)."""

    between: tuple[float, float]
    do: Operation

    def __init__(self, between: float | tuple[float, float], do: Operation) -> None:
        object.__setattr__(self, "between", _between(between))
        object.__setattr__(self, "do", do)


@dataclass(frozen=True)
class After:
    """``do`` a delay drawn from [lo, hi] s after the previous item's moment."""

    between: tuple[float, float]
    do: Operation

    def __init__(self, between: float | tuple[float, float], do: Operation) -> None:
        object.__setattr__(self, "between", _between(between))
        object.__setattr__(self, "do", do)


@dataclass(frozen=True)
class Choose:
    """Draw one of ``among`` now and name it, for :class:`Chosen` in later items
    (one victim for the gate that waits on it and the fault that hits it)."""

    name: str
    among: AnyOf

    def __init__(self, name: str, among: AnyOf | Sequence[str]) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "among", among if isinstance(among, AnyOf) else AnyOf(among))


Item: TypeAlias = Operation | At | After | Choose
