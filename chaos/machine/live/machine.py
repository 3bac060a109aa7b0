"""``LiveClusterMachine``: Hypothesis rules over one live 3-replica cluster of the target.

Rules are the operations and faults the scenarios already use, grouped by kind:

* :mod:`.rules_runs`: the initial load, start runs (through the load balancer
  or one replica), cancel a run (through its owner, a non-owner or a named
  replica), cancel one run from two replicas at once;
* :mod:`.rules_replicas`: SIGKILL a replica (restarted under the same id only
  once the survivors reaped it), kill a run's owner while a cancel of that run
  is in flight, freeze one briefly, stop one gracefully, restart;
* :mod:`.rules_links`: cut a replica's link to Postgres briefly, heal it;
* :mod:`.rules_sweeper`: hold and release the replicas sweeper's lock;
* :mod:`.rules_time`: let the next sweep or the stale threshold pass.

One replica is out at a time.  Each example resets the cluster, runs under
its own id prefix and History in a scenario frame
(:func:`chaos.sut.loomcycle.ports.scenario_run`), checks the model's
invariant after every step (:meth:`LiveModel.problems`), and on teardown
heals everything, converges and hands the whole history to the full checkers
(:mod:`.judging`).  A failing verdict whose signature a write-up in
``docs/findings/`` explains is counted as known (``LiveSetup.explain``), not
failed.
"""

from __future__ import annotations

from chaos.machine.live.judging import JudgedExample
from chaos.machine.live.rules_links import LinkFaultRules
from chaos.machine.live.rules_replicas import ReplicaFaultRules
from chaos.machine.live.rules_runs import RunRules
from chaos.machine.live.rules_sweeper import SweeperLockRules
from chaos.machine.live.rules_time import TimeRules


class LiveClusterMachine(
    RunRules, ReplicaFaultRules, LinkFaultRules, SweeperLockRules, TimeRules, JudgedExample
):
    """See the module docstring.  Build with ``lambda: LiveClusterMachine(runtime, setup)``."""
