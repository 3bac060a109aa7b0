"""What a scenario needs of a cluster (:mod:`chaos.cluster.view`), and error wording.

Keeping the scenario code on that narrow surface is what lets its logic be
tested without Docker or the target.
"""

from __future__ import annotations

from chaos.cluster.view import ScenarioCluster, client_for

__all__ = ["ScenarioCluster", "client_for", "describe_error"]


def describe_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]
