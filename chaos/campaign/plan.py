"""A campaign as a list of legs: one cluster lifetime each, with its build, size and phases.

``sweep`` is one leg per replica count; ``compare`` interleaves the two builds
over its repetitions (ABBA order: A B, B A, A B, ...), so neither build always
runs first on a machine that warms up or slows down; every other campaign is
one leg.  Pure data, so the plan is unit-tested and printed before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaos.campaign.options import CampaignOptions, PhaseSpec

#: A burst's planning estimate beyond the mock latency: cluster start, convergence, teardown.
LEG_OVERHEAD_S = 25.0
#: The kill's reap bound (stale 60 s + sweep 5 s) plus the rejoin, for the estimate.
KILL_ESTIMATE_S = 80.0


@dataclass(frozen=True)
class Leg:
    """One cluster lifetime: ``build`` with ``replicas`` replicas runs ``phases``."""

    index: int
    name: str
    build: str
    replicas: int
    phases: tuple[PhaseSpec, ...]
    cancels: int = 0
    kill: bool = False
    #: ``baseline`` or ``candidate`` in a compare, else empty.
    side: str = ""
    #: Judge in segments of at most this long (soak), each its own scenario frame.
    segment_s: float | None = None
    #: False: loomcycle without cluster mode, one process driven directly (the baseline).
    cluster_mode: bool = True


def _leg(opts: CampaignOptions, index: int, name: str, **changes: object) -> Leg:
    fields: dict[str, object] = {
        "build": opts.build,
        "replicas": opts.replicas,
        "phases": opts.phases,
        "cancels": opts.cancels,
        "kill": opts.kill,
        "segment_s": opts.segment_s,
        "cluster_mode": opts.cluster_mode,
    }
    fields.update(changes)
    return Leg(index=index, name=name, **fields)  # type: ignore[arg-type]


def plan_legs(opts: CampaignOptions) -> list[Leg]:
    if opts.campaign == "sweep":
        return [_leg(opts, i, f"r{n}", replicas=n) for i, n in enumerate(opts.replica_counts)]
    if opts.campaign == "compare":
        if opts.baseline_build is None or opts.candidate_build is None:
            raise ValueError("compare needs a baseline and a candidate build")
        legs: list[Leg] = []
        for rep in range(1, opts.repetitions + 1):
            pair = (("baseline", opts.baseline_build), ("candidate", opts.candidate_build))
            for side, build in pair if rep % 2 else pair[::-1]:
                phases = tuple(PhaseSpec(f"rep{rep}", p.scale, p.duration_s) for p in opts.phases)
                name = f"rep{rep}-{side}"
                legs.append(_leg(opts, len(legs), name, build=build, phases=phases, side=side))
        return legs
    return [_leg(opts, 0, opts.campaign)]


def segments(phases: tuple[PhaseSpec, ...], segment_s: float | None) -> list[tuple[PhaseSpec, ...]]:
    """The phases cut into segments of at most ``segment_s`` seconds (bursts are never cut).

    A soak is judged segment by segment on one cluster, each segment in its own
    scenario frame with its own id prefix: every database snapshot reads only the
    segment's runs and each segment's history is saved and dropped, so hours of
    load cost memory and snapshot time per segment, not per campaign.
    """
    if segment_s is None:
        return [phases]
    out: list[tuple[PhaseSpec, ...]] = []
    current: list[PhaseSpec] = []
    room = segment_s
    for phase in phases:
        left = phase.duration_s
        while left is not None and left > 1e-9:
            if room <= 1e-9:
                out.append(tuple(current))
                current, room = [], segment_s
            take = min(left, room)
            current.append(PhaseSpec(phase.name, phase.scale, take))
            left -= take
            room -= take
        if phase.duration_s is None:
            current.append(phase)
    if current:
        out.append(tuple(current))
    return out


def estimate_s(legs: list[Leg], latency_s: float) -> float:
    """A rough planned duration (for the progress bar's remaining time), never a bound."""
    total = 0.0
    for leg in legs:
        total += LEG_OVERHEAD_S + (KILL_ESTIMATE_S if leg.kill else 0.0)
        for phase in leg.phases:
            total += phase.duration_s if phase.duration_s is not None else 2 * latency_s + 5
    return total
