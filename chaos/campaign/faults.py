"""Experiment 3's injectors during a burst: cancels through non-owners, then one SIGKILL.

Both go through the suite's recorded paths (``recorded_cancel`` via
:class:`~chaos.scenario.StormCanceller`; the kill through ``injected``, its
effect proven by the reap and healed by a restart under the same id), so the
checkers see every cancel and the fault window.  Choices (which run, which
replica, the victim) come from the campaign seed's ``faults`` stream.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence
from typing import Any

from chaos.faults import FaultNotProven, injected
from chaos.faults.replica import kill_replica, rejoin
from chaos.record.history import FaultWindow, History
from chaos.record.vocabulary import RunRow
from chaos.scenario import StormCanceller
from chaos.scenario.convergence import running_rows
from chaos.scenario.evidence import owned_running
from chaos.scenario.run import ScenarioRun
from chaos.sut.base import RunClient

#: Cancels are spread out, not fired at once: each targets the newest running run.
CANCEL_SPACING_S = 0.25
#: The load must have this many runs running before the first injection.
MIN_RUNNING = 6
#: The victim must own this many running runs when killed (else the reap proves little).
MIN_OWNED = 2
LOAD_WAIT_S = 60.0
CANCEL_REASON = "loomchaos campaign: cancelled through a non-owner"
#: Stop reasons of a run reaped because its replica died (CONTRACT.md).
REAPED = ("replica_died", "owner_replica_dead")


async def send_cancels(
    run: ScenarioRun,
    history: History,
    clients: Mapping[str, RunClient],
    rng: random.Random,
    count: int,
) -> int:
    """``count`` cancels of running runs, each through a replica that does not own it."""
    await run.wait_for(
        lambda s: len(running_rows(s)) >= MIN_RUNNING,
        what=f"{MIN_RUNNING} runs of the campaign running before the cancels",
        timeout=LOAD_WAIT_S,
    )
    canceller = StormCanceller(history, run.peek, clients, rng, reason=CANCEL_REASON)
    sent = 0
    for _ in range(count):
        if await canceller() is not None:
            sent += 1
        # Pacing between cancels on purpose (spread over the burst), not a wait for a state.
        await asyncio.sleep(CANCEL_SPACING_S)
    return sent


async def kill_one(
    run: ScenarioRun, cluster: Any, history: History, rng: random.Random
) -> tuple[str, list[RunRow], str | None]:
    """SIGKILL a seeded victim once it owns running runs; rejoin it after the proven reap.

    Returns the victim, the runs it owned at the kill, and why the reap was not
    proven (None when it was).
    """
    victim: str = rng.choice(list(cluster.replica_ids))
    snap = await run.wait_for(
        lambda s: len(owned_running(s, victim)) >= MIN_OWNED,
        what=f"{victim} to own {MIN_OWNED} running runs before the kill",
        timeout=LOAD_WAIT_S,
    )
    owned = owned_running(snap, victim)
    kill = await kill_replica(cluster, victim, run.params)
    not_proven: str | None = None
    try:
        async with injected(kill, history):
            pass  # the effect proof (the survivors reaped it) is the point; heal restarts it
    except FaultNotProven as exc:
        not_proven = str(exc)[:300]
    await rejoin(cluster, victim)
    return victim, owned, not_proven


def reap_rows(
    window: FaultWindow, final_runs: Sequence[RunRow], wall0: float
) -> list[dict[str, Any]]:
    """reap.csv rows: the kill, each of the victim's runs reaped or ended, the rejoin."""
    victim = window.target
    rows: list[dict[str, Any]] = [
        {"t": window.start_wall - wall0, "event": "kill", "run_id": "", "replica": victim}
    ]
    ends = sorted(
        (r for r in final_runs if r.replica_id == victim and r.completed_at is not None),
        key=lambda r: (r.completed_at or 0.0, r.run_id),
    )
    for r in ends:
        if (r.completed_at or 0.0) < window.start_wall:
            continue  # ended before the kill: not the kill's doing
        event = "reaped" if r.stop_reason in REAPED else "ended"
        rows.append(
            {
                "t": (r.completed_at or 0.0) - wall0,
                "event": event,
                "run_id": r.run_id,
                "replica": victim,
            }
        )
    if window.end_wall is not None:
        rows.append(
            {"t": window.end_wall - wall0, "event": "rejoined", "run_id": "", "replica": victim}
        )
    return rows
