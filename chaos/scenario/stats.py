"""Acceptance bounds a scenario judges an observed count against.  Pure, no I/O.

A scenario that injects a fault at a configured rate (the provider profile's
15 % of 429s) proves the rate from the data: the count it saw must lie in an
interval the configured rate makes all but certain.  The interval is exact,
not a normal approximation, because the counts are small (a few hundred runs,
and a fallback probability of 0.15^3 gives a handful of events at most).
"""

from __future__ import annotations

import math


def binomial_interval(n: int, p: float, confidence: float) -> tuple[int, int]:
    """The exact two-sided acceptance interval [lo, hi] of Binomial(n, p): each tail
    outside it has probability at most (1 - confidence) / 2.

    Each tail is cut as far in as that allows, so the interval is the narrowest
    with that property.  ``n`` must stay below 1030: the probabilities are floats,
    and ``math.comb(n, n // 2)`` no longer fits one (``OverflowError``).
    """
    tail = (1.0 - confidence) / 2
    pmf = [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
    lo, below = 0, 0.0
    while below + pmf[lo] <= tail:
        below += pmf[lo]
        lo += 1
    hi, above = n, 0.0
    while above + pmf[hi] <= tail:
        above += pmf[hi]
        hi -= 1
    return lo, hi
