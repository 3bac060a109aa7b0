"""Arms: what the report draws side by side and compares (usually one per build label).

A compare campaign of a build against itself writes one build label on both
sides, so labels alone cannot tell baseline from candidate.  ``summary.json``
lists the campaign's legs in the order they ran, each with its build, side
and number of waves, and waves are appended leg by leg; when those counts
add up to the rows of ``waves.csv`` (and every leg's build matches its rows),
each row gets its leg's side.  The arm is then the build label when the two
sides ran different builds, and ``baseline (label)`` / ``candidate (label)``
when they ran the same one.  Without usable legs the arm is the build label.

A sample belongs to the arm of the last wave of its build started by its time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from chaos.campaign.report.data import Table

SIDES = ("baseline", "candidate")


def _leg_sides(waves: Table, legs: Sequence[Any]) -> list[str] | None:
    """Each wave row's side from the legs' wave counts, or None if they do not fit."""
    if not legs or not all(isinstance(leg, Mapping) for leg in legs):
        return None
    builds = waves.txt("build")
    sides: list[str] = []
    for leg in legs:
        count, side = leg.get("waves"), leg.get("side")
        if not isinstance(count, int) or side not in SIDES:
            return None
        rows = builds[len(sides) : len(sides) + count]
        if len(rows) != count or any(b != leg.get("build") for b in rows):
            return None
        sides += [str(side)] * count
    return sides if len(sides) == len(waves) else None


def wave_arms(waves: Table, summary: Mapping[str, Any]) -> NDArray[np.str_]:
    """The arm of every wave row."""
    builds = waves.txt("build")
    sides = _leg_sides(waves, summary.get("legs") or [])
    if sides is None:
        return builds.copy()
    by_side = {s: {b for b, x in zip(builds, sides, strict=True) if x == s} for s in SIDES}
    if by_side["baseline"] and by_side["baseline"] == by_side["candidate"]:
        return np.array([f"{s} ({b})" for b, s in zip(builds, sides, strict=True)], dtype=str)
    return builds.copy()


def sample_arms(samples: Table, waves: Table, arms: NDArray[np.str_]) -> NDArray[np.str_]:
    """The arm of every sample: that of the last wave of its build started by its time."""
    out = samples.txt("build").copy().astype(object)
    starts, builds = waves.num("started_at"), waves.txt("build")
    t = samples.num("t")
    for build in np.unique(samples.txt("build")):
        mine = np.flatnonzero(builds == build)
        if len(mine) == 0:
            continue
        mine = mine[np.argsort(starts[mine], kind="stable")]
        rows = samples.txt("build") == build
        at = np.searchsorted(starts[mine], t[rows], side="right") - 1
        out[rows] = arms[mine[np.clip(at, 0, len(mine) - 1)]]
    return out.astype(str)
