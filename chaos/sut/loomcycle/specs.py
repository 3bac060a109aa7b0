"""The clusters the scenarios run on.

Equal specs share one session cluster (reset between tests), so scenarios
that can share one use the same constant here; each differs from the others
only where its scenario needs it, and says why.
"""

from __future__ import annotations

from chaos.sut.loomcycle.settings import (
    CRASH_TIMERS,
    MockProvider,
    Timers,
    loomcycle_spec,
    with_settings,
)

#: Issue 3's smoke: 3 replicas, mock runs of ~2 s (long enough that a run is still
#: running when a test cancels it, short enough that 60 runs take seconds), the
#: per-user cap on (4) so user_quotas is exercised, crash timers (nothing cuts Postgres).
SMOKE_SPEC = loomcycle_spec(
    replicas=3,
    timers=CRASH_TIMERS,
    mock=MockProvider(latency_ms=2_000, jitter_ms=250),
    max_runs_per_user=4,
)

#: Cancel races: runs of ~6 s, so a test can find a run running, pick a
#: non-owner and cancel it (or freeze its owner first) well before it ends.
CANCEL_SPEC = with_settings(SMOKE_SPEC, mock=MockProvider(latency_ms=6_000, jitter_ms=500))

#: Crashes: runs of ~10 s, so the victim surely owns running runs when it is
#: killed, stopped or frozen; crash timers (stale 60 s + sweep 5 s) bound the reap.
CRASH_SPEC = with_settings(SMOKE_SPEC, mock=MockProvider(latency_ms=10_000, jitter_ms=1_000))

#: The provider storm with the fallback tier: half of the mock's calls answer 429, every
#: agent may fall back to mock-stable (which never injects).  Runs of ~1 s: the storm is
#: about errors, not about long runs.  Half, not the write-up's 15 %: a run falls back only
#: after its same-provider retries also failed (retry_attempts 2), so at 15 % a fallback
#: is rare (0.15^3 per call) and 60 runs could show none; at 50 % one run in eight does.
PROVIDER_STORM_SPEC = with_settings(
    SMOKE_SPEC, mock=MockProvider(latency_ms=1_000, jitter_ms=200, rate_429=0.5, fallback=True)
)

#: One run at a time per replica, so further runs queue inside the replica (their
#: POSTs hold a quota slot in user_quotas, but no run row yet); crash timers.
QUEUEING_SPEC = with_settings(CRASH_SPEC, max_concurrent_runs=1)

#: Cancels aimed at a killed owner's runs in every window the contract defines: the
#: cancel path judges an owner dead after a fixed 90 s, so the sweeper's stale threshold
#: must lie well above 90 s + the ack timeout for the "judged dead, not reaped" window to
#: exist (130 s: a 40 s window).  The per-run heartbeat stale stays above stale + sweep +
#: margin, so reaping stays the replicas sweeper's job.  Runs of ~10 s (CRASH_SPEC).
CANCEL_WINDOWS_SPEC = with_settings(
    CRASH_SPEC, timers=Timers(replica_stale_ms=130_000, heartbeat_stale_ms=240_000)
)
