"""Seeded schedules of timed operations and faults, as data (Jepsen's generators, small).

A test states what should happen, with ranges where it wants chance::

    schedule = Schedule.build(seed, [
        Load(duration_s=20),
        At(between=(5, 10), do=Fault("kill", target=AnyOf(replicas))),
        After(between=(3, 8), do=Heal()),
        Quiesce(),
    ])

and gets a concrete, frozen list of :class:`Step` with every choice drawn from
the seed's ``faults`` stream: the same seed gives the same schedule, byte for
byte (:meth:`Schedule.to_json`).  :func:`run_schedule` runs it against the
test's callables (``{"load": ..., "kill": ...}``) and records the plan and
when each step really ran in the history (note ``schedule``).

Nothing here knows HTTP, Docker or the target: a step is a name, a target and
parameters; what they mean is the test's business.
"""

from chaos.schedule.plan import ACTION_KINDS, STEP_KINDS, Schedule, ScheduleError, Step, StepKind
from chaos.schedule.runner import (
    Action,
    Opened,
    ScheduleRun,
    StepRun,
    StepTimeout,
    run_schedule,
)
from chaos.schedule.spec import (
    DEFAULT_TIMEOUT_S,
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
    Quiesce,
    Until,
)

__all__ = [
    "ACTION_KINDS",
    "DEFAULT_TIMEOUT_S",
    "STEP_KINDS",
    "Action",
    "After",
    "AnyOf",
    "At",
    "Between",
    "Choose",
    "Chosen",
    "Fault",
    "Heal",
    "Item",
    "Load",
    "Opened",
    "Quiesce",
    "Schedule",
    "ScheduleError",
    "ScheduleRun",
    "Step",
    "StepKind",
    "StepRun",
    "StepTimeout",
    "Until",
    "run_schedule",
]
