"""Running a chaos machine under Hypothesis, and reading back the program it printed.

The seed: under pytest, the loomchaos plugin hands its session seed to
Hypothesis (``--hypothesis-seed``), so ``--chaos-seed=N`` replays the same
exploration; outside pytest pass ``seed=`` to :func:`run_machine`.

The program: on failure Hypothesis replays the shrunk example once more and
attaches each step as a note to the exception (``state = M()``,
``state.rule(...)``, the invariants it checked, ``state.teardown()``).
:func:`failing_program` returns those lines, :func:`program_rules` only the
rule calls, and :func:`replay` runs such a program against a fresh machine.
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

from hypothesis import HealthCheck, Phase, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test

_STEP = re.compile(r"^state\.(?P<name>\w+)\((?P<args>.*)\)$")


def machine_settings(
    *, max_examples: int = 4, steps: int = 8, shrink: bool = True, **overrides: Any
) -> settings:
    """Settings sized for machines whose steps touch real containers.

    No deadline (a Postgres restart takes seconds), no example database (the
    seed, not a local cache, is what replays a run), no ``explain`` phase
    (it re-runs examples, each costing real faults).
    """
    phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if shrink else [])
    values: dict[str, Any] = {
        "max_examples": max_examples,
        "stateful_step_count": steps,
        "deadline": None,
        "database": None,
        "phases": phases,
        "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much],
        "print_blob": False,
    }
    values.update(overrides)
    return settings(**values)


def run_machine(
    factory: Callable[[], RuleBasedStateMachine],
    run_settings: settings,
    *,
    seed: int | None = None,
) -> None:
    """Run the machine built by ``factory`` as a test; raises the failure with its program."""

    def build() -> RuleBasedStateMachine:
        return factory()

    target: Any = build if seed is None else hypothesis_seed(seed)(build)
    run_state_machine_as_test(cast(Any, target), settings=run_settings)


def failing_program(exc: BaseException) -> list[str]:
    """The program Hypothesis printed for ``exc``: every ``state...`` line of its notes."""
    notes: Sequence[str] = getattr(exc, "__notes__", ())
    return [line for line in notes if line.startswith("state")]


#: Where Hypothesis marks rule and invariant functions (``hypothesis.stateful``).
_RULE_MARKER = "hypothesis_stateful_rule"
_INITIALIZE_MARKER = "hypothesis_stateful_initialize_rule"
_INVARIANT_MARKER = "hypothesis_stateful_invariant"


def _marked(machine_class: type[RuleBasedStateMachine], marker: str) -> dict[str, Any]:
    return {
        name: getattr(member, marker)
        for name, member in inspect.getmembers(machine_class)
        if getattr(member, marker, None) is not None
    }


def program_rules(program: Iterable[str], machine_class: type[RuleBasedStateMachine]) -> list[str]:
    """Only the rule calls of a printed program (no construction, invariants or teardown).

    ``@initialize`` rules count: they are steps of the program like any other.
    """
    rules = _marked(machine_class, _RULE_MARKER) | _marked(machine_class, _INITIALIZE_MARKER)
    out = []
    for line in program:
        match = _STEP.match(line.strip())
        if match and match["name"] in rules:
            out.append(line.strip())
    return out


def _kwargs(text: str) -> dict[str, Any]:
    """``mode='crash', n=3`` -> ``{"mode": "crash", "n": 3}`` (literals only, never eval)."""
    if not text.strip():
        return {}
    call = ast.parse(f"f({text})", mode="eval").body
    if not isinstance(call, ast.Call) or call.args:
        raise ValueError(f"only keyword arguments can be replayed: {text!r}")
    return {str(kw.arg): ast.literal_eval(kw.value) for kw in call.keywords}


def _check_invariants(machine: RuleBasedStateMachine) -> None:
    for inv in _marked(type(machine), _INVARIANT_MARKER).values():
        if all(pre(machine) for pre in inv.preconditions):
            inv.function(machine)


def replay(program: Iterable[str], machine: RuleBasedStateMachine) -> None:
    """Run a printed program's rule calls on ``machine``, checking invariants after each.

    Teardown always runs.  Lines that are not rule calls are ignored, so the
    whole printed block can be pasted in.
    """
    steps = program_rules(program, type(machine))
    try:
        _check_invariants(machine)
        for line in steps:
            match = _STEP.match(line)
            assert match is not None
            getattr(machine, match["name"])(**_kwargs(match["args"]))
            _check_invariants(machine)
    finally:
        machine.teardown()
