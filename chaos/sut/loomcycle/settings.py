"""loomcycle's own settings, carried by a ClusterSpec as its opaque ``target`` value.

Timers, the mock provider, caps and the bearer token are what a loomcycle
replica is configured with (its environment and yaml, see ``config``); the
cluster never reads them.  :func:`settings_of` is how loomcycle code gets
them back from a spec, and :func:`loomcycle_spec` / :func:`with_settings`
build specs without spelling the nesting everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from chaos.cluster.spec import ClusterSpec
from chaos.sut.loomcycle import target_config


@dataclass(frozen=True)
class Timers:
    """The target's cluster timers, in milliseconds (see CONTRACT.md, "Timers").

    The stale threshold is a bet on the longest outage a scenario causes: the
    replica heartbeat is a fixed 30 s ticker, so a replica cut from Postgres
    for d seconds can look stale for up to d + 30 s.
    """

    replica_sweep_ms: int = 5_000
    replica_stale_ms: int = 60_000
    heartbeat_sweep_ms: int = 60_000
    heartbeat_stale_ms: int = 180_000
    cancel_ack_timeout_ms: int = 2_000
    pause_cache_ttl_ms: int = 1_000
    sse_keepalive_ms: int = 20_000
    channels_longpoll_cap_ms: int = 120_000

    @property
    def reap_bound_s(self) -> float:
        """Stale threshold plus one sweep: the documented bound before the margin."""
        return (self.replica_stale_ms + self.replica_sweep_ms) / 1000.0


#: Kills, freezes and cancels; nothing cuts Postgres, so 60 s stale is safe.
CRASH_TIMERS = Timers()
#: Postgres restarts, link cuts, connection exhaustion: outages up to ~60 s + 30 s heartbeat.
OUTAGE_TIMERS = Timers(replica_stale_ms=120_000, heartbeat_stale_ms=240_000)


@dataclass(frozen=True)
class MockProvider:
    latency_ms: int = 2_000
    jitter_ms: int = 250
    rate_429: float = 0.0
    rate_500: float = 0.0
    fallback: bool = False


@dataclass(frozen=True)
class LoomcycleSettings:
    """What every replica of one loomcycle cluster is configured with."""

    timers: Timers = CRASH_TIMERS
    mock: MockProvider = MockProvider()
    #: Per replica (yaml only).
    max_concurrent_runs: int = 32
    #: Cluster-wide, through ``user_quotas`` (only when above 0 and the run has a user_id).
    max_runs_per_user: int = 4
    max_queue_depth: int = 64
    queue_timeout_ms: int = 30_000
    metrics: bool = True
    #: The largest circuit id declared at boot (0 = no circuit agents).
    circuits: int = 0
    auth_token: str = "loomchaos-token"
    #: The user's loomcycle yaml, merged over the suite's (JSON text; ``target_config``).
    config_overlay: str = "{}"
    #: The ``--target-config`` file these settings come from ('' for the suite's presets).
    user_config: str = ""

    def __post_init__(self) -> None:
        if self.max_runs_per_user < 0:
            raise ValueError("max_runs_per_user must be >= 0")


_SETTINGS_FIELDS = frozenset(LoomcycleSettings.__dataclass_fields__)


def settings_of(spec: ClusterSpec) -> LoomcycleSettings:
    """The loomcycle settings a spec carries (the defaults when it carries none)."""
    if spec.target is None:
        return LoomcycleSettings()
    if not isinstance(spec.target, LoomcycleSettings):
        raise TypeError(f"this spec's target is not loomcycle's: {spec.target!r}")
    return spec.target


def _split(changes: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    ours = {k: v for k, v in changes.items() if k in _SETTINGS_FIELDS}
    rest = {k: v for k, v in changes.items() if k not in _SETTINGS_FIELDS}
    return ours, rest


def _deployed(spec: ClusterSpec) -> ClusterSpec:
    """``spec`` with the user's ``--target-config`` in force, when one is (it wins last:
    a scenario's timer preset protects the default run only)."""
    cfg = target_config.active()
    if cfg is None:
        return spec
    _, _, env = target_config.changes(cfg)
    replica_env = {**dict(spec.replica_env), **env}
    return replace(
        spec,
        target=deployed_settings(settings_of(spec), cfg),
        replica_env=tuple(sorted(replica_env.items())),
    )


def deployed_settings(
    settings: LoomcycleSettings, cfg: target_config.TargetConfig
) -> LoomcycleSettings:
    """``settings`` with a target config's timers, caps, token and yaml in force."""
    fields, timers, _ = target_config.changes(cfg)
    return replace(settings, timers=replace(settings.timers, **timers), **fields)


def loomcycle_spec(**fields: Any) -> ClusterSpec:
    """A ClusterSpec from infrastructure and loomcycle fields given side by side."""
    ours, rest = _split(fields)
    return _deployed(ClusterSpec(target=LoomcycleSettings(**ours), **rest))


def with_settings(spec: ClusterSpec, **changes: Any) -> ClusterSpec:
    """``spec`` with some infrastructure and/or loomcycle fields changed."""
    ours, rest = _split(changes)
    target = replace(settings_of(spec), **ours) if ours else spec.target
    return _deployed(replace(spec, target=target, **rest))
