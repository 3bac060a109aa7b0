"""Rendering one loomcycle replica's launch (environment, config file, command).

Everything here follows CONTRACT.md ("Starting a replica", "Timers",
"Circuits"); where the contract is silent it follows loomcycle's own
cluster rig (``test/load/cluster-mock``): every replica reads the same config
file and differs only by ``LOOMCYCLE_REPLICA_ID``, and storage is driven
entirely from the environment so the file carries no DSN.

The config file is written as JSON text.  JSON is a subset of YAML 1.2, and
loomcycle's YAML parser reads it as such, so the suite needs no PyYAML
dependency and cannot get YAML's quoting rules wrong (a model name like
``no`` or a channel name with ``/`` or ``*`` stays a plain string).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from chaos.cluster.spec import ClusterSpec
from chaos.sut.loomcycle.settings import Timers, settings_of
from chaos.sut.loomcycle.target_config import merge

#: Where both image families keep the binary, as their ENTRYPOINT; a locally
#: built image must do the same (fixtures/images/loomcycle does).
BINARY_PATH = "/usr/local/bin/loomcycle"
CONFIG_PATH = "/etc/loomcycle/loomcycle.yaml"
#: Under /tmp because the public image is distroless and runs as uid 65532:
#: /tmp is the one directory writable by any uid in both image families.
DATA_DIR = "/tmp/loomcycle-data"
PORT = 8787
HEALTH_PATH = "/healthz"
#: The replica heartbeat is a fixed 30 s ticker (not configurable).
REPLICA_HEARTBEAT_MS = 30_000
#: Line a replica logs once its LISTEN/NOTIFY backplane and sweepers run.
CLUSTER_READY_LOG = "coord: cluster mode active"

#: The single-run agent every workload uses (one provider call per run, so the
#: mock latency knob sets the run's length).
CHAOS_AGENT = "chaos"
CIRCUIT_AGENTS = ("researcher", "editor", "evaluator")

_REPLICA_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_CHANNEL_TTL_S = 600
_CHANNEL_MAX_MESSAGES = 1000
_METRICS_SAMPLE_MS = 1000
_MIN_IDLE_CONNS = 4


def _check_dsn(pg_dsn: str) -> None:
    """loomcycle accepts only the URL form of a DSN; catch a keyword DSN here."""
    parts = urlsplit(pg_dsn)
    if parts.scheme not in ("postgres", "postgresql") or not parts.hostname:
        raise ValueError(
            "LOOMCYCLE_PG_DSN must be a URL like "
            f"postgres://user:pass@host:5432/db?sslmode=disable, got {pg_dsn!r}"
        )


def _check_timers(timers: Timers) -> None:
    """Refuse timers that would reap healthy replicas.

    A stale threshold at or below the fixed 30 s heartbeat marks live
    replicas dead between two beats; the suite would then be testing its
    own misconfiguration.
    """
    if timers.replica_stale_ms <= REPLICA_HEARTBEAT_MS:
        raise ValueError(
            f"replica_stale_ms={timers.replica_stale_ms} must exceed the fixed "
            f"{REPLICA_HEARTBEAT_MS} ms replica heartbeat"
        )


def _rate(value: float) -> str:
    """Format a 0..1 rate the way Go's ParseFloat reads it (no float noise)."""
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"mock error rate must be within 0..1, got {value}")
    return f"{value:g}"


def render_env(spec: ClusterSpec, replica_id: str, pg_dsn: str) -> dict[str, str]:
    """The replica's environment; ``spec.replica_env`` entries win over ours."""
    if not _REPLICA_ID.match(replica_id):
        raise ValueError(f"replica id {replica_id!r} does not match {_REPLICA_ID.pattern}")
    _check_dsn(pg_dsn)
    if not settings_of(spec).user_config:
        # The suite's own presets are guarded; a user's deployed timers are run as they
        # are and judged by the invariants (advice.advisories says what is odd).
        _check_timers(settings_of(spec).timers)
    t = settings_of(spec).timers
    mock = settings_of(spec).mock
    env: dict[str, str] = {
        # Cluster mode: Postgres storage plus a replica id (the id alone on
        # sqlite is a fatal boot error).
        "LOOMCYCLE_STORAGE_BACKEND": "postgres",
        "LOOMCYCLE_PG_DSN": pg_dsn,
        "LOOMCYCLE_REPLICA_ID": replica_id,
        # Exactly "1": any other value leaves the schema unmigrated.
        "LOOMCYCLE_PG_AUTOMIGRATE": "1",
        "LOOMCYCLE_PG_MAX_OPEN_CONNS": str(spec.pool_size),
        "LOOMCYCLE_PG_MIN_IDLE_CONNS": str(min(_MIN_IDLE_CONNS, spec.pool_size)),
        "LOOMCYCLE_LISTEN_ADDR": f"0.0.0.0:{PORT}",
        "LOOMCYCLE_AUTH_TOKEN": settings_of(spec).auth_token,
        "LOOMCYCLE_DATA_DIR": DATA_DIR,
        # Otherwise the default local Ollama provider is registered and probed.
        "OLLAMA_BASE_URL": "disabled",
        # Timers (CONTRACT.md, "Timers"); the 30 s heartbeat has no knob.
        "LOOMCYCLE_REPLICAS_SWEEP_INTERVAL_MS": str(t.replica_sweep_ms),
        "LOOMCYCLE_REPLICAS_STALE_AFTER_MS": str(t.replica_stale_ms),
        "LOOMCYCLE_HEARTBEAT_SWEEP_INTERVAL_MS": str(t.heartbeat_sweep_ms),
        "LOOMCYCLE_HEARTBEAT_STALE_MS": str(t.heartbeat_stale_ms),
        "LOOMCYCLE_CANCEL_ACK_TIMEOUT_MS": str(t.cancel_ack_timeout_ms),
        "LOOMCYCLE_PAUSE_CACHE_TTL_MS": str(t.pause_cache_ttl_ms),
        "LOOMCYCLE_SSE_KEEPALIVE_MS": str(t.sse_keepalive_ms),
        # Must exceed the longest channel wait of a circuit; harmless without circuits.
        "LOOMCYCLE_CHANNELS_LONGPOLL_CAP_MS": str(t.channels_longpoll_cap_ms),
        # Mock provider: knobs are read once at boot.
        "LOOMCYCLE_MOCK_ENABLED": "1",
        "LOOMCYCLE_MOCK_LATENCY_MS": str(mock.latency_ms),
        "LOOMCYCLE_MOCK_LATENCY_JITTER_MS": str(mock.jitter_ms),
        "LOOMCYCLE_MOCK_429_RATE": _rate(mock.rate_429),
        "LOOMCYCLE_MOCK_500_RATE": _rate(mock.rate_500),
        # Cluster-wide cap; user_quotas is used only when this is above 0.
        "LOOMCYCLE_MAX_CONCURRENT_RUNS_PER_USER": str(settings_of(spec).max_runs_per_user),
    }
    if settings_of(spec).metrics:
        env["LOOMCYCLE_METRICS_ENABLED"] = "1"
        env["LOOMCYCLE_METRICS_SAMPLE_INTERVAL_MS"] = str(_METRICS_SAMPLE_MS)
    env.update(dict(spec.replica_env))
    return env


def _candidates(model: str, fallback: bool) -> list[dict[str, str]]:
    """A tier's candidate list: the fault-injecting mock, then mock-stable when falling back."""
    out = [{"provider": "mock", "model": model}]
    if fallback:
        out.append({"provider": "mock-stable", "model": model})
    return out


def _circuit_agent(
    name: str, fallback: bool, publish: list[str], subscribe: list[str]
) -> dict[str, Any]:
    tools = ["Memory", "Channel", "Context"]
    agent: dict[str, Any] = {
        "max_tokens": 1500,
        "system_prompt": f"loomchaos circuit {name}",
        "memory_scopes": ["user"],
        "channels": {"publish": publish, "subscribe": subscribe},
    }
    if name == "evaluator":
        tools = ["Memory", "Channel", "Evaluation", "Context"]
        agent["evaluation_scopes"] = ["submit_any"]
    agent["tools"] = tools
    model = f"mock-{name}"
    if fallback:
        # A provider pin is a single candidate and cannot fall back; a tier
        # list gives the resolver mock-stable to escalate to.
        agent["tier"] = "middle"
        agent["models"] = {"middle": _candidates(model, True)}
    else:
        agent["provider"] = "mock"
        agent["model"] = model
    return agent


def _circuit_agents(fallback: bool) -> dict[str, Any]:
    return {
        "researcher": _circuit_agent("researcher", fallback, ["research-done/*"], []),
        "editor": _circuit_agent("editor", fallback, ["editing-done/*"], ["research-done/*"]),
        "evaluator": _circuit_agent("evaluator", fallback, [], ["editing-done/*"]),
    }


def _channels(circuits: int) -> dict[str, Any]:
    """One channel pair per circuit id: the runtime API rejects '/' in channel
    names, so every channel a circuit uses must exist in the file at boot."""
    out: dict[str, Any] = {}
    for n in range(1, circuits + 1):
        for kind in ("research-done", "editing-done"):
            out[f"{kind}/c{n}"] = {
                "description": f"loomchaos circuit c{n} {kind}",
                "scope": "global",
                "semantic": "queue",
                "default_ttl": _CHANNEL_TTL_S,
                "max_messages": _CHANNEL_MAX_MESSAGES,
            }
    return out


def render_config(spec: ClusterSpec) -> dict[str, Any]:
    """The config file's content as a plain mapping (see :func:`render_config_text`)."""
    fallback = settings_of(spec).mock.fallback
    priority = ["mock", "mock-stable"] if fallback else ["mock"]
    chaos_agent: dict[str, Any] = {
        "tier": "middle",
        "max_tokens": 256,
        "system_prompt": "loomchaos test agent",
    }
    if fallback:
        chaos_agent["models"] = {"middle": _candidates("mock-generic", True)}
    config: dict[str, Any] = {
        "provider_priority": priority,
        "tiers": {"middle": _candidates("mock-generic", fallback)},
        "concurrency": {
            # Per replica and yaml-only; the per-user cap is cluster-wide.
            "max_concurrent_runs": settings_of(spec).max_concurrent_runs,
            "max_queue_depth": settings_of(spec).max_queue_depth,
            "queue_timeout_ms": settings_of(spec).queue_timeout_ms,
            "max_concurrent_runs_per_user": settings_of(spec).max_runs_per_user,
        },
        "agents": {CHAOS_AGENT: chaos_agent},
    }
    if fallback:
        config["user_tiers"] = {
            "default": {
                "provider_priority": priority,
                "tiers": {"middle": _candidates("mock-generic", True)},
                "fallback_on_error": True,
                "max_fallback_attempts": 3,
                "retry_attempts": 2,
            }
        }
    if settings_of(spec).circuits > 0:
        config["channels"] = _channels(settings_of(spec).circuits)
        config["agents"].update(_circuit_agents(fallback))
    overlay = json.loads(settings_of(spec).config_overlay)
    return merge(config, overlay) if overlay else config


def render_config_text(spec: ClusterSpec) -> str:
    """The config file as JSON text, which loomcycle's YAML parser reads as YAML."""
    return json.dumps(render_config(spec), indent=2, sort_keys=True) + "\n"


def replica_command(config_path: str = CONFIG_PATH) -> tuple[str, ...]:
    """The arguments after the image's ENTRYPOINT (the binary, at :data:`BINARY_PATH`
    in both the public and the local image); the cluster passes them as the
    container's command.  Plain ``--config``: loomcycle has no ``serve``
    subcommand, and an unknown first word is a fatal usage error, so the
    binary's name must not be repeated here."""
    return ("--config", config_path)


def config_files(spec: ClusterSpec) -> Mapping[str, bytes]:
    return {CONFIG_PATH: render_config_text(spec).encode()}
