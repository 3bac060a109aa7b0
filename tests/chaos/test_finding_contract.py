"""Finding LC-001, reduced: an unknown agent id's 404 body is not valid JSON.

Deterministic (hit 10 of 10 on the real target): one GET and one cancel of an
id that never ran, on the smoke cluster every session already has.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from chaos.findings import known_finding
from chaos.sut.loomcycle.contract import (
    UNKNOWN_AGENT_CODE,
    ContractDeviation,
    check_unknown_agent,
    json_or_none,
)
from chaos.sut.loomcycle.ports import lb_client
from chaos.sut.loomcycle.specs import SMOKE_SPEC

pytestmark = [pytest.mark.chaos, pytest.mark.asyncio(loop_scope="session")]


@known_finding("LC-001", raises=ContractDeviation)
async def test_unknown_agent_404_body_is_valid_json(
    chaos_cluster_for: Callable[..., Awaitable[Any]],
) -> None:
    cluster = await chaos_cluster_for(SMOKE_SPEC)
    probe = f"loomchaos-lc001-{secrets.token_hex(4)}"
    async with lb_client(cluster) as client:
        status, raw = await client.get_text(f"/v1/agents/{probe}")  # type: ignore[attr-defined]
    assert status == 404, f"an id that never ran answered HTTP {status}"
    problems = check_unknown_agent(
        "GET /v1/agents/{id}", status, json_or_none(raw), UNKNOWN_AGENT_CODE, raw
    )
    if problems:
        raise ContractDeviation("; ".join(p.line for p in problems))
