"""Rendering a loomcycle replica's launch from a ClusterSpec."""

from __future__ import annotations

import json

import pytest

from chaos.cluster.spec import ClusterSpec
from chaos.sut.base import Health
from chaos.sut.loomcycle import config
from chaos.sut.loomcycle.adapter import LoomcycleAdapter, cluster_ready
from chaos.sut.loomcycle.settings import MockProvider, Timers, loomcycle_spec, settings_of

DSN = "postgres://loomchaos:pw@pg:5432/loomcycle?sslmode=disable"


def test_env_turns_on_cluster_mode_with_spec_values() -> None:
    spec = loomcycle_spec(pool_size=12, max_runs_per_user=3, timers=Timers(replica_stale_ms=90_000))
    env = config.render_env(spec, "r1", DSN)
    assert env["LOOMCYCLE_STORAGE_BACKEND"] == "postgres"
    assert env["LOOMCYCLE_PG_DSN"] == DSN
    assert env["LOOMCYCLE_REPLICA_ID"] == "r1"
    assert env["LOOMCYCLE_PG_AUTOMIGRATE"] == "1"
    assert env["LOOMCYCLE_LISTEN_ADDR"] == "0.0.0.0:8787"
    assert env["LOOMCYCLE_AUTH_TOKEN"] == settings_of(spec).auth_token
    assert env["OLLAMA_BASE_URL"] == "disabled"
    assert env["LOOMCYCLE_PG_MAX_OPEN_CONNS"] == "12"
    assert env["LOOMCYCLE_PG_MIN_IDLE_CONNS"] == "4"
    assert env["LOOMCYCLE_MAX_CONCURRENT_RUNS_PER_USER"] == "3"
    assert env["LOOMCYCLE_REPLICAS_STALE_AFTER_MS"] == "90000"
    assert env["LOOMCYCLE_REPLICAS_SWEEP_INTERVAL_MS"] == "5000"
    assert env["LOOMCYCLE_CANCEL_ACK_TIMEOUT_MS"] == "2000"
    assert env["LOOMCYCLE_SSE_KEEPALIVE_MS"] == "20000"
    assert env["LOOMCYCLE_CHANNELS_LONGPOLL_CAP_MS"] == "120000"
    assert env["LOOMCYCLE_METRICS_ENABLED"] == "1"
    assert env["LOOMCYCLE_DATA_DIR"] == config.DATA_DIR
    assert all(isinstance(v, str) for v in env.values())


def test_env_mock_knobs_and_rates_render_without_float_noise() -> None:
    spec = loomcycle_spec(mock=MockProvider(latency_ms=300, jitter_ms=10, rate_429=0.15))
    env = config.render_env(spec, "r1", DSN)
    assert env["LOOMCYCLE_MOCK_ENABLED"] == "1"
    assert env["LOOMCYCLE_MOCK_LATENCY_MS"] == "300"
    assert env["LOOMCYCLE_MOCK_LATENCY_JITTER_MS"] == "10"
    assert env["LOOMCYCLE_MOCK_429_RATE"] == "0.15"
    assert env["LOOMCYCLE_MOCK_500_RATE"] == "0"


def test_env_extra_entries_win_and_metrics_can_be_off() -> None:
    spec = loomcycle_spec(
        metrics=False, replica_env=(("LOOMCYCLE_CHANNEL_DEBUG", "1"), ("OLLAMA_BASE_URL", "x"))
    )
    env = config.render_env(spec, "r1", DSN)
    assert env["LOOMCYCLE_CHANNEL_DEBUG"] == "1"
    assert env["OLLAMA_BASE_URL"] == "x"
    assert "LOOMCYCLE_METRICS_ENABLED" not in env


@pytest.mark.parametrize(
    "dsn",
    ["host=pg user=u dbname=d", "mysql://u@h/d", "postgres:///only-a-path"],
)
def test_keyword_or_foreign_dsn_is_refused(dsn: str) -> None:
    with pytest.raises(ValueError, match="URL"):
        config.render_env(ClusterSpec(), "r1", dsn)


@pytest.mark.parametrize("replica_id", ["", "-r1", "r 1", "r/1", "x" * 65])
def test_bad_replica_id_is_refused(replica_id: str) -> None:
    with pytest.raises(ValueError, match="replica id"):
        config.render_env(ClusterSpec(), replica_id, DSN)


def test_stale_threshold_at_or_below_the_heartbeat_is_refused() -> None:
    spec = loomcycle_spec(timers=Timers(replica_stale_ms=30_000))
    with pytest.raises(ValueError, match="heartbeat"):
        config.render_env(spec, "r1", DSN)


def test_out_of_range_rate_is_refused() -> None:
    with pytest.raises(ValueError, match="rate"):
        config.render_env(loomcycle_spec(mock=MockProvider(rate_429=1.5)), "r1", DSN)


def test_plain_config_is_json_with_one_mock_agent() -> None:
    text = config.render_config_text(loomcycle_spec(max_concurrent_runs=7, max_runs_per_user=2))
    cfg = json.loads(text)  # JSON text, which is also YAML
    assert cfg["provider_priority"] == ["mock"]
    assert cfg["tiers"] == {"middle": [{"provider": "mock", "model": "mock-generic"}]}
    assert cfg["concurrency"]["max_concurrent_runs"] == 7
    assert cfg["concurrency"]["max_concurrent_runs_per_user"] == 2
    assert set(cfg["agents"]) == {"chaos"}
    assert cfg["agents"]["chaos"]["tier"] == "middle"
    assert "user_tiers" not in cfg and "channels" not in cfg
    assert "storage" not in cfg  # storage comes from the environment only


def test_fallback_config_gives_every_agent_a_second_candidate() -> None:
    cfg = config.render_config(loomcycle_spec(mock=MockProvider(fallback=True), circuits=1))
    assert cfg["provider_priority"] == ["mock", "mock-stable"]
    default = cfg["user_tiers"]["default"]
    assert default["fallback_on_error"] is True
    assert default["max_fallback_attempts"] == 3
    for name in ("chaos", "researcher", "editor", "evaluator"):
        agent = cfg["agents"][name]
        providers = [c["provider"] for c in agent["models"]["middle"]]
        assert providers == ["mock", "mock-stable"], name
        assert "provider" not in agent  # a pin cannot fall back


def test_circuits_declare_agents_and_one_channel_pair_per_circuit() -> None:
    cfg = config.render_config(loomcycle_spec(circuits=3))
    channels = cfg["channels"]
    assert len(channels) == 6
    assert set(channels) == {
        f"{k}/c{n}" for k in ("research-done", "editing-done") for n in (1, 2, 3)
    }
    ch = channels["research-done/c2"]
    assert (ch["scope"], ch["semantic"], ch["default_ttl"], ch["max_messages"]) == (
        "global",
        "queue",
        600,
        1000,
    )
    researcher = cfg["agents"]["researcher"]
    assert (researcher["provider"], researcher["model"]) == ("mock", "mock-researcher")
    assert researcher["channels"] == {"publish": ["research-done/*"], "subscribe": []}
    assert researcher["memory_scopes"] == ["user"]
    editor = cfg["agents"]["editor"]
    assert editor["channels"] == {"publish": ["editing-done/*"], "subscribe": ["research-done/*"]}
    evaluator = cfg["agents"]["evaluator"]
    assert "Evaluation" in evaluator["tools"]
    assert evaluator["evaluation_scopes"] == ["submit_any"]


def test_launch_carries_command_env_and_config_file() -> None:
    spec = loomcycle_spec(circuits=1)
    launch = LoomcycleAdapter.for_spec(spec).replica_launch(spec, "r2", DSN)
    assert launch.command == ("--config", config.CONFIG_PATH)  # after the ENTRYPOINT
    assert launch.env["LOOMCYCLE_REPLICA_ID"] == "r2"
    assert json.loads(launch.files[config.CONFIG_PATH]) == config.render_config(spec)
    assert (launch.port, launch.health_path) == (8787, "/healthz")


def test_adapter_refuses_a_spec_with_another_token() -> None:
    adapter = LoomcycleAdapter(auth_token="a")
    with pytest.raises(ValueError, match="for_spec"):
        adapter.replica_launch(loomcycle_spec(auth_token="b"), "r1", DSN)
    assert (adapter.name, adapter.version) == ("loomcycle", "v1.59.0")


def test_cluster_ready_needs_every_replica_listed() -> None:
    ids = ["r1", "r2"]
    assert cluster_ready(Health(True, "r1", "v1.59.0", ("r1", "r2", "r3")), ids)
    assert not cluster_ready(Health(True, "r1", "v1.59.0", ("r1",)), ids)
    assert not cluster_ready(Health(True, "r1", "v1.59.0", None), ids)
    assert not cluster_ready(Health(False, "r1", "v1.59.0", ("r1", "r2")), ids)
