"""Cancels and reaps, summarised: cancel-ack percentiles per outcome, reap times per kill."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from chaos.campaign.report.data import Floats, Table

KILL = "kill"
REAPED = "reaped"
ENDED = "ended"


def percentiles(values: Floats) -> dict[str, float | int]:
    """Count, p50, p99 and max of the finite values (count 0 and nothing else when none)."""
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return {"count": 0}
    return {
        "count": len(values),
        "p50": float(np.percentile(values, 50)),
        "p99": float(np.percentile(values, 99)),
        "max": float(values.max()),
    }


def cancel_stats(cancels: Table) -> dict[str, Any]:
    """Ack latency over all cancels and per outcome."""
    outcomes = cancels.txt("outcome")
    ack = cancels.num("ack_ms")
    return {
        "all": percentiles(ack),
        "by_outcome": {o: percentiles(ack[outcomes == o]) for o in cancels.distinct("outcome")},
    }


@dataclass(frozen=True)
class ReapAfterKill:
    """What followed one kill, up to the next kill."""

    replica: str
    kill_t: float
    reaped: int
    ended: int
    first_reaped_after_s: float | None
    last_reaped_after_s: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reap_after_kills(reap: Table) -> list[ReapAfterKill]:
    """Per kill, the reaped and ended events before the next kill, timed from the kill."""
    order = np.argsort(reap.num("t"), kind="stable")
    t, events, replicas = reap.num("t")[order], reap.txt("event")[order], reap.txt("replica")[order]
    kills = np.flatnonzero(events == KILL)
    out = []
    for k, start in enumerate(kills):
        stop = kills[k + 1] if k + 1 < len(kills) else len(t)
        window_t, window_e = t[start + 1 : stop], events[start + 1 : stop]
        reaped_after = window_t[window_e == REAPED] - t[start]
        out.append(
            ReapAfterKill(
                replica=str(replicas[start]),
                kill_t=float(t[start]),
                reaped=len(reaped_after),
                ended=int((window_e == ENDED).sum()),
                first_reaped_after_s=float(reaped_after.min()) if len(reaped_after) else None,
                last_reaped_after_s=float(reaped_after.max()) if len(reaped_after) else None,
            )
        )
    return out
