"""Scenarios: the frame every chaos test runs in, and the helpers its steps share.

* :func:`~chaos.scenario.cluster_ports.scenario_run` / :class:`~chaos.scenario.run.ScenarioRun`:
  records the bounds, samples the database, waits for convergence, records the
  end state the checkers read, and runs them;
* :mod:`~chaos.scenario.params`: the bounds from a :class:`~chaos.cluster.spec.ClusterSpec`;
* :mod:`~chaos.scenario.targets`: replica ids to kill / stop / freeze faults with
  probes that mean something for a replica;
* :mod:`~chaos.scenario.cancels`: cancels as recorded operations;
* :mod:`~chaos.scenario.specs`: the clusters the scenarios use.
"""

from chaos.scenario.cancels import StormCanceller, non_owner, other_replicas, recorded_cancel
from chaos.scenario.cluster_ports import LoomcyclePorts, lb_client, replica_clients, scenario_run
from chaos.scenario.convergence import OwnerAnswer, convergence_budget, unsettled
from chaos.scenario.params import params_for
from chaos.scenario.run import Convergence, ScenarioPorts, ScenarioRun
from chaos.scenario.specs import (
    CANCEL_SPEC,
    CRASH_SPEC,
    PROVIDER_STORM_SPEC,
    QUEUEING_SPEC,
    SMOKE_SPEC,
)
from chaos.scenario.targets import (
    ProbeInconclusive,
    freeze_replica,
    kill_replica,
    rejoin,
    stop_replica,
)

__all__ = [
    "CANCEL_SPEC",
    "CRASH_SPEC",
    "PROVIDER_STORM_SPEC",
    "QUEUEING_SPEC",
    "SMOKE_SPEC",
    "Convergence",
    "LoomcyclePorts",
    "OwnerAnswer",
    "ProbeInconclusive",
    "ScenarioPorts",
    "ScenarioRun",
    "StormCanceller",
    "convergence_budget",
    "freeze_replica",
    "kill_replica",
    "lb_client",
    "non_owner",
    "other_replicas",
    "params_for",
    "recorded_cancel",
    "rejoin",
    "replica_clients",
    "scenario_run",
    "stop_replica",
    "unsettled",
]
