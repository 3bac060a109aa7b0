"""stop_reason_fits_cause: every terminal row is an end its cause in the history allows.

The table (from the brief, built on CONTRACT.md's terminal table):

=========================================  =============================================
cause in the history                       legal ends
=========================================  =============================================
ran to the end on a live replica           completed / a provider stop reason
                                           (``params.completed_stop_reasons``); never after
                                           its owner was killed
cancel through the API                     cancelled / the caller's reason or
                                           ``cancelled by api``; an *acknowledged* cancel
                                           makes this the only legal end, unless the
                                           client's ``done`` came within
                                           ``cancel_finish_window_s`` of the ack (the
                                           finish was under way: completed is legal too)
owner killed, stopped, or frozen (or cut   failed / replica_died, or failed /
from Postgres) past the stale threshold    owner_replica_dead when a cancel was sent
client stream cut (suite, or an lb link)   cancelled / client disconnected (or parent run
                                           cancelled)
provider errors injected                   failed / NULL / the error text
409 agent_id_in_use on that agent id       a failed row (the collision row)
per-run heartbeat sweeper                  failed / heartbeat_timeout, only if the run's
                                           heartbeat was older than the stale threshold
=========================================  =============================================

Two additions, both documented causes of a run failing on its own: a graceful
stop of the owner also allows the run's own ends (client disconnected, failed
with an error), and a fault on Postgres or on the owner's database link during
the run allows failed / NULL / error (the run's own database write failed).
Every row must first be in the contract's terminal table.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from functools import lru_cache, partial
from typing import Any, NamedTuple

from chaos.checks.context import CancelCall, CheckContext, ClientRun
from chaos.checks.evidence import as_epoch, capped, row_brief, unique_windows
from chaos.checks.terminal_table import TerminalWords
from chaos.record.history import FaultWindow
from chaos.record.vocabulary import (
    DEATH_FAULTS,
    FAULT_PAUSE,
    FAULT_RESTART,
    FAULT_STOP,
    LINK_FAULT_PREFIX,
    RunRow,
)
from chaos.verdict import Verdict

INVARIANT = "stop_reason_fits_cause"
_INF = float("inf")


class Cause(NamedTuple):
    """A cause the history offers for a row's end, and the ends it allows.  A tuple: made
    for every terminal row of a soak, it costs a third of a frozen dataclass."""

    name: str
    fits: Callable[[RunRow], bool]


def _failed_with(reason: str) -> Callable[[RunRow], bool]:
    return lambda r: r.status == "failed" and r.stop_reason == reason


def _cancelled_with(reason: str) -> Callable[[RunRow], bool]:
    return lambda r: r.status == "cancelled" and r.stop_reason == reason


def _own_failure(r: RunRow) -> bool:
    return r.status == "failed" and r.stop_reason is None and bool(r.error)


def _client_gone(words: TerminalWords) -> Callable[[RunRow], bool]:
    gone = (words.client_disconnected, words.parent_cancelled)
    return lambda r: r.status == "cancelled" and r.stop_reason in gone


def _link_kind(w: FaultWindow) -> str:
    """``pg`` or ``lb`` for a link fault (from ``data["link"]``, e.g. ``pg:r1``), else ``""``."""
    if not w.name.startswith(LINK_FAULT_PREFIX):
        return ""
    return str(w.data.get("link", "")).split(":", 1)[0]


def _during_run(ctx: CheckContext, w: FaultWindow, row: RunRow) -> bool:
    slack = ctx.params.clock_slack_s
    started = -_INF if row.started_at is None else row.started_at
    ended = _INF if row.completed_at is None else row.completed_at
    w_end = _INF if w.end_wall is None else w.end_wall
    return w.start_wall <= ended + slack and w_end >= started - slack


def _looks_dead(ctx: CheckContext, w: FaultWindow) -> bool:
    """Whether this fault can make the owner look dead to the sweeper."""
    if w.name in DEATH_FAULTS or w.name == FAULT_RESTART:
        return True
    if w.name == FAULT_PAUSE or _link_kind(w) == "pg":
        # The last heartbeat may be up to one ticker period older than the fault.
        length = _INF if w.end is None else w.end - w.start
        return length + ctx.params.replica_heartbeat_s >= ctx.params.replica_stale_s
    return False


def _owner_killed_before_end(ctx: CheckContext, row: RunRow) -> bool:
    """Whether the owner died or stopped while the run still ran (it cannot have finished).

    A graceful stop drains first: a run that ended inside the drain (the stop's start
    plus ``graceful_drain_s``) finished on a live process, so the stop did not end it.
    """
    started, completed = row.started_at, row.completed_at
    faults = ctx.faults_by_replica.get(row.replica_id or "")
    if completed is None or started is None or not faults:
        return False  # (most owners of a soak's runs are never hit)
    slack = ctx.params.clock_slack_s

    def ended_it(w: FaultWindow) -> bool:
        if w.name not in DEATH_FAULTS and w.name != FAULT_RESTART:
            return False
        if not started < w.start_wall < completed - slack:
            return False
        drained = w.name == FAULT_STOP and (
            completed <= w.start_wall + ctx.params.graceful_drain_s + slack
        )
        return not drained

    return any(ended_it(w) for w in faults)


def _heartbeat_was_stale(ctx: CheckContext, row: RunRow) -> bool:
    last = row.last_heartbeat_at
    for audit in ctx.audit_rows("runs", row.run_id):
        old = audit.old or {}
        beat = as_epoch(old.get("last_heartbeat_at"))
        if old.get("status") == "running" and beat is not None:
            last = beat
    last = row.started_at if last is None else last
    if last is None or row.completed_at is None:
        return False
    return row.completed_at - last >= ctx.params.heartbeat_stale_s - ctx.params.clock_slack_s


def _cancel_causes(ctx: CheckContext, row: RunRow, cancels: list[CancelCall]) -> list[Cause]:
    words = ctx.params.terminal
    causes = []
    for call in cancels:
        if call.classification == "already_terminal":
            continue
        reason = call.reason or words.cancelled_by_api
        causes.append(
            Cause(f"cancel via {call.via} ({call.classification})", _cancelled_with(reason))
        )
        if call.classification == "owner_dead":
            causes.append(Cause("cancel judged the owner dead", _failed_with(words.owner_dead)))
    return causes


def _fault_causes(ctx: CheckContext, row: RunRow, cancels: list[CancelCall]) -> list[Cause]:
    words = ctx.params.terminal
    causes: list[Cause] = []
    for w in ctx.faults_by_replica.get(row.replica_id or "", []):
        if not _during_run(ctx, w, row):
            continue
        if _looks_dead(ctx, w):
            causes.append(Cause(f"owner {w.describe()}", _failed_with(words.replica_died)))
            if cancels:
                causes.append(
                    Cause(
                        f"owner {w.describe()} + cancel",
                        _failed_with(words.owner_dead),
                    )
                )
        if w.name == FAULT_STOP:
            causes.append(Cause(f"graceful {w.describe()}", _client_gone(words)))
            causes.append(Cause(f"graceful {w.describe()}", _own_failure))
        if _link_kind(w) == "lb":
            causes.append(Cause(f"client link {w.describe()}", _client_gone(words)))
        if _link_kind(w) == "pg":
            causes.append(Cause(f"database link {w.describe()}", _own_failure))
    for w in ctx.global_faults:
        if _during_run(ctx, w, row):
            causes.append(Cause(f"cluster-wide {w.describe()}", _own_failure))
    return causes


def _ran_to_the_end(ctx: CheckContext) -> Callable[[RunRow], bool]:
    return _completed_with(ctx.params.completed_stop_reasons)


@lru_cache(maxsize=8)
def _completed_with(stop_reasons: tuple[str, ...]) -> Callable[[RunRow], bool]:
    """Made once per set of reasons: most rows of a soak are judged by this one cause."""
    reasons = set(stop_reasons)
    return lambda r: r.status == "completed" and r.stop_reason in reasons


def _finish_under_way(ctx: CheckContext, client: ClientRun | None, acked: list[CancelCall]) -> bool:
    """The client got ``done`` no later than the finish window after an acked cancel returned."""
    if client is None or not client.got_done or client.end is None:
        return False
    window = ctx.params.cancel_finish_window_s
    return any(c.end is not None and client.end <= c.end + window for c in acked)


def causes_for(
    ctx: CheckContext, row: RunRow, client: ClientRun | None, cancels: list[CancelCall]
) -> list[Cause]:
    """Every cause the history offers for this row's end; the row must fit one of them."""
    return list(_causes(ctx, row, cancels, lambda: client))


def _causes(
    ctx: CheckContext,
    row: RunRow,
    cancels: list[CancelCall],
    client_of: Callable[[], ClientRun | None],
) -> Iterator[Cause]:
    """:func:`causes_for`, one cause at a time, the client's view of the run looked up
    only if a cause needs it: a row that fits an early cause (most rows fit the first)
    costs none of the later ones."""
    words = ctx.params.terminal
    acked = [c for c in cancels if c.classification == "acknowledged"]
    if acked and _is_the_run(ctx, row, ctx.client_by_agent.get(row.agent_id, [])):
        # An ack means the owner fired the run's cancel; the end is cancelled, unless the
        # run had already sent done and was finishing (loomcycle v1.59.0: the terminal
        # status is decided once in finishRunWithCancel, server.go:7229-7276, and the
        # cancel entry is deregistered only after the write, server.go:4009-4013 and 4288).
        yield from _cancel_causes(ctx, row, acked)
        if _finish_under_way(ctx, client_of(), acked):
            yield Cause("acked while its finish was under way", _ran_to_the_end(ctx))
        return
    if not _owner_killed_before_end(ctx, row):
        yield Cause("ran to the end", _ran_to_the_end(ctx))
    yield from _cancel_causes(ctx, row, cancels)
    yield from _fault_causes(ctx, row, cancels)
    client = client_of()
    if client is not None and (client.stream_broken or client.cut):
        yield Cause("client stream cut", _client_gone(words))
    if ctx.params.provider_errors_injected:
        yield Cause("injected provider error", _own_failure)
    clients = ctx.client_by_agent.get(row.agent_id, [])
    if any(c.code == "agent_id_in_use" for c in clients) and not _told_run_id(row, clients):
        yield Cause("409 agent_id_in_use collision", lambda r: r.status == "failed")
    if _heartbeat_was_stale(ctx, row):
        yield Cause("per-run heartbeat stale", _failed_with(words.heartbeat_timeout))


def _told_run_id(row: RunRow, clients: list[ClientRun]) -> bool:
    """Whether a client of the row's agent id was told the row's run id."""
    return any(c.run_id is not None and c.run_id == row.run_id for c in clients)


def _is_the_run(ctx: CheckContext, row: RunRow, clients: list[ClientRun]) -> bool:
    """The row is the run the agent's cancels were about: its run id was told to a client
    of the agent, or it is the agent's only row."""
    return _told_run_id(row, clients) or ctx.final_by_agent.count(row.agent_id) == 1


def _client_of(ctx: CheckContext, row: RunRow) -> ClientRun | None:
    client = ctx.client_by_run_id.get(row.run_id)
    if client is None:
        agents = [c for c in ctx.client_by_agent.get(row.agent_id, []) if c.run_id is None]
        client = agents[-1] if agents else None
    return client


def check(ctx: CheckContext) -> Verdict:
    terminal = [r for r in ctx.final_runs.values() if r.terminal]
    if not terminal:
        return Verdict.vacuous(INVARIANT, "no terminal run row in the final snapshot")
    bad: list[dict[str, Any]] = []
    windows: list[FaultWindow] = []
    ends_by_pair: Counter[tuple[str, str | None]] = Counter()
    cancels_by_agent, in_table = ctx.cancels_by_agent, ctx.params.terminal.in_table
    ran_to_the_end = _ran_to_the_end(ctx)
    for row in terminal:
        ends_by_pair[row.status, row.stop_reason] += 1
        cancels = cancels_by_agent.get(row.agent_id, [])
        if not in_table(row):
            causes: list[Cause] = []
            why = "not a row any writer in the contract's terminal table produces"
        else:
            if (
                ran_to_the_end(row)
                and not any(c.classification == "acknowledged" for c in cancels)
                and not _owner_killed_before_end(ctx, row)
            ):
                continue  # the first cause _causes offers, and it fits: most rows of a soak
            if any(c.fits(row) for c in _causes(ctx, row, cancels, partial(_client_of, ctx, row))):
                continue
            causes = causes_for(ctx, row, _client_of(ctx, row), cancels)
            why = "fits none of the causes the history shows"
        if len(bad) < ctx.params.evidence_limit:
            windows += ctx.faults_by_replica.get(row.replica_id or "", [])
            bad.append(
                {
                    **row_brief(row),
                    "why": why,
                    "causes": sorted({c.name for c in causes}),
                    "history": ctx.excerpt(row.agent_id),
                }
            )
        else:
            bad.append({"run_id": row.run_id})
    ends: dict[str, int] = {}
    for (status, stop_reason), n in ends_by_pair.items():  # in the order first seen
        key = f"{status}/{stop_reason}"
        ends[key] = ends.get(key, 0) + n
    if bad:
        return Verdict.failed(
            INVARIANT,
            f"{len(bad)} of {len(terminal)} terminal rows do not fit their cause",
            unique_windows(windows + ctx.global_faults),
            offenders=capped(bad, ctx.params.evidence_limit),
            offender_count=len(bad),
            ends=ends,
        )
    return Verdict.passed(INVARIANT, f"{len(terminal)} terminal rows each fit a cause", ends=ends)
