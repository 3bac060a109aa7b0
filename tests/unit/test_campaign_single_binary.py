"""The baseline's single-binary mode: launch, readiness, options, plan, where the load goes,
and the cluster-only checkers reported as not applicable (no Docker)."""

from __future__ import annotations

import argparse
from types import SimpleNamespace
from typing import Any, cast

import pytest

from chaos.campaign.cli import add_campaign_parser, options_from
from chaos.campaign.engine import entry_url
from chaos.campaign.modes import CLUSTER_ONLY, judged_checks, not_applicable, with_not_applicable
from chaos.campaign.plan import plan_legs
from chaos.checks import ALL_CHECKS
from chaos.sut.base import Health
from chaos.sut.loomcycle.adapter import LoomcycleAdapter
from chaos.sut.loomcycle.campaign import (
    REPLICA_ID_ENV,
    SingleBinaryAdapter,
    SingleBinaryClient,
    campaign_spec,
    single_binary_health,
)
from chaos.verdict import Status, Verdict

DSN = "postgres://postgres:pw@pg:5432/loomcycle?sslmode=disable"
CHECKS = list(ALL_CHECKS)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_campaign_parser(parser.add_subparsers(dest="command"), lambda a: 0)
    return parser.parse_args(["campaign", *argv])


def spec(replicas: int = 1) -> Any:
    return campaign_spec(
        replicas=replicas, latency_ms=2000, jitter_ms=250, per_user_cap=4, max_concurrent_runs=32
    )


# -- launch ---------------------------------------------------------------------------


def test_the_single_binary_launch_is_the_replica_launch_without_the_replica_id() -> None:
    s = spec()
    cluster = LoomcycleAdapter.for_spec(s).replica_launch(s, "r1", DSN)
    single = SingleBinaryAdapter.for_spec(s).replica_launch(s, "r1", DSN)
    assert cluster.env[REPLICA_ID_ENV] == "r1"
    assert REPLICA_ID_ENV not in single.env
    # The mode is the only difference: same store, timers, mock, files and command.
    assert {k: v for k, v in cluster.env.items() if k != REPLICA_ID_ENV} == dict(single.env)
    assert single.env["LOOMCYCLE_STORAGE_BACKEND"] == "postgres"
    assert (single.command, single.files, single.port) == (
        cluster.command,
        cluster.files,
        cluster.port,
    )


def test_a_replica_id_asked_for_through_replica_env_is_dropped_too() -> None:
    s = campaign_spec(
        replicas=1,
        latency_ms=10,
        jitter_ms=0,
        per_user_cap=4,
        max_concurrent_runs=8,
        replica_env={REPLICA_ID_ENV: "r1"},
    )
    assert REPLICA_ID_ENV not in SingleBinaryAdapter.for_spec(s).replica_launch(s, "r1", DSN).env


@pytest.mark.parametrize(("replicas", "node"), [(2, "r1"), (1, "r2")])
def test_single_binary_mode_refuses_more_than_one_process(replicas: int, node: str) -> None:
    s = spec(replicas)
    with pytest.raises(ValueError, match="one process"):
        SingleBinaryAdapter.for_spec(s).replica_launch(s, node, DSN)


def test_the_single_binary_adapter_gives_clients_that_read_health_its_way() -> None:
    client = SingleBinaryAdapter.for_spec(spec()).client("http://127.0.0.1:1")
    assert isinstance(client, SingleBinaryClient) and client.replica_id == "r1"


# -- readiness --------------------------------------------------------------------------


def test_an_ok_health_without_a_cluster_view_is_the_one_process_ready() -> None:
    health = Health(ok=True, replica_id=None, version="v1.59.0", replica_ids=None)
    assert single_binary_health(health, "r1") == Health(True, None, "v1.59.0", ("r1",))


@pytest.mark.parametrize(
    "health",
    [
        Health(ok=False, replica_id=None, version=None, replica_ids=None),
        # A cluster view: the process runs cluster mode after all, the wrong mode.
        Health(ok=True, replica_id="r1", version=None, replica_ids=("r1",)),
        Health(ok=True, replica_id="r1", version=None, replica_ids=None),
    ],
)
def test_a_failing_or_cluster_mode_health_is_not_ready(health: Health) -> None:
    read = single_binary_health(health, "r1")
    assert not read.ok and read.replica_ids is None


# -- options and plan -----------------------------------------------------------------


def test_the_baseline_runs_without_cluster_mode_unless_asked() -> None:
    baseline = options_from(parse("baseline"), "v1.59.0")
    assert (baseline.cluster_mode, baseline.replicas) == (False, 1)
    assert baseline.as_dict()["cluster_mode"] is False
    (leg,) = plan_legs(baseline)
    assert not leg.cluster_mode
    asked = options_from(parse("baseline", "--cluster-mode"), "v1.59.0")
    assert asked.cluster_mode and plan_legs(asked)[0].cluster_mode


@pytest.mark.parametrize("name", ["burst", "sweep", "faults", "sustained", "ramp", "soak"])
def test_every_other_campaign_runs_cluster_mode(name: str) -> None:
    opts = options_from(parse(name), "v1.59.0")
    assert opts.cluster_mode and all(leg.cluster_mode for leg in plan_legs(opts))


def test_the_load_goes_to_the_balancer_or_to_the_single_process() -> None:
    cluster = cast(
        Any,
        SimpleNamespace(
            lb_url="http://127.0.0.1:8000",
            replica_ids=("r1",),
            replica_url=lambda rid: f"http://127.0.0.1:9001/{rid}",
        ),
    )
    single, clustered = (
        plan_legs(options_from(parse("baseline", *a), "v"))[0] for a in ((), ("--cluster-mode",))
    )
    assert entry_url(cluster, single) == "http://127.0.0.1:9001/r1"
    assert entry_url(cluster, clustered) == "http://127.0.0.1:8000"


# -- the cluster-only checkers ----------------------------------------------------------


def test_cluster_only_checkers_are_not_run_without_cluster_mode() -> None:
    assert judged_checks(CHECKS, cluster_mode=True) == CHECKS
    assert judged_checks(CHECKS, cluster_mode=False) == [c for c in CHECKS if c not in CLUSTER_ONLY]
    assert set(CLUSTER_ONLY) <= set(CHECKS)


def test_not_applicable_is_vacuous_with_its_reason_never_a_pass() -> None:
    verdict = not_applicable("no_quota_leaks")
    assert verdict.status is Status.VACUOUS and verdict.ok
    assert "not applicable without cluster mode" in verdict.summary
    assert "user_quota_store.go" in verdict.summary
    # Without the allowance it would fail, as every vacuous verdict does.
    assert not Verdict.vacuous("no_quota_leaks", verdict.summary).ok


def test_single_binary_verdicts_get_the_not_applicable_ones_in_checker_order() -> None:
    judged = [Verdict.passed(c, "ok") for c in judged_checks(CHECKS, cluster_mode=False)]
    merged = with_not_applicable(judged, CHECKS, cluster_mode=False)
    assert [v.invariant for v in merged] == CHECKS
    for v in merged:
        expected = Status.VACUOUS if v.invariant in CLUSTER_ONLY else Status.PASS
        assert v.status is expected, v


def test_cluster_mode_verdicts_are_left_as_judged() -> None:
    judged = [Verdict.failed(c, "broken") for c in CHECKS]
    assert with_not_applicable(judged, CHECKS, cluster_mode=True) == judged


def test_a_cluster_only_checker_judged_in_single_binary_mode_is_a_bug() -> None:
    judged = [Verdict.passed(c, "ok") for c in CHECKS]
    with pytest.raises(ValueError, match="not applicable"):
        with_not_applicable(judged, CHECKS, cluster_mode=False)
