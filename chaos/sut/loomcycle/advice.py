"""Where a deployed configuration is outside what loomcycle's documentation advises.

An advisory is printed and recorded beside the verdicts (JUnit property
``target_config_advisories``, the gate's report); it never replaces a
verdict and never stops a run: the suite runs what the target accepts and
lets the invariants judge.
"""

from __future__ import annotations

from chaos.sut.loomcycle.settings import LoomcycleSettings, Timers
from chaos.sut.loomcycle.target_config import SUITE_OWNED, TargetConfig

#: The fixed replica heartbeat and the cancel path's fixed dead-owner judgement (CONTRACT.md).
HEARTBEAT_MS = 30_000
CANCEL_PATH_DEAD_MS = 90_000


def advisories(settings: LoomcycleSettings, cfg: TargetConfig | None = None) -> list[str]:
    """Where the timers are outside what the target's documentation advises (never a refusal)."""
    t: Timers = settings.timers
    out: list[str] = []
    # "Well above" the heartbeat: less than two beats means one late beat reaps a live replica.
    if t.replica_stale_ms < 2 * HEARTBEAT_MS:
        out.append(
            f"LOOMCYCLE_REPLICAS_STALE_AFTER_MS={t.replica_stale_ms}: the documentation wants it "
            f"well above the fixed {HEARTBEAT_MS} ms heartbeat (under two beats, one late beat "
            "reaps a live replica)"
        )
    reap_ms = t.replica_stale_ms + t.replica_sweep_ms
    if t.heartbeat_stale_ms <= reap_ms:
        out.append(
            f"LOOMCYCLE_HEARTBEAT_STALE_MS={t.heartbeat_stale_ms} is not above replica stale + "
            f"sweep ({reap_ms}): the per-run sweeper may reap before the replicas sweeper"
        )
    if t.cancel_ack_timeout_ms > CANCEL_PATH_DEAD_MS:
        out.append(
            f"LOOMCYCLE_CANCEL_ACK_TIMEOUT_MS={t.cancel_ack_timeout_ms} exceeds the cancel "
            f"path's fixed {CANCEL_PATH_DEAD_MS} ms dead-owner judgement"
        )
    if cfg is not None:
        ignored = sorted(set(cfg.env_map) & SUITE_OWNED)
        if ignored:
            out.append(f"ignored (the suite wires these itself): {', '.join(ignored)}")
    return out
