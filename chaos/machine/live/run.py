"""Running the live machine: exploring under a profile, replaying saved regressions.

Both are synchronous and belong on a worker thread (the test runs them with
``asyncio.to_thread``): every step goes back to the session loop through the
setup's :class:`~chaos.machine.live.bridge.SessionLoopBridge`.

A failing exploration saves the shrunk program Hypothesis printed as a
regression file (:mod:`chaos.machine.live.regressions`) and raises the failure
with the file's path in its notes.  ``hypothesis.errors.Flaky`` is never
caught here: on a live system it is a finding to investigate (a suite defect
until the target's source shows otherwise), not noise.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from hypothesis import settings

from chaos.machine.base import MachineRuntime
from chaos.machine.live.machine import LiveClusterMachine
from chaos.machine.live.profiles import CHUNK_EXAMPLES, LiveProfile, chunk_seed
from chaos.machine.live.regressions import Regression, save_regression
from chaos.machine.live.setup import LiveSetup
from chaos.machine.run import failing_program, replay, run_machine
from chaos.record.history import History


def new_runtime(setup: LiveSetup, step_timeout: float = 180.0) -> MachineRuntime:
    """A runtime on the setup's bridge; each example replaces its history with its own."""
    return MachineRuntime(setup.bridge, History(seed=setup.seed), step_timeout=step_timeout)


def explore(
    setup: LiveSetup,
    profile: LiveProfile | settings,
    *,
    seed: int,
    regressions_dir: Path | None,
    machine: type[LiveClusterMachine] = LiveClusterMachine,
) -> MachineRuntime:
    """Run ``profile``'s examples (or explicit settings); on failure save the program
    under ``regressions_dir``, then re-raise.  A profile with a time budget explores in
    chunks (:data:`~chaos.machine.live.profiles.CHUNK_EXAMPLES` examples, each chunk a
    Hypothesis run of its own seed) until the budget or ``max_examples`` is spent."""
    if isinstance(profile, settings):
        return _explore_once(setup, profile, seed, regressions_dir, machine)
    if profile.minutes is None:
        return _explore_once(setup, profile.hypothesis_settings(), seed, regressions_dir, machine)
    ends = time.monotonic() + 60.0 * profile.minutes
    asked, chunk = 0, 0
    runtime = None
    while asked < profile.max_examples and (runtime is None or time.monotonic() < ends):
        examples = min(CHUNK_EXAMPLES, profile.max_examples - asked)
        this_seed = chunk_seed(seed, chunk)
        setup.stats.chunk_seeds.append(this_seed)
        try:
            runtime = _explore_once(
                setup, profile.hypothesis_settings(examples), this_seed, regressions_dir, machine
            )
        except BaseException as exc:
            exc.add_note(f"chunk {chunk} of the exploration, hypothesis seed {this_seed}")
            raise
        asked, chunk = asked + examples, chunk + 1
    assert runtime is not None
    return runtime


def _explore_once(
    setup: LiveSetup,
    run_settings: settings,
    seed: int,
    regressions_dir: Path | None,
    machine: type[LiveClusterMachine],
) -> MachineRuntime:
    runtime = new_runtime(setup)
    try:
        run_machine(lambda: machine(runtime, setup), run_settings, seed=seed)
    except AssertionError as exc:
        program = failing_program(exc)
        if regressions_dir is not None and program:
            path = save_regression(
                regressions_dir,
                machine=machine.__name__,
                seed=seed,
                program=program,
                error=f"{type(exc).__name__}: {exc}",
            )
            exc.add_note(f"saved as a regression: {path}")
        raise
    return runtime


def replay_program(
    setup: LiveSetup,
    program: Sequence[str],
    machine: type[LiveClusterMachine] = LiveClusterMachine,
) -> MachineRuntime:
    """Run a printed program once on a fresh machine (invariants after every step, the
    full checkers at its end)."""
    runtime = new_runtime(setup)
    replay(program, machine(runtime, setup))
    return runtime


def replay_regression(
    setup: LiveSetup,
    regression: Regression,
    machine: type[LiveClusterMachine] = LiveClusterMachine,
) -> MachineRuntime:
    """Run the saved program once on a fresh machine (invariants after every step)."""
    if regression.machine != machine.__name__:
        raise ValueError(f"{regression.path}: saved by {regression.machine!r}, not {machine}")
    return replay_program(setup, regression.program, machine)
