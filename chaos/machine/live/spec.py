"""The cluster the live machine runs on.

Three replicas, crash timers (stale 60 s, sweep 5 s: the shortest safe
setting, nothing here cuts Postgres), the per-user cap of 4, and mock runs of
~3 s: long enough that a rule can find a run running and cancel it or kill
its owner, short enough that every run ends inside a graceful stop's 5 s drain
(runs longer than the drain are LC-002, which has its own scenario).

:data:`CIRCUIT_IDS` circuit channel pairs are declared at boot, so the machine
can start three-agent circuits (``start_circuit``).  Their agents make several
provider calls each and wait on each other's channels, so a circuit outlasts
the drain: a stop that meets one is LC-002's case, counted as known.
"""

from __future__ import annotations

from chaos.sut.loomcycle.settings import (
    CRASH_TIMERS,
    MockProvider,
    loomcycle_spec,
)

#: Circuit ids declared at boot; each is used once per cluster (channels are global queues
#: that outlive an example), so a cluster runs at most this many circuits.
CIRCUIT_IDS = 64

LIVE_MACHINE_SPEC = loomcycle_spec(
    replicas=3,
    timers=CRASH_TIMERS,
    mock=MockProvider(latency_ms=3_000, jitter_ms=300),
    max_runs_per_user=4,
    circuits=CIRCUIT_IDS,
)
