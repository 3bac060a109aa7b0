"""The loomcycle adapter: the only code that knows loomcycle's URLs, JSON, env and SQL.

Modules: ``config`` (a replica's env, config file and command), ``client``
(HTTP/SSE), ``cancel`` (sorting cancel answers), ``sql`` (state reads),
``audit`` (the suite's own write triggers), ``contract`` (self-check), and
``adapter`` (the :class:`~chaos.sut.base.TargetAdapter`).
"""

from chaos.sut.loomcycle.adapter import LoomcycleAdapter, cluster_ready
from chaos.sut.loomcycle.cancel import classify_cancel
from chaos.sut.loomcycle.client import LoomcycleClient, StreamError
from chaos.sut.loomcycle.sql import LoomcycleStateReader

__all__ = [
    "LoomcycleAdapter",
    "LoomcycleClient",
    "LoomcycleStateReader",
    "StreamError",
    "classify_cancel",
    "cluster_ready",
]
