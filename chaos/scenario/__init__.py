"""Scenarios: the frame every chaos test runs in, and the helpers its steps share.

* :class:`~chaos.scenario.run.ScenarioRun` (a target's ports open it, e.g.
  :func:`chaos.sut.loomcycle.ports.scenario_run`): records the bounds,
  samples the database, waits for convergence, records the
  end state the checkers read, and runs them;
* :mod:`~chaos.faults.replica`: replica ids to kill / stop / freeze faults with
  probes that mean something for a replica;
* :mod:`~chaos.scenario.cancels`: cancels as recorded operations;
"""

from chaos.faults.replica import (
    ProbeInconclusive,
    freeze_replica,
    kill_replica,
    rejoin,
    stop_replica,
)
from chaos.scenario.cancels import StormCanceller, non_owner, other_replicas, recorded_cancel
from chaos.scenario.convergence import OwnerAnswer, convergence_budget, unsettled
from chaos.scenario.run import Convergence, ScenarioPorts, ScenarioRun

__all__ = [
    "Convergence",
    "OwnerAnswer",
    "ProbeInconclusive",
    "ScenarioPorts",
    "ScenarioRun",
    "StormCanceller",
    "convergence_budget",
    "freeze_replica",
    "kill_replica",
    "non_owner",
    "other_replicas",
    "recorded_cancel",
    "rejoin",
    "stop_replica",
    "unsettled",
]
