"""Hypothesis state machines over chaos operations.

:class:`ChaosMachine` is the base (one loop, one history, a registry of
active faults healed and proven on teardown); :class:`PgLinkMachine` runs it
on Postgres behind a Toxiproxy link.  Run either with :func:`run_machine`::

    with machine_loop() as loop:
        runtime = MachineRuntime(loop, History(seed))
        run_machine(lambda: PgLinkMachine(runtime, setup), machine_settings())
"""

from chaos.machine.base import (
    ActiveFault,
    ChaosMachine,
    MachineRuntime,
    MachineTeardownError,
)
from chaos.machine.durability import check_durability
from chaos.machine.loop import MachineLoop, StepTimeout, machine_loop
from chaos.machine.pg_link import ALL_FAULTS, PgLinkMachine, PgLinkSetup, prepare_table
from chaos.machine.run import (
    failing_program,
    machine_settings,
    program_rules,
    replay,
    run_machine,
)

__all__ = [
    "ALL_FAULTS",
    "ActiveFault",
    "ChaosMachine",
    "MachineLoop",
    "MachineRuntime",
    "MachineTeardownError",
    "PgLinkMachine",
    "PgLinkSetup",
    "StepTimeout",
    "check_durability",
    "failing_program",
    "machine_loop",
    "machine_settings",
    "prepare_table",
    "program_rules",
    "replay",
    "run_machine",
]
