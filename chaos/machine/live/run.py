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

from collections.abc import Sequence
from pathlib import Path

from hypothesis import settings

from chaos.machine.base import MachineRuntime
from chaos.machine.live.machine import LiveClusterMachine
from chaos.machine.live.profiles import LiveProfile
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
    under ``regressions_dir``, then re-raise."""
    runtime = new_runtime(setup)
    run_settings = profile if isinstance(profile, settings) else profile.hypothesis_settings()
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
