"""The contract self-check: pure comparisons, and check_contract on hand-made answers."""

from __future__ import annotations

from typing import Any

import httpx

from chaos.sut.loomcycle.client import LoomcycleClient
from chaos.sut.loomcycle.contract import (
    ContractProblem,
    TargetIdentity,
    blocking,
    check_contract,
    check_health_body,
    check_stats_body,
    check_unknown_agent,
    missing_fields,
    non_blocking,
    version_mismatch,
)
from chaos.sut.loomcycle.sql import CONTRACT_COLUMNS

GOOD_HEALTH = {
    "ok": True,
    "version": "v1.59.0",
    "replica_id": "r1",
    "replicas": [{"id": "r1", "hostname": "h", "started_at": "t", "last_heartbeat_at": "t"}],
}


def test_missing_fields() -> None:
    assert missing_fields("X", {"a": 1}, ["a"]) == []
    assert missing_fields("X", {"a": 1}, ["a", "b"]) == ["X: field b is missing"]
    assert missing_fields("X", [1], ["a"]) == ["X: expected a JSON object, got list"]


def test_health_body() -> None:
    assert check_health_body(200, GOOD_HEALTH) == []
    no_view = {k: v for k, v in GOOD_HEALTH.items() if k != "replicas"}
    assert check_health_body(200, no_view) == ["GET /healthz: field replicas is missing"]
    bad_replica = dict(GOOD_HEALTH, replicas=[{"id": "r1"}])
    assert check_health_body(200, bad_replica) == [
        "GET /healthz replicas[0]: field last_heartbeat_at is missing"
    ]
    assert check_health_body(200, dict(GOOD_HEALTH, replicas="r1")) == [
        "GET /healthz: replicas is not a list"
    ]
    assert check_health_body(502, None) == ["GET /healthz: HTTP 502, expected 200"]


def test_stats_body() -> None:
    assert check_stats_body(200, {"active": 0, "queued": 0}) == []
    assert check_stats_body(200, {"active": 0}) == [
        "GET /v1/_concurrency/stats: field queued is missing"
    ]
    assert check_stats_body(401, {}) == ["GET /v1/_concurrency/stats: HTTP 401, expected 200"]


def test_unknown_agent() -> None:
    code = "unknown_agent_id"
    assert check_unknown_agent("W", 404, {"code": code}, code) == []
    assert check_unknown_agent("W", 404, {}, None) == []
    assert check_unknown_agent("W", 200, {"status": "running"}, code) == [
        ContractProblem("W: HTTP 200 for an unknown agent id, expected 404", blocking=True)
    ]
    assert check_unknown_agent("W", 404, {"code": "nope"}, code) == [
        ContractProblem("W: code 'nope' for an unknown id, expected 'unknown_agent_id'", False)
    ]


# What loomcycle v1.59.0 really answers (server.go formats the id with %q inside a JSON string).
V159_404 = '{"code":"unknown_agent_id","error":"no run found for agent_id "loomchaos-contract-1""}'


def test_a_404_body_that_is_not_json_is_a_non_blocking_deviation() -> None:
    problems = check_unknown_agent("W", 404, None, "unknown_agent_id", V159_404)
    assert blocking(problems) == []
    assert non_blocking(problems) == [f"W: the 404 body is not valid JSON: {V159_404!r}"]


def test_a_200_for_an_unknown_id_blocks_whatever_the_body() -> None:
    problems = check_unknown_agent("W", 200, None, "unknown_agent_id", "{}")
    assert blocking(problems) == ["W: HTTP 200 for an unknown agent id, expected 404"]


def test_version_mismatch() -> None:
    assert version_mismatch("v1.59.0", "v1.59.0") is None
    assert version_mismatch("v1.59.0", "devel") == (
        "version: the adapter targets v1.59.0, the replica reports 'devel'"
    )


class ColumnsDB:
    def __init__(self, columns: dict[str, set[str]]) -> None:
        self.columns = columns

    async def fetch(self, query: str, *args: Any) -> list[Any]:
        return [
            {"table_name": t, "column_name": c} for t, cols in self.columns.items() for c in cols
        ]

    async def fetchval(self, query: str, *args: Any) -> Any:
        return None


def target(
    health: dict[str, Any], agent_status: int, agent_body: str | None = None
) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/healthz":
            return httpx.Response(200, json=health)
        if path == "/v1/_concurrency/stats":
            return httpx.Response(200, json={"active": 0, "queued": 0})
        if path.endswith("/cancel"):
            return httpx.Response(404, json={"code": "unknown_agent_id"})
        if path.startswith("/v1/agents/loomchaos-contract-"):
            if agent_body is not None:
                return httpx.Response(agent_status, text=agent_body)
            return httpx.Response(agent_status, json={"code": "unknown_agent_id"})
        return httpx.Response(500)

    return httpx.MockTransport(handler)


async def test_check_contract_passes_on_a_conforming_target() -> None:
    db = ColumnsDB({t: set(c) for t, c in CONTRACT_COLUMNS.items()})
    async with LoomcycleClient("http://r1", "t", transport=target(GOOD_HEALTH, 404)) as client:
        assert await check_contract(client, db, expected_version="v1.59.0") == []


async def test_check_contract_reports_every_gap() -> None:
    columns = {t: set(c) for t, c in CONTRACT_COLUMNS.items()}
    columns["runs"].discard("replica_id")
    health = {k: v for k, v in GOOD_HEALTH.items() if k != "replicas"}
    async with LoomcycleClient("http://r1", "t", transport=target(health, 200)) as client:
        problems = await check_contract(client, ColumnsDB(columns), expected_version="v1.60.0")
    assert blocking(problems) == [
        "GET /healthz: field replicas is missing",
        "GET /v1/agents/{id}: HTTP 200 for an unknown agent id, expected 404",
        "column runs.replica_id is missing",
    ]
    assert non_blocking(problems) == [
        "version: the adapter targets v1.60.0, the replica reports 'v1.59.0'"
    ]


async def test_the_real_malformed_404_lets_the_session_go_on() -> None:
    db = ColumnsDB({t: set(c) for t, c in CONTRACT_COLUMNS.items()})
    transport = target(GOOD_HEALTH, 404, agent_body=V159_404)
    async with LoomcycleClient("http://r1", "t", transport=transport) as client:
        problems = await check_contract(client, db, expected_version="v1.59.0")
    assert blocking(problems) == []
    assert len(non_blocking(problems)) == 1
    assert "not valid JSON" in non_blocking(problems)[0]


def test_identity_properties_are_flat_strings() -> None:
    ident = TargetIdentity("loomcycle", "v1.59.0", None, "img:tag", None)
    assert ident.as_properties() == {
        "target": "loomcycle",
        "target_version": "v1.59.0",
        "target_reported_version": "",
        "target_image": "img:tag",
        "target_image_id": "",
    }
