"""When a scenario has converged, and how long to wait for it: pure functions.

"Converged" is the state every end-of-scenario check assumes: no run of the
test is ``running`` unless its owner still has its ``replicas`` row and, asked
on its own port, says it is serving that very run (``live``); and no user of
the test holds more quota slots than it has such runs.  Anything else is
either work the cluster still owes (a reap, a give-back) or a finding, and
only waiting up to the documented bound tells the two apart.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from chaos.checks.params import CheckParams
from chaos.record.history import FaultWindow
from chaos.record.vocabulary import RunRow, Snapshot


@dataclass(frozen=True)
class OwnerAnswer:
    """What a run's owner said about it when asked on its own port.

    ``live`` is the owner's word that it is executing the run; ``error`` says
    why there is no answer (connection refused, timeout, 404).
    """

    live: bool
    run_id: str | None = None
    status: str | None = None
    error: str | None = None


def running_rows(snap: Snapshot) -> list[RunRow]:
    return [r for r in snap.runs if r.status == "running"]


def unsettled(snap: Snapshot, answers: Mapping[str, OwnerAnswer]) -> list[str]:
    """Why ``snap`` is not converged (empty when it is); ``answers`` by run id.

    A run whose owner has a row but was not asked counts as unsettled: the
    caller asks every alive owner, so a missing answer is a probe that failed.
    """
    alive = {r.replica_id for r in snap.replicas}
    reasons: list[str] = []
    running_by_user: Counter[str] = Counter()
    for row in running_rows(snap):
        running_by_user[row.user_id or ""] += 1
        what = f"{row.agent_id} ({row.run_id}) running on {row.replica_id!r}"
        if row.replica_id not in alive:
            reasons.append(f"{what}, which has no replicas row")
            continue
        answer = answers.get(row.run_id)
        if answer is None:
            reasons.append(f"{what}: its owner was not asked")
        elif not answer.live:
            reasons.append(f"{what}: owner says not live ({answer.error or answer.status})")
        elif answer.run_id is not None and answer.run_id != row.run_id:
            reasons.append(f"{what}: owner serves {answer.run_id} under that agent id")
    for quota in snap.quotas:
        held_for = running_by_user[quota.user_id]
        if quota.active_count > held_for:
            reasons.append(
                f"user {quota.user_id} holds {quota.active_count} quota slots "
                f"for {held_for} running runs"
            )
    return reasons


def convergence_budget(
    windows: Iterable[FaultWindow], params: CheckParams, now_mono: float, settle_s: float
) -> float:
    """Seconds to wait for convergence from ``now_mono``.

    Without faults, ``settle_s`` (quota give-back, acks, the last writes).
    After any fault, at least until the documented reap bound (stale + sweep
    + margin) from the fault's start has passed, plus ``settle_s``: a final
    snapshot taken earlier could not tell a slow reap from a missing one.
    The budget only bounds a wait on a condition, so generosity costs time
    only when the cluster does not converge.
    """
    budget = settle_s
    bound = params.reap_bound_s + params.reap_margin_s
    for w in windows:
        budget = max(budget, w.start + bound - now_mono + settle_s)
    return budget
