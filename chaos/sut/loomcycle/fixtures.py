"""The pytest fixtures for a loomcycle cluster (a ``pytest11`` plugin of its own).

The generic plugin (:mod:`chaos.plugin`) knows seeds, artifacts, provisioning
and verdicts; everything here knows loomcycle: the image to run, the adapter
and readiness hooks a :class:`~chaos.cluster.cluster.Cluster` gets, and the
contract self-check each new cluster passes before a test may use it.  A
second target ships its own module like this one and an entry point.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from chaos.errors import SetupError
from chaos.report.outcome import keeps_evidence
from chaos.sut.loomcycle import target_config

OPT_TARGET_CONFIG = "--chaos-target-config"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("loomchaos").addoption(
        OPT_TARGET_CONFIG,
        default=None,
        help="YAML with the loomcycle env and config you deploy (env: and config: sections); "
        f"every cluster runs it (env {target_config.ENV_TARGET_CONFIG})",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Put ``--chaos-target-config`` in force before test modules build their specs."""
    path = config.getoption(OPT_TARGET_CONFIG)
    if path:
        os.environ[target_config.ENV_TARGET_CONFIG] = str(Path(path).resolve())
    try:
        target_config.active()
    except SetupError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_report_header(config: pytest.Config) -> list[str]:
    cfg = target_config.active()
    if cfg is None:
        return []
    from chaos.sut.loomcycle.advice import advisories
    from chaos.sut.loomcycle.settings import loomcycle_spec, settings_of

    notes = advisories(settings_of(loomcycle_spec()), cfg)
    return [f"loomchaos: target config {cfg.path}"] + [f"  advisory: {n}" for n in notes]


def _scrub(value: Any, secrets: list[str]) -> Any:
    return target_config.redact(value, secrets) if isinstance(value, str) else value


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Take the target config's secrets out of what JUnit and the terminal show."""
    cfg = target_config.active()
    secrets = target_config.secrets(cfg) if cfg else []
    if not secrets:
        return
    if report.longrepr is not None:
        report.longrepr = target_config.redact(str(report.longrepr), secrets)
    report.sections = [(k, _scrub(v, secrets)) for k, v in report.sections]
    report.user_properties = [(k, _scrub(v, secrets)) for k, v in report.user_properties]


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Take the secrets out of every artifact the session wrote (logs, histories)."""
    cfg = target_config.active()
    secrets = target_config.secrets(cfg) if cfg else []
    if not secrets:
        return
    # The option is the generic plugin's: absent when a session runs without it.
    artifacts = session.config.getoption("--chaos-artifacts", default=None)
    if artifacts and Path(artifacts).is_dir():
        target_config.redact_tree(Path(artifacts), secrets)


def missing_target_message(error: str | None) -> str:
    """The one line a chaos test fails with when the target could not be provisioned."""
    return (
        f"loomcycle unavailable: {error or 'no image'} (give a build with "
        "LOOMCHAOS_LOOMCYCLE_BIN or LOOMCHAOS_LOOMCYCLE_IMAGE; "
        "--chaos-allow-missing-target skips instead)"
    )


@pytest.fixture(scope="session")
def loomcycle_images(request: pytest.FixtureRequest, chaos_provisioned: Any) -> Any:
    """The resolved images; without loomcycle a replica test fails (never a silent skip).

    A chaos tier whose replica scenarios all skip would report green having
    judged nothing, so a missing target is a failure unless the user asks,
    with ``--chaos-allow-missing-target``, to run the infrastructure alone.
    """
    images = chaos_provisioned.images
    if images.loomcycle is None:
        message = missing_target_message(chaos_provisioned.loomcycle_error)
        if request.config.getoption("--chaos-allow-missing-target"):
            pytest.skip(message)
        pytest.fail(message, pytrace=False)
    return images


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def chaos_clusters(loomcycle_images: Any, chaos_session_id: str) -> AsyncIterator[Any]:
    """Session cache of loomcycle clusters (one per ClusterSpec; destructive specs apart)."""
    from chaos.cluster.cluster import Cluster
    from chaos.cluster.manager import ClusterManager
    from chaos.cluster.spec import ClusterSpec
    from chaos.sut.loomcycle import LoomcycleAdapter
    from chaos.sut.loomcycle.hooks import verify_backplane, wait_idle

    def factory(spec: ClusterSpec) -> Cluster:
        return Cluster(
            spec,
            loomcycle_images,
            session_id=chaos_session_id,
            adapter=LoomcycleAdapter.for_spec(spec),
            verify_backplane=verify_backplane,
            wait_idle=wait_idle,
        )

    manager = ClusterManager(factory)
    try:
        yield manager
    finally:
        await manager.close()


@pytest_asyncio.fixture(loop_scope="session")
async def chaos_cluster_for(
    request: pytest.FixtureRequest,
    chaos_clusters: Any,
    chaos_artifacts: Path,
    record_property: Callable[[str, Any], None],
) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """``await chaos_cluster_for(spec)``: a verified cluster; logs saved if the test fails."""
    taken: list[Any] = []

    async def acquire(spec: Any, *, with_replicas: bool = True) -> Any:
        cluster = await chaos_clusters.acquire(spec, with_replicas=with_replicas)
        taken.append(cluster)
        if with_replicas:
            for key, value in (await _contract_once(cluster)).items():
                record_property(key, value)
        if target_config.active() is not None:
            from chaos.sut.loomcycle.advice import advisories
            from chaos.sut.loomcycle.settings import settings_of

            notes = advisories(settings_of(cluster.spec), target_config.active())
            record_property("target_config_advisories", json.dumps(notes))
        return cluster

    yield acquire
    kept = keeps_evidence(request.node)
    for cluster in taken:
        if kept:
            await cluster.collect_logs(chaos_artifacts / "logs")
        await chaos_clusters.release(cluster)


#: Contract self-check results per cluster id: checked once per cluster, recorded for every test.
_CONTRACT_CHECKED: dict[str, dict[str, str]] = {}


async def _contract_once(cluster: Any) -> dict[str, str]:
    """Stop in one line if the target lacks what the checkers read; return its identity.

    Deviations that no checker depends on (``ContractProblem.blocking`` false)
    do not stop the session: they are printed and recorded as the JUnit
    property ``target_contract_deviations``, the evidence of a finding.
    """
    if cluster.id in _CONTRACT_CHECKED:
        return _CONTRACT_CHECKED[cluster.id]
    import asyncpg
    import docker

    from chaos.sut.loomcycle import LoomcycleAdapter
    from chaos.sut.loomcycle.contract import (
        blocking,
        check_contract,
        non_blocking,
        target_identity,
    )

    adapter = LoomcycleAdapter.for_spec(cluster.spec)
    client = adapter.client(cluster.lb_url)
    conn = await asyncpg.connect(cluster.pg_dsn)
    try:
        problems = await check_contract(client, conn, expected_version=adapter.version)
        identity = await target_identity(
            client,
            name=adapter.name,
            expected_version=adapter.version,
            image_ref=cluster.images.loomcycle,
            docker_client=docker.from_env(),
        )
    finally:
        await conn.close()
        await client.aclose()
    if blocking(problems):
        pytest.fail("target contract check failed: " + "; ".join(blocking(problems)), pytrace=False)
    properties = identity.as_properties()
    deviations = non_blocking(problems)
    if deviations:
        print(
            "loomchaos: target deviates from its documentation (non-blocking): "
            + "; ".join(deviations)
        )
        properties["target_contract_deviations"] = json.dumps(deviations)
    _CONTRACT_CHECKED[cluster.id] = properties
    return properties
