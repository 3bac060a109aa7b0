"""How evenly the load fell on the replicas (``summary.json``'s ``load_split``).

Three numbers: the largest replica's share of all runs; the coefficient of
variation of the per-replica counts (population standard deviation over the
mean); and the writeup's "spread", (max - min) / mean (its 8-hour soak:
950,633 / 951,189 / 950,413 / 951,765 runs, a spread of 0.14 %).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from chaos.campaign.report.data import CampaignDataError


@dataclass(frozen=True)
class LoadSpread:
    runs: dict[str, float]
    total: float
    max_share: float
    cv: float
    spread: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_spread(split: Mapping[str, Any]) -> LoadSpread | None:
    """The spread of a ``{replica: runs}`` map; None when it is empty or holds no run."""
    runs: dict[str, float] = {}
    for replica, count in split.items():
        if isinstance(count, bool) or not isinstance(count, int | float):
            raise CampaignDataError(
                f"summary.json load_split[{replica!r}]: {count!r} is not a number"
            )
        runs[str(replica)] = float(count)
    counts = np.array(list(runs.values()), dtype=np.float64)
    if len(counts) == 0 or counts.sum() <= 0:
        return None
    mean = float(counts.mean())
    return LoadSpread(
        runs=runs,
        total=float(counts.sum()),
        max_share=float(counts.max() / counts.sum()),
        cv=float(counts.std() / mean),
        spread=float((counts.max() - counts.min()) / mean),
    )
