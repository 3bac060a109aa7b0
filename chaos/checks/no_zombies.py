"""no_zombies: after convergence no run is ``running`` unless its owner is alive and serving it.

Evidence needed: the final database snapshot (taken after the scenario
converged) and, for each run it shows ``running``, a liveness probe recorded
after that snapshot: a ``live_probe`` note (see :mod:`chaos.record.readers`)
or an ``ok`` ``run_status`` poll.  A run counts as served only when the probe
names the run's owner as ``replica_id`` and says ``live: true`` (loomcycle
sets ``live`` only on the owning replica), and the owner still has its
``replicas`` row.  A ``running``
row without such a probe is a zombie: nothing proves anyone is serving it.
"""

from __future__ import annotations

from typing import Any

from chaos.checks.context import CheckContext
from chaos.checks.evidence import capped, row_brief, unique_windows
from chaos.record.history import Record
from chaos.record.vocabulary import RunRow
from chaos.verdict import Verdict

INVARIANT = "no_zombies"


def _why_zombie(row: RunRow, probe: Record | None, alive_replicas: set[str]) -> str | None:
    if probe is None:
        return "no live probe recorded after the final snapshot"
    if probe.data.get("replica_id") != row.replica_id:
        return f"the probe names {probe.data.get('replica_id')!r}, not the owner {row.replica_id!r}"
    if probe.data.get("live") is not True:
        error = probe.data.get("error")
        return "the owner does not serve it" + (f" ({error})" if error else " (live=false)")
    if row.replica_id not in alive_replicas:
        return "the owner has no replicas row in the final snapshot"
    return None


def check(ctx: CheckContext) -> Verdict:
    snap = ctx.final_snapshot
    if snap is None:
        return Verdict.vacuous(INVARIANT, "no database snapshot was recorded")
    runs = ctx.final_runs
    if not runs:
        return Verdict.vacuous(INVARIANT, "the final snapshot holds no run of this test")
    alive = {r.replica_id for r in snap.replicas}
    running = [r for r in runs.values() if r.status == "running"]
    zombies: list[dict[str, Any]] = []
    for row in running:
        probes = [p for p in ctx.live_probes.get(row.run_id, []) if p.mono >= snap.mono]
        probe = probes[-1] if probes else None
        why = _why_zombie(row, probe, alive)
        if why is not None:
            zombies.append(
                {
                    **row_brief(row),
                    "why": why,
                    "probe": None if probe is None else probe.data,
                    "history": ctx.excerpt(row.agent_id),
                }
            )
    if zombies:
        owners = {z["replica_id"] for z in zombies}
        windows = [w for o in owners for w in ctx.faults_by_replica.get(o or "", [])]
        return Verdict.failed(
            INVARIANT,
            f"{len(zombies)} of {len(runs)} runs still running with nobody serving them "
            f"at the final snapshot (mono {snap.mono:.1f})",
            unique_windows(windows),
            zombies=capped(zombies, ctx.params.evidence_limit),
            zombie_count=len(zombies),
            final_snapshot_mono=snap.mono,
            live_replicas=sorted(alive),
        )
    return Verdict.passed(
        INVARIANT,
        f"{len(runs)} runs in the final snapshot; {len(running)} still running, each live on "
        "its owner",
        runs=len(runs),
        running_and_live=[r.run_id for r in capped(running, ctx.params.evidence_limit)],
    )
