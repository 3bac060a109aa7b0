"""The clusters the scenarios run on.

Equal specs share one session cluster (reset between tests), so scenarios
that can share one use the same constant here; each differs from the others
only where its scenario needs it, and says why.
"""

from __future__ import annotations

from chaos.sut.loomcycle.settings import (
    CRASH_TIMERS,
    OUTAGE_TIMERS,
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

#: The write-up's provider profile (issue #10, scenario 12): 15 % of the mock's calls answer
#: 429 for the whole scenario, every agent may fall back to mock-stable.  Runs of ~1 s.  At
#: 15 % a run falls back only after three 429s in a row (the call and its retry_attempts=2
#: same-provider retries, loop.go:1636-1712), p^3 ~ 0.34 % of the runs that start on mock:
#: the scenario measures the per-call 429 rate (which the retries make visible) and bounds
#: the fallbacks by that mechanism, rather than expecting the 50 % storm's many fallbacks.
PROVIDER_PROFILE_SPEC = with_settings(
    SMOKE_SPEC, mock=MockProvider(latency_ms=1_000, jitter_ms=200, rate_429=0.15, fallback=True)
)

#: Cluster-wide controls (issue #10, scenario 14: pause/resume/state).  Runs of ~4 s and
#: two slots per replica, so starts admitted before a pause queue inside a replica: one
#: that gets its slot while the cluster is paused reaches its first iteration boundary
#: and parks there (loop.go:1516-1520), which is the documented behaviour the scenario
#: judges.  Crash timers (the kill variant: nothing cuts Postgres).
CONTROLS_SPEC = with_settings(
    SMOKE_SPEC, mock=MockProvider(latency_ms=4_000, jitter_ms=400), max_concurrent_runs=2
)

#: The same with outage timers (stale 120 s), for the variant that cuts a replica from
#: Postgres: a cut of d s can leave its row unrefreshed for up to d + 60 s (CONTRACT.md).
CONTROLS_CUT_SPEC = with_settings(CONTROLS_SPEC, timers=OUTAGE_TIMERS)

#: File-descriptor exhaustion at a replica (issue #10, scenario 10): every replica may open
#: 512 files, several times what one uses under the suite's bursts (a 16-connection pool,
#: 11 LISTEN connections, one socket per open stream, its data files), so the limit alone
#: costs nothing; the fault (chaos.faults.ReplicaFdExhaustion) fills one replica's table
#: with idle connections.  Smoke runs of ~2 s, crash timers.
REPLICA_NOFILE_SPEC = with_settings(SMOKE_SPEC, replica_nofile=512)
