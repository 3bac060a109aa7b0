"""``--target-config FILE``: gate the configuration a user deploys, not the suite's presets.

The file is YAML with two optional sections::

    env:      # the replicas' environment, as deployed (timers, caps, anything LOOMCYCLE_*)
      LOOMCYCLE_REPLICAS_STALE_AFTER_MS: 90000
      LOOMCYCLE_MAX_CONCURRENT_RUNS_PER_USER: 8
    config:   # merged over the suite's loomcycle.yaml; yours wins, key by key
      concurrency:
        max_concurrent_runs: 64

When the file is in force (``LOOMCHAOS_TARGET_CONFIG``, set by the gate and by
``pytest --chaos-target-config``), every loomcycle spec the suite builds
(:func:`chaos.sut.loomcycle.settings.loomcycle_spec`, ``with_settings``) takes
it last: its timers and caps replace the scenario's preset, so the checkers'
bounds are computed from the user's timers, and the rest of its environment
rides along as replica env.  The suite never refuses what the target accepts:
a timer outside the documentation's advice is an *advisory* printed and
recorded beside the verdicts, never a refusal and never a verdict.

Only the wiring a cluster needs is the suite's (where Postgres is, the
replica's id, address and data folder); those keys are ignored with an
advisory.  Secret values (tokens, passwords, a DSN's password) are collected
so that :func:`redact` can take them out of logs, artifacts and JUnit.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from chaos.errors import SetupError

ENV_TARGET_CONFIG = "LOOMCHAOS_TARGET_CONFIG"
REDACTED = "***"
#: Environment keys the cluster wires itself; a deployment's values mean nothing here.
SUITE_OWNED = frozenset(
    {
        "LOOMCYCLE_STORAGE_BACKEND",
        "LOOMCYCLE_PG_DSN",
        "LOOMCYCLE_REPLICA_ID",
        "LOOMCYCLE_LISTEN_ADDR",
        "LOOMCYCLE_DATA_DIR",
        "LOOMCYCLE_PG_AUTOMIGRATE",
    }
)
#: Env key -> the Timers field it sets (the names :func:`config.render_env` writes).
TIMER_KEYS = {
    "LOOMCYCLE_REPLICAS_SWEEP_INTERVAL_MS": "replica_sweep_ms",
    "LOOMCYCLE_REPLICAS_STALE_AFTER_MS": "replica_stale_ms",
    "LOOMCYCLE_HEARTBEAT_SWEEP_INTERVAL_MS": "heartbeat_sweep_ms",
    "LOOMCYCLE_HEARTBEAT_STALE_MS": "heartbeat_stale_ms",
    "LOOMCYCLE_CANCEL_ACK_TIMEOUT_MS": "cancel_ack_timeout_ms",
    "LOOMCYCLE_PAUSE_CACHE_TTL_MS": "pause_cache_ttl_ms",
    "LOOMCYCLE_SSE_KEEPALIVE_MS": "sse_keepalive_ms",
    "LOOMCYCLE_CHANNELS_LONGPOLL_CAP_MS": "channels_longpoll_cap_ms",
}
#: ``concurrency.<key>`` in the yaml -> the settings field the suite's workload and checks read.
CONCURRENCY_KEYS = {
    "max_concurrent_runs": "max_concurrent_runs",
    "max_queue_depth": "max_queue_depth",
    "queue_timeout_ms": "queue_timeout_ms",
    "max_concurrent_runs_per_user": "max_runs_per_user",
}
_SECRET_KEY = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|PRIVATE|CREDENTIAL", re.I)


@dataclass(frozen=True)
class TargetConfig:
    path: str
    env: tuple[tuple[str, str], ...] = ()
    config: str = "{}"  # JSON text: hashable, so specs that carry it stay hashable

    @property
    def env_map(self) -> dict[str, str]:
        return dict(self.env)

    @property
    def config_map(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.config)
        return loaded


def _scalar(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, str | int | float):
        return str(value)
    raise SetupError(f"target config: env {key} must be a string or a number, got {value!r}")


def parse(text: str, path: str) -> TargetConfig:
    """The file's content; a one-line SetupError naming what is wrong."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise SetupError(f"target config {path}: not valid YAML{line}") from None
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise SetupError(f"target config {path}: the top level must be a mapping (env:, config:)")
    unknown = sorted(set(raw) - {"env", "config"})
    if unknown:
        raise SetupError(f"target config {path}: unknown sections {unknown} (only env:, config:)")
    env, config = raw.get("env") or {}, raw.get("config") or {}
    if not isinstance(env, dict) or not isinstance(config, dict):
        raise SetupError(f"target config {path}: env: and config: must be mappings")
    pairs = tuple(sorted((str(k), _scalar(str(k), v)) for k, v in env.items()))
    return TargetConfig(path, pairs, json.dumps(config, sort_keys=True))


def load(path: Path) -> TargetConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SetupError(f"target config {path}: {exc.strerror}") from None
    return parse(text, str(path))


@functools.cache
def _load_cached(path: str) -> TargetConfig:
    return load(Path(path))


def active(env: Mapping[str, str] | None = None) -> TargetConfig | None:
    """The target config in force (``LOOMCHAOS_TARGET_CONFIG``), or None."""
    env = os.environ if env is None else env
    path = env.get(ENV_TARGET_CONFIG)
    return _load_cached(str(Path(path).resolve())) if path else None


def _int(key: str, value: str) -> int:
    try:
        return int(float(value))
    except ValueError:
        raise SetupError(f"target config: {key}={value!r} is not a number") from None


def changes(cfg: TargetConfig) -> tuple[dict[str, Any], dict[str, int], dict[str, str]]:
    """What the file changes: settings fields, timer fields (ms), and passthrough replica env.

    :func:`chaos.sut.loomcycle.settings.loomcycle_spec` applies them; they are
    plain values here so this module needs nothing of the settings'.
    """
    env = cfg.env_map
    timers = {TIMER_KEYS[k]: _int(k, v) for k, v in env.items() if k in TIMER_KEYS}
    fields: dict[str, Any] = {"config_overlay": cfg.config, "user_config": cfg.path}
    cap_key = "LOOMCYCLE_MAX_CONCURRENT_RUNS_PER_USER"
    if cap_key in env:
        fields["max_runs_per_user"] = _int(cap_key, env[cap_key])
    if "LOOMCYCLE_AUTH_TOKEN" in env:
        fields["auth_token"] = env["LOOMCYCLE_AUTH_TOKEN"]
    concurrency = cfg.config_map.get("concurrency")
    if isinstance(concurrency, dict):
        for key, field_name in CONCURRENCY_KEYS.items():
            if key in concurrency:
                fields[field_name] = _int(f"concurrency.{key}", str(concurrency[key]))
    passthrough = {k: v for k, v in env.items() if k not in SUITE_OWNED and k not in TIMER_KEYS}
    return fields, timers, passthrough


def merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """``overlay`` over ``base``, key by key into nested mappings (lists are replaced)."""
    out = dict(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def secrets(cfg: TargetConfig) -> list[str]:
    """Every secret value in the file: secret-named env values and DSN passwords."""
    found: list[str] = []

    def visit(key: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                visit(str(k), v)
        elif isinstance(value, list):
            for v in value:
                visit(key, v)
        elif isinstance(value, str) and value:
            if _SECRET_KEY.search(key):
                found.append(value)
            if "://" in value:
                password = urlsplit(value).password
                if password:
                    found.append(password)

    visit("", cfg.env_map)
    visit("", cfg.config_map)
    # Longest first, so a secret that contains another is replaced whole.
    return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)


def redact(text: str, values: Iterable[str]) -> str:
    for value in values:
        text = text.replace(value, REDACTED)
    return text


def redact_tree(root: Path, values: list[str]) -> list[Path]:
    """Redact every text file under ``root`` in place; the files changed."""
    changed: list[Path] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # not text (a screenshot, a binary dump): nothing a secret hides in
        clean = redact(text, values)
        if clean != text:
            path.write_text(clean, encoding="utf-8")
            changed.append(path)
    return changed
