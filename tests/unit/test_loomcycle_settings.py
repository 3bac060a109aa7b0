"""ClusterSpec carries infrastructure; loomcycle's settings ride in it as an opaque value."""

from __future__ import annotations

import pytest

from chaos.cluster.spec import ClusterSpec
from chaos.sut.loomcycle.settings import (
    CRASH_TIMERS,
    OUTAGE_TIMERS,
    LoomcycleSettings,
    MockProvider,
    loomcycle_spec,
    settings_of,
    with_settings,
)


def test_a_spec_without_target_settings_means_loomcycles_defaults() -> None:
    assert settings_of(ClusterSpec()) == LoomcycleSettings()


def test_a_foreign_target_is_refused_not_misread() -> None:
    with pytest.raises(TypeError, match="not loomcycle's"):
        settings_of(ClusterSpec(target=("toy", 1)))


def test_loomcycle_spec_splits_infrastructure_from_settings() -> None:
    spec = loomcycle_spec(replicas=2, timers=OUTAGE_TIMERS, max_runs_per_user=3)
    assert spec.replicas == 2
    assert settings_of(spec) == LoomcycleSettings(timers=OUTAGE_TIMERS, max_runs_per_user=3)


def test_with_settings_changes_either_side_and_keeps_the_rest() -> None:
    base = loomcycle_spec(replicas=3, mock=MockProvider(latency_ms=10))
    changed = with_settings(base, replicas=2, max_concurrent_runs=1)
    assert changed.replicas == 2
    assert settings_of(changed).max_concurrent_runs == 1
    assert settings_of(changed).mock == MockProvider(latency_ms=10)
    assert settings_of(changed).timers == CRASH_TIMERS
    assert with_settings(base, replicas=2).target is base.target


def test_equal_specs_are_equal_and_hash_alike_so_clusters_are_shared() -> None:
    a = loomcycle_spec(max_runs_per_user=4)
    b = with_settings(ClusterSpec(), max_runs_per_user=4)
    assert a == b and hash(a) == hash(b)
    assert a != with_settings(a, max_runs_per_user=5)


def test_settings_validate_their_own_fields() -> None:
    with pytest.raises(ValueError, match="max_runs_per_user"):
        LoomcycleSettings(max_runs_per_user=-1)


def test_postgres_sizing_counts_the_targets_dedicated_connections() -> None:
    # 3 x (16 + 11) + 5 + 10 = 96
    assert ClusterSpec(pg_max_connections=96).pg_max_connections == 96
    with pytest.raises(ValueError, match="11 dedicated"):
        ClusterSpec(pg_max_connections=95)
    assert ClusterSpec(pg_max_connections=63, replica_extra_connections=0).replicas == 3
