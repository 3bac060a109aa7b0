"""A tiny second target, test-only: proves the suite's target seam fits a system that
is not loomcycle.

``service/`` is the toy itself (Go, ~450 lines with comments): runs owned by a
replica, a per-user quota and a reaper, in one shared Postgres.  Beside it, the
same pieces any target supplies: ``adapter`` (launch recipe, client factory),
``client`` (the RunClient), ``sql`` (state reads), ``audit`` (write triggers),
``ports`` (the ScenarioPorts and the scenario frame), ``cluster`` (specs and a
cluster with the toy's adapter) and ``build`` (binary and image).  Nothing here
imports :mod:`chaos.sut.loomcycle`.
"""

from tests.toy.adapter import DEFECT_ENV, ToyAdapter
from tests.toy.build import ensure_toy_image
from tests.toy.client import ToyClient
from tests.toy.cluster import DEFECT_SPEC, TOY_SPEC, toy_cluster, toy_images
from tests.toy.ports import ToyPorts, toy_scenario_run
from tests.toy.sql import ToyStateReader

__all__ = [
    "DEFECT_ENV",
    "DEFECT_SPEC",
    "TOY_SPEC",
    "ToyAdapter",
    "ToyClient",
    "ToyPorts",
    "ToyStateReader",
    "ensure_toy_image",
    "toy_cluster",
    "toy_images",
    "toy_scenario_run",
]
