"""What changes when a leg runs its target without cluster mode (the single-binary baseline).

Some checkers judge what only cluster mode writes (the target says which, and
why: :data:`chaos.sut.loomcycle.campaign.CLUSTER_ONLY`).  Without cluster mode
they would judge an empty table or a column nobody fills, so their verdicts are
replaced by a vacuous one that says so: not applicable, with the reason, never a
pass on nothing.  Every other checker runs as on a cluster.
"""

from __future__ import annotations

from collections.abc import Sequence

from chaos.sut.loomcycle.campaign import CLUSTER_ONLY
from chaos.verdict import Verdict

__all__ = ["CLUSTER_ONLY", "judged_checks", "not_applicable", "with_not_applicable"]


def not_applicable(invariant: str) -> Verdict:
    """A vacuous verdict, allowed, whose summary and evidence say why it judges nothing."""
    reason = CLUSTER_ONLY[invariant]
    return Verdict.vacuous(
        invariant,
        f"not applicable without cluster mode: {reason}",
        not_applicable="single-binary mode",
    ).allowing_vacuous()


def judged_checks(all_checks: Sequence[str], cluster_mode: bool) -> list[str]:
    """The checkers that run for a leg: all of them, or all but the cluster-only ones."""
    return [c for c in all_checks if cluster_mode or c not in CLUSTER_ONLY]


def with_not_applicable(
    verdicts: Sequence[Verdict], all_checks: Sequence[str], cluster_mode: bool
) -> list[Verdict]:
    """``verdicts`` plus a not-applicable verdict per cluster-only checker, in checker order."""
    if cluster_mode:
        return list(verdicts)
    by_name = {v.invariant: v for v in verdicts}
    for name in all_checks:
        if name in CLUSTER_ONLY:
            if name in by_name:
                raise ValueError(f"{name} was judged although it is not applicable")
            by_name[name] = not_applicable(name)
    return [by_name[name] for name in all_checks if name in by_name]
