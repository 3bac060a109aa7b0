"""Small helpers that shape a verdict's evidence the same way in every checker."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from chaos.record.history import FaultWindow
from chaos.record.readers import run_to_dict
from chaos.record.vocabulary import RunRow


def row_brief(row: RunRow) -> dict[str, Any]:
    """The columns of a run row a reader needs to judge a verdict."""
    brief = run_to_dict(row)
    del brief["last_heartbeat_at"]
    return brief


def capped(items: Sequence[Any], limit: int) -> list[Any]:
    """The first ``limit`` offenders: a verdict lists examples, and counts the rest."""
    return list(items[:limit])


def unique_windows(windows: Iterable[FaultWindow]) -> list[FaultWindow]:
    """Fault windows without repeats (several offenders often share one fault)."""
    seen: set[tuple[str, str, float]] = set()
    out = []
    for w in windows:
        ident = (w.name, w.target, w.start)
        if ident not in seen:
            seen.add(ident)
            out.append(w)
    return out


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile of already sorted values (no interpolation: a real sample)."""
    if not sorted_values:
        raise ValueError("quantile of no values")
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def distribution(values: Iterable[float], min_p99_samples: int) -> dict[str, Any]:
    """n, p50, p99 and max; ``p99_judged`` says whether p99 rests on enough samples."""
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}
    return {
        "n": len(ordered),
        "p50": round(quantile(ordered, 0.50), 3),
        "p99": round(quantile(ordered, 0.99), 3),
        "max": round(ordered[-1], 3),
        "p99_judged": len(ordered) >= min_p99_samples,
    }


def as_epoch(value: object) -> float | None:
    """A database time as epoch seconds: audit rows hold ``to_jsonb`` timestamps (ISO text)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            return None
    return None
