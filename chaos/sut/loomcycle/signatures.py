"""Finding signatures that more than one scenario reads: a failing verdict is excused only
when its evidence has the finding's exact shape, and anything else fails as itself.

LC-002 (docs/findings/LC-002.md): a graceful stop drains for 5 s and then abandons the
runs still going, so they stay ``running`` and keep their quota slots.  The single
graceful stop, the rolling restart and the live machine all meet it, over one stop or
several; they share this one definition so that the three cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from chaos.checks.params import CheckParams
from chaos.record.history import FaultWindow
from chaos.record.vocabulary import FAULT_STOP, Snapshot
from chaos.verdict import Verdict

#: What LC-002 breaks; every other invariant must pass where it is met.
LC002_INVARIANTS = ("no_zombies", "no_quota_leaks")


def last_stops(windows: Iterable[FaultWindow]) -> dict[str, float]:
    """Each SIGTERMed replica's last stop (wall clock), what LC-002's signature reads: a
    replica stopped, started again and stopped again abandons runs of either life."""
    stops: dict[str, float] = {}
    for w in windows:
        if w.name == FAULT_STOP:
            stops[w.target] = max(w.start_wall, stops.get(w.target, w.start_wall))
    return stops


def assert_lc002_signature(
    verdict: Verdict, stops: Mapping[str, float], final: Snapshot, params: CheckParams
) -> None:
    """The failure is LC-002's: every run left running belongs to a stopped replica and
    started before that replica's (last) SIGTERM; the only quota held at quiescence is
    those runs' users' (or users of runs that the per-run heartbeat sweeper has marked
    meanwhile, which gives no slot back); no quota count below its bounds."""
    slack = params.clock_slack_s
    abandoned = [
        r
        for r in final.runs
        if (stop := stops.get(r.replica_id or "")) is not None
        and r.started_at is not None
        and r.started_at <= stop + slack
        and (
            r.status == "running"
            or (r.status == "failed" and r.stop_reason == params.terminal.heartbeat_timeout)
        )
    ]
    zombies = [r for r in final.runs if r.status == "running"]
    assert zombies and set(zombies) <= set(abandoned), (
        f"{verdict.invariant} failed, but not as LC-002: running at the end "
        f"{[r for r in zombies if r not in abandoned][:5] or zombies[:5]}"
    )
    if verdict.invariant == "no_quota_leaks":
        assert not verdict.evidence.get("out_of_bounds"), verdict.evidence
        held = {q.user_id for q in final.quotas if q.active_count > 0}
        assert held <= {r.user_id for r in abandoned}, (held, abandoned[:5])
