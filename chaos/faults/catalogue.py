"""The standard link-fault catalogue: every Toxiproxy fault by name, with defaults.

One table, so the Postgres-link tests, the HTTP-link tests, state machines and
campaigns name and build the same faults the same way.  Defaults are sized so
each effect is measurable in about a second and a heal costs no more.
"""

from __future__ import annotations

from collections.abc import Callable

from chaos.faults.base import Fault
from chaos.faults.link import (
    Bandwidth,
    BlackHole,
    Latency,
    LimitData,
    LinkTarget,
    ResetCut,
    ResetPeer,
    SlowClose,
    Stall,
)

LinkFaultFactory = Callable[[LinkTarget], Fault]

LINK_FAULTS: dict[str, LinkFaultFactory] = {
    "reset_cut": ResetCut,
    "reset_peer": ResetPeer,
    "black_hole": BlackHole,
    "black_hole_up": lambda link: BlackHole(link, direction="up"),
    "black_hole_down": lambda link: BlackHole(link, direction="down"),
    "stall": Stall,
    "stall_up": lambda link: Stall(link, direction="up"),
    "stall_down": lambda link: Stall(link, direction="down"),
    "latency": lambda link: Latency(link, latency_ms=300, jitter_ms=50),
    "bandwidth_down": lambda link: Bandwidth(link, rate_kb=200),
    "bandwidth_up": lambda link: Bandwidth(link, rate_kb=200, direction="up"),
    "slow_close": lambda link: SlowClose(link, delay_ms=1500),
    "limit_data_down": lambda link: LimitData(link, limit_bytes=4096),
    "limit_data_up": lambda link: LimitData(link, limit_bytes=4096, direction="up"),
}
