"""The Hypothesis state machine over one live cluster of the target (issue 12).

* :mod:`.machine`: :class:`LiveClusterMachine`, its rules and per-step invariant;
* :mod:`.model`: :class:`LiveModel`, what the cluster should look like (pure);
* :mod:`.bridge`: sync rules -> the session's event loop;
* :mod:`.setup`: what outlives an example (cluster, bridge, tallies, known findings);
* :mod:`.profiles`: ``ci`` and ``deep``;
* :mod:`.regressions`: failing programs saved as JSON and replayed;
* :mod:`.run`: :func:`explore` and :func:`replay_regression`.
"""

from chaos.machine.live.bridge import SessionLoopBridge
from chaos.machine.live.machine import CANCEL_REASON, REPLICAS, LiveClusterMachine
from chaos.machine.live.model import LiveModel
from chaos.machine.live.profiles import PROFILES, LiveProfile, active_profile
from chaos.machine.live.regressions import (
    REGRESSIONS_DIR,
    Regression,
    load_regression,
    load_regressions,
    save_regression,
)
from chaos.machine.live.run import explore, replay_regression
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
    "replay_regression",
    "save_regression",
]
