"""``--target-config``: the user's deployed env and yaml win over the presets, are never
refused, get advisories, and their secrets are redacted (no Docker)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaos.errors import SetupError
from chaos.sut.loomcycle import config, target_config
from chaos.sut.loomcycle.advice import advisories
from chaos.sut.loomcycle.settings import (
    OUTAGE_TIMERS,
    LoomcycleSettings,
    loomcycle_spec,
    settings_of,
    with_settings,
)

DSN = "postgres://loomchaos:pw@pg:5432/loomcycle?sslmode=disable"
DEPLOYED = """
env:
  LOOMCYCLE_REPLICAS_STALE_AFTER_MS: 20000      # below the heartbeat: the target accepts it
  LOOMCYCLE_REPLICAS_SWEEP_INTERVAL_MS: 7000
  LOOMCYCLE_MAX_CONCURRENT_RUNS_PER_USER: 6
  LOOMCYCLE_AUTH_TOKEN: s3cret-token-value
  LOOMCYCLE_PG_DSN: postgres://prod:hunter22@db.internal:5432/lc
  GOGC: 50
config:
  concurrency:
    max_concurrent_runs: 9
  agents:
    chaos:
      max_tokens: 128
"""


@pytest.fixture
def deployed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "deployed.yaml"
    path.write_text(DEPLOYED)
    monkeypatch.setenv(target_config.ENV_TARGET_CONFIG, str(path))
    return path


def test_without_a_file_the_presets_stand(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(target_config.ENV_TARGET_CONFIG, raising=False)
    assert settings_of(loomcycle_spec()) == LoomcycleSettings()


def test_the_deployed_timers_and_caps_win_over_a_scenarios_preset(deployed: Path) -> None:
    spec = with_settings(loomcycle_spec(), timers=OUTAGE_TIMERS, max_runs_per_user=2)
    s = settings_of(spec)
    assert (s.timers.replica_stale_ms, s.timers.replica_sweep_ms) == (20_000, 7_000)
    assert s.timers.heartbeat_stale_ms == OUTAGE_TIMERS.heartbeat_stale_ms  # not in the file
    assert (s.max_runs_per_user, s.max_concurrent_runs) == (6, 9)
    assert s.auth_token == "s3cret-token-value"
    assert s.timers.reap_bound_s == 27.0  # the checkers' bound follows the deployed timers


def test_a_setting_the_suite_would_refuse_is_run_as_deployed(deployed: Path) -> None:
    env = config.render_env(loomcycle_spec(), "r1", DSN)
    assert env["LOOMCYCLE_REPLICAS_STALE_AFTER_MS"] == "20000"
    assert env["GOGC"] == "50"
    assert env["LOOMCYCLE_PG_DSN"] == DSN  # the cluster's wiring stays the suite's


def test_the_deployed_yaml_is_merged_over_the_suites_key_by_key(deployed: Path) -> None:
    rendered = json.loads(config.render_config_text(loomcycle_spec()))
    assert rendered["concurrency"]["max_concurrent_runs"] == 9
    assert rendered["concurrency"]["max_queue_depth"] == LoomcycleSettings().max_queue_depth
    assert rendered["agents"]["chaos"]["max_tokens"] == 128
    assert rendered["agents"]["chaos"]["system_prompt"] == "loomchaos test agent"


def test_advisories_name_what_the_documentation_advises_against(deployed: Path) -> None:
    cfg = target_config.active()
    assert cfg is not None
    notes = advisories(settings_of(loomcycle_spec()), cfg)
    assert any(n.startswith("LOOMCYCLE_REPLICAS_STALE_AFTER_MS=20000") for n in notes)
    assert any("LOOMCYCLE_PG_DSN" in n and n.startswith("ignored") for n in notes)


def test_the_presets_get_no_advisory() -> None:
    assert advisories(LoomcycleSettings()) == []
    assert advisories(LoomcycleSettings(timers=OUTAGE_TIMERS)) == []


def test_secrets_are_found_and_redacted_in_text_and_files(deployed: Path, tmp_path: Path) -> None:
    cfg = target_config.load(deployed)
    secrets = target_config.secrets(cfg)
    assert set(secrets) == {"s3cret-token-value", "hunter22"}
    log = tmp_path / "logs" / "r1.log"
    log.parent.mkdir()
    log.write_text("auth s3cret-token-value dsn postgres://prod:hunter22@db/lc\n")
    (tmp_path / "logs" / "shot.png").write_bytes(b"\x89PNG\xff\xfe")
    assert target_config.redact_tree(tmp_path / "logs", secrets) == [log]
    assert log.read_text() == "auth *** dsn postgres://prod:***@db/lc\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("env: [1, 2]", "must be mappings"),
        ("- a\n- b", "top level must be a mapping"),
        ("envs: {}", "unknown sections"),
        ("env:\n  A: [1]", "must be a string or a number"),
        ("env: {a: 1\n", "not valid YAML"),
    ],
)
def test_a_bad_file_is_a_one_line_error(text: str, message: str) -> None:
    with pytest.raises(SetupError, match=message) as exc:
        target_config.parse(text, "f.yaml")
    assert "\n" not in str(exc.value)


def test_a_missing_file_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(SetupError, match="No such file"):
        target_config.load(tmp_path / "nope.yaml")
