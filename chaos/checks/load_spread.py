"""load_spread: how the work spread over the replicas (reported; judged only against bounds).

- per-replica run counts and each replica's share (owner from the final
  snapshot, else the owner the client was told);
- cross-replica cancel share: cancels sent to a replica other than the
  run's owner (the path that needs ``loomcycle.cancel`` NOTIFY and its ack);
- cross-replica circuit share: circuits whose runs landed on more than one
  replica (the path where a channel publish wakes a waiter elsewhere).

A chaos test whose load never crossed replicas tested nothing cluster-wide:
``max_replica_share`` and the two ``min_cross_replica_*`` params let a test
say so.  Without them the verdict passes with the numbers.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from chaos.checks.context import CheckContext
from chaos.verdict import Verdict

INVARIANT = "load_spread"


def _owners(ctx: CheckContext) -> dict[str, str]:
    """Agent id -> owner replica id, for every run whose owner is known."""
    owners: dict[str, str] = {}
    for run, row in zip(ctx.client_runs, ctx.client_rows, strict=True):
        owner = row.replica_id if row is not None and row.replica_id else run.replica_id
        if owner:
            owners[run.agent_id] = owner
    for row in ctx.final_runs.values():
        if row.replica_id:
            owners.setdefault(row.agent_id, row.replica_id)
    return owners


def _share(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def check(ctx: CheckContext) -> Verdict:
    owners = _owners(ctx)
    if not owners:
        return Verdict.vacuous(INVARIANT, "no run with a known owner replica")
    p = ctx.params
    counts = Counter(owners.values())
    total = sum(counts.values())
    shares = {rid: _share(n, total) for rid, n in sorted(counts.items())}
    cancels = [(c, owners.get(c.agent_id)) for c in ctx.cancels if c.via in ctx.known_replicas]
    judged_cancels = [(c, o) for c, o in cancels if o is not None]
    cross_cancels = sum(1 for c, o in judged_cancels if c.via != o)
    circuits: dict[str, set[str]] = {}
    for run in ctx.client_runs:
        if run.circuit is not None and run.agent_id in owners:
            circuits.setdefault(run.circuit, set()).add(owners[run.agent_id])
    cross_circuits = sum(1 for replicas in circuits.values() if len(replicas) > 1)
    cancel_share = _share(cross_cancels, len(judged_cancels))
    circuit_share = _share(cross_circuits, len(circuits))
    evidence: dict[str, Any] = {
        "runs_per_replica": dict(sorted(counts.items())),
        "share_per_replica": shares,
        "replicas_without_runs": sorted(set(p.replica_ids) - set(counts)),
        "cross_replica_cancel_share": cancel_share,
        "cancels_judged": len(judged_cancels),
        "cross_replica_circuit_share": circuit_share,
        "circuits_judged": len(circuits),
    }
    problems = []
    top = max(shares.values(), key=lambda s: s or 0.0) or 0.0
    if p.max_replica_share is not None and top > p.max_replica_share:
        problems.append(f"one replica owns {top:.0%} of runs (bound {p.max_replica_share:.0%})")
    for name, share, bound in (
        ("cancels", cancel_share, p.min_cross_replica_cancel_share),
        ("circuits", circuit_share, p.min_cross_replica_circuit_share),
    ):
        if bound is not None and (share is None or share < bound):
            problems.append(f"cross-replica {name} share {share} below {bound}")
    if problems:
        return Verdict.failed(INVARIANT, "; ".join(problems), **evidence)
    return Verdict.passed(
        INVARIANT,
        f"{total} runs over {len(counts)} replicas (max share {top:.0%}); cross-replica "
        f"cancels {cancel_share}, circuits {circuit_share}",
        **evidence,
    )
