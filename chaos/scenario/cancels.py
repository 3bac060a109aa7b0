"""Cancels as recorded operations, and the choices a cancel scenario makes.

A cancel is an operation like a run start: invoked, then answered, both in
the history (``cancel`` in :mod:`chaos.record.vocabulary`), so the checkers can time the
ack and judge the classification.  The invoke is written right before the
HTTP call, so ``end - start`` is the latency the client saw.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence

from chaos.record.history import History
from chaos.record.vocabulary import OP_CANCEL, RunRow, Snapshot
from chaos.scenario.base import describe_error
from chaos.scenario.convergence import running_rows
from chaos.sut.base import CancelResult, RunClient

#: A cancel call may wait the ack timeout plus a re-read; past this it is a hang.
CANCEL_CALL_TIMEOUT_S = 30.0


async def recorded_cancel(
    history: History,
    client: RunClient,
    agent_id: str,
    *,
    via: str,
    reason: str | None,
    timeout_s: float = CANCEL_CALL_TIMEOUT_S,
) -> CancelResult | None:
    """Cancel ``agent_id`` through ``client`` (pointed at ``via``) and record both ends.

    ``ok`` carries the response body and the classification; an HTTP error is
    ``fail`` (with the same fields); no answer at all is ``info`` and returns None.
    """
    inv = history.invoke(OP_CANCEL, f"cancel@{via}", key=agent_id, via=via, reason=reason)
    try:
        async with asyncio.timeout(timeout_s):
            result = await client.cancel(agent_id, reason)
    except asyncio.CancelledError:
        history.complete(inv, "info", error="cancel call abandoned: scenario cancelled")
        raise
    except Exception as exc:
        history.complete(inv, "info", error=describe_error(exc))
        return None
    # The body's own fields first; ours win, and complete()'s parameter names are kept out.
    data = {k: v for k, v in result.body.items() if k not in ("invoke", "outcome")}
    data.update(
        classification=result.classification,
        http_status=result.http_status,
        client_latency_s=round(result.latency_s, 4),
    )
    history.complete(inv, "ok" if result.http_status == 200 else "fail", **data)
    return result


def other_replicas(replica_ids: Sequence[str], owner: str | None) -> list[str]:
    return [r for r in replica_ids if r != owner]


def non_owner(replica_ids: Sequence[str], owner: str | None, rng: random.Random) -> str:
    """A replica that does not own the run (the cross-replica cancel path)."""
    others = other_replicas(replica_ids, owner)
    if not others:
        raise ValueError(f"no replica other than the owner {owner!r} in {list(replica_ids)}")
    return rng.choice(others)


def newest_running(snap: Snapshot, exclude: set[str]) -> RunRow | None:
    """The most recently started running run not in ``exclude`` (run ids)."""
    rows = [r for r in running_rows(snap) if r.run_id not in exclude and r.replica_id]
    return max(rows, key=lambda r: (r.started_at or 0.0, r.run_id), default=None)


class StormCanceller:
    """``cancel_one`` for :class:`~chaos.faults.CancelStorm`, like loomcycle's own rig:
    cancel the newest running run of the test through a replica that does not own it.

    Each run is cancelled at most once (``targeted``), so the storm spreads over
    the workload instead of hammering the one newest run.
    """

    def __init__(
        self,
        history: History,
        peek: Callable[[], Awaitable[Snapshot]],
        clients: Mapping[str, RunClient],
        rng: random.Random,
        reason: str = "loomchaos cancel storm",
    ) -> None:
        self.history = history
        self.peek = peek
        self.clients = clients
        self.rng = rng
        self.reason = reason
        self.targeted: set[str] = set()

    async def __call__(self) -> str | None:
        row = newest_running(await self.peek(), self.targeted)
        if row is None:
            return None
        self.targeted.add(row.run_id)
        via = non_owner(list(self.clients), row.replica_id, self.rng)
        result = await recorded_cancel(
            self.history, self.clients[via], row.agent_id, via=via, reason=self.reason
        )
        return "no_answer" if result is None else result.classification
