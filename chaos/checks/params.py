"""The numbers a checker judges against, stored in the history so a re-check agrees.

Every bound here comes from the target's documented timers (CONTRACT.md,
"Timers") or from the scenario.  They are recorded with
:func:`record_params` at the start of a scenario so that
``loomchaos check PATH`` judges a saved history with the bounds it ran under,
not with today's defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from chaos.checks.terminal_table import CONTRACT_WORDS, TerminalWords
from chaos.record.history import History, Record
from chaos.record.vocabulary import NOTE_PARAMS


@dataclass(frozen=True)
class CheckParams:
    """Bounds and evidence thresholds for the invariant checkers (seconds unless named)."""

    #: ``max_concurrent_runs_per_user``; 0 means the cluster keeps no quota (nothing to cap).
    per_user_cap: int = 0
    #: Replica stale threshold and sweep interval: their sum is the documented reap bound.
    replica_stale_s: float = 60.0
    replica_sweep_s: float = 5.0
    #: Slack on top of the reap bound (scheduling, snapshot polling, clock steps).
    reap_margin_s: float = 10.0
    #: The fixed replica heartbeat ticker: a frozen replica may look stale this much early.
    replica_heartbeat_s: float = 30.0
    #: Per-run heartbeat stale threshold (``heartbeat_timeout`` is legal only past it).
    heartbeat_stale_s: float = 180.0
    #: Cross-replica cancel ack wait and the slack a client adds on top of it.
    cancel_ack_timeout_s: float = 2.0
    cancel_ack_margin_s: float = 1.0
    #: How long after a run's handler returns its quota slot may still be held.
    quota_grace_s: float = 5.0
    #: An acknowledged cancel may still end ``completed`` when the run's finish was already
    #: under way: loomcycle sends ``done``, then decides the terminal status once
    #: (``finishRunWithCancel``), and deregisters the cancel entry only after its database
    #: writes, so a cancel in that gap is acked and changes nothing.  The client's ``done``
    #: must then arrive no later than this after the ack; a run that still had work left
    #: (``done`` seconds after the ack) stays a violation.
    cancel_finish_window_s: float = 1.0
    #: A graceful stop lets in-flight runs finish for this long before it exits (loomcycle:
    #: the HTTP server's 5 s shutdown drain); a run completed inside it ran to its end.
    graceful_drain_s: float = 5.0
    #: Half-width of the instant a snapshot stands for (its queries take time).
    sample_slack_s: float = 0.5
    #: Tolerated difference between the suite's clock and the database's.
    clock_slack_s: float = 1.0
    #: After a fault on a replica or Postgres, LISTEN links may take this long to return
    #: (reconnect backoff up to 30 s): an unacked cancel in that span is not a bug.
    listen_recovery_s: float = 35.0
    #: Replica ids of the cluster; fault targets outside this set count as cluster-wide.
    replica_ids: tuple[str, ...] = ()
    #: The test's id prefix: DB rows outside it are not this test's business.
    test_prefix: str = ""
    #: Whether the mock provider was told to inject errors (a failed run is then legal).
    provider_errors_injected: bool = False
    #: Stop reasons a ``completed`` run may carry (mock: ``end_turn``).
    completed_stop_reasons: tuple[str, ...] = ("end_turn", "max_iterations")
    #: A p99 over fewer samples is reported, never judged.
    min_p99_samples: int = 20
    #: Optional bound on the p99 of cancel-ack latency (judged only with enough samples).
    ack_p99_bound_s: float | None = None
    #: load_spread bounds; ``None`` means "report only".
    max_replica_share: float | None = None
    min_cross_replica_cancel_share: float | None = None
    min_cross_replica_circuit_share: float | None = None
    #: A circuit's scored output must carry a score in this range (mock: 0.50..0.99).
    circuit_score_range: tuple[float, float] | None = (0.5, 0.99)
    #: How many offending items a verdict lists before it only counts them.
    evidence_limit: int = 20
    #: The target's stop-reason and error words (its terminal table); the contract's by default.
    terminal: TerminalWords = CONTRACT_WORDS

    @property
    def reap_bound_s(self) -> float:
        """Stale threshold plus one sweep: the documented reap bound, before the margin."""
        return self.replica_stale_s + self.replica_sweep_s

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, TerminalWords):
                out[f.name] = value.to_dict()
            else:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> CheckParams:
        """Build from :meth:`to_dict` output; unknown keys (a newer suite's) are ignored."""
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for name, value in raw.items():
            if name not in known:
                continue
            if name == "terminal":
                kwargs[name] = TerminalWords.from_value(value)
            else:
                kwargs[name] = tuple(value) if isinstance(value, list) else value
        return cls(**kwargs)


def record_params(history: History, params: CheckParams) -> Record:
    return history.note(NOTE_PARAMS, **params.to_dict())


def params_from_history(history: History) -> CheckParams | None:
    """The last recorded parameters, or ``None`` when the scenario recorded none."""
    found: CheckParams | None = None
    for rec in history.records:
        if rec.type == "note" and rec.op == NOTE_PARAMS:
            found = CheckParams.from_dict(rec.data)
    return found
