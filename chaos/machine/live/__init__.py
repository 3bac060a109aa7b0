"""The Hypothesis state machine over one live cluster of the target (issue 12).

* :mod:`.machine`: :class:`LiveClusterMachine`, the rule groups put together;
* :mod:`.example`: one example without rules (lifecycle, shared helpers, the per-step
  invariant); :mod:`.judging`: its teardown (heal, converge, every checker);
* :mod:`.rules_runs`, :mod:`.rules_replicas`, :mod:`.rules_links`,
  :mod:`.rules_sweeper`, :mod:`.rules_time`: the rule groups;
* :mod:`.constants`: replicas, load bounds, every wait's deadline;
* :mod:`.model`: :class:`LiveModel`, what the cluster should look like (pure);
* :mod:`.bridge`: sync rules -> the session's event loop;
* :mod:`.setup`: what outlives an example (cluster, bridge, tallies, known findings);
* :mod:`.profiles`: ``ci`` and ``deep``;
* :mod:`.regressions`: failing programs saved as JSON and replayed;
* :mod:`.run`: :func:`explore` and :func:`replay_regression`.
"""

from chaos.machine.live.bridge import SessionLoopBridge
from chaos.machine.live.constants import CANCEL_REASON, REPLICAS
from chaos.machine.live.machine import LiveClusterMachine
from chaos.machine.live.model import LiveModel
from chaos.machine.live.profiles import PROFILES, LiveProfile, active_profile
from chaos.machine.live.regressions import (
    REGRESSIONS_DIR,
    Regression,
    load_regression,
    load_regressions,
    save_regression,
)
from chaos.machine.live.run import explore, replay_program, replay_regression
from chaos.machine.live.setup import ExampleFacts, Explain, LiveSetup, LiveStats

__all__ = [
    "CANCEL_REASON",
    "PROFILES",
    "REGRESSIONS_DIR",
    "REPLICAS",
    "ExampleFacts",
    "Explain",
    "LiveClusterMachine",
    "LiveModel",
    "LiveProfile",
    "LiveSetup",
    "LiveStats",
    "Regression",
    "SessionLoopBridge",
    "active_profile",
    "explore",
    "load_regression",
    "load_regressions",
    "replay_program",
    "replay_regression",
    "save_regression",
]
