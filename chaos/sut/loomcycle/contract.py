"""A self-check: does the running target still offer what the suite relies on?

A chaos suite that reads a renamed column gets NULLs, and a NULL can pass an
invariant: a missing ``completed_at`` looks like "still running", a missing
``active_count`` like "no slots held".  Before judging a release, the suite
asks the target for every endpoint field and every column its checks read,
and reports what deviates in plain lines.  Deviations come in two kinds:

* **blocking**: something a checker reads is missing or means something else
  (a column, a field, a 404 that is not a 404).  The checkers' evidence would
  be meaningless, so the session stops;
* **non-blocking**: the target deviates from its own documentation in a way
  no checker depends on (an error body that is not valid JSON, a version
  other than the adapter's).  That is recorded as a finding with its
  evidence, and the session goes on.

The comparisons are pure functions (unit-tested on hand-made bodies);
:func:`check_contract` only gathers the bodies and columns.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from chaos.sut.loomcycle.client import LoomcycleClient
from chaos.sut.loomcycle.sql import LoomcycleStateReader, Queryable, missing_columns

HEALTH_FIELDS = ("ok", "version", "replica_id", "replicas")
REPLICA_FIELDS = ("id", "last_heartbeat_at")
STATS_FIELDS = ("active", "queued")
UNKNOWN_AGENT_CODE = "unknown_agent_id"


class ContractDeviation(AssertionError):
    """The target deviates from its documented wire contract (the invariant's exception)."""


@dataclass(frozen=True)
class ContractProblem:
    """One deviation: the plain line, and whether it makes the evidence meaningless."""

    line: str
    blocking: bool = True

    def __str__(self) -> str:
        return self.line


def blocking(problems: Iterable[ContractProblem]) -> list[str]:
    return [p.line for p in problems if p.blocking]


def non_blocking(problems: Iterable[ContractProblem]) -> list[str]:
    return [p.line for p in problems if not p.blocking]


def missing_fields(where: str, body: Any, fields: Iterable[str]) -> list[str]:
    """Fields absent from a JSON object, as ``"<where>: field <f> is missing"`` lines."""
    if not isinstance(body, Mapping):
        return [f"{where}: expected a JSON object, got {type(body).__name__}"]
    return [f"{where}: field {f} is missing" for f in fields if f not in body]


def check_health_body(status: int, body: Any) -> list[str]:
    """``/healthz`` must answer 200 with the cluster view (``replicas[]``)."""
    if status != 200:
        return [f"GET /healthz: HTTP {status}, expected 200"]
    out = missing_fields("GET /healthz", body, HEALTH_FIELDS)
    replicas = body.get("replicas") if isinstance(body, Mapping) else None
    if replicas is not None and not isinstance(replicas, list):
        out.append("GET /healthz: replicas is not a list")
    elif replicas:
        out.extend(missing_fields("GET /healthz replicas[0]", replicas[0], REPLICA_FIELDS))
    return out


def check_stats_body(status: int, body: Any) -> list[str]:
    if status != 200:
        return [f"GET /v1/_concurrency/stats: HTTP {status}, expected 200"]
    return missing_fields("GET /v1/_concurrency/stats", body, STATS_FIELDS)


def check_unknown_agent(
    where: str, status: int, body: Any, code: str | None, raw: str = ""
) -> list[ContractProblem]:
    """An id that never ran must be a 404 (with ``code`` when one is promised).

    The suite relies on the status to tell "never admitted" from "admitted":
    a 200 for a made-up id would make every status check meaningless, so
    that blocks.  The body's ``code`` is read by no checker: a body that is
    not JSON (loomcycle v1.59.0 formats it with Go's ``%q`` inside a JSON
    string) or carries another code is a non-blocking deviation.
    """
    if status != 404:
        return [ContractProblem(f"{where}: HTTP {status} for an unknown agent id, expected 404")]
    if code is None:
        return []
    if not isinstance(body, Mapping):
        return [
            ContractProblem(
                f"{where}: the 404 body is not valid JSON: {raw[:200]!r}", blocking=False
            )
        ]
    got = body.get("code")
    if got == code:
        return []
    return [ContractProblem(f"{where}: code {got!r} for an unknown id, expected {code!r}", False)]


def version_mismatch(expected: str, reported: str | None) -> str | None:
    """A line when the replica reports another release than the adapter targets."""
    if reported == expected:
        return None
    return f"version: the adapter targets {expected}, the replica reports {reported!r}"


async def check_contract(
    client: LoomcycleClient, pg: Queryable, *, expected_version: str | None = None
) -> list[ContractProblem]:
    """Every deviation of the running target from what the suite relies on (empty = fine).

    Probes with a random agent id that cannot exist, so it starts no run
    and cancels nothing.
    """
    probe_id = f"loomchaos-contract-{secrets.token_hex(6)}"
    lines: list[str] = []

    status, body = await client.get_json("/healthz")
    lines += check_health_body(status, body)
    out = [ContractProblem(line) for line in lines]
    if expected_version is not None and isinstance(body, Mapping):
        # Another build than the adapter's is what a gate is for: say so, go on.
        line = version_mismatch(expected_version, body.get("version"))
        if line:
            out.append(ContractProblem(line, blocking=False))

    status, body = await client.get_json("/v1/_concurrency/stats")
    out += [ContractProblem(line) for line in check_stats_body(status, body)]

    status, raw = await client.get_text(f"/v1/agents/{probe_id}")
    out += check_unknown_agent(
        "GET /v1/agents/{id}", status, json_or_none(raw), UNKNOWN_AGENT_CODE, raw
    )

    cancel = await client.cancel(probe_id, "loomchaos contract probe")
    out += check_unknown_agent("POST /v1/agents/{id}/cancel", cancel.http_status, cancel.body, None)

    columns = await LoomcycleStateReader(pg).contract_columns()
    out += [ContractProblem(line) for line in missing_columns(columns)]
    return out


def json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class TargetIdentity:
    """What was tested, for the report: release, what the binary says, which image."""

    name: str
    expected_version: str
    reported_version: str | None
    image_ref: str | None
    image_id: str | None

    def as_properties(self) -> dict[str, str]:
        """Flat strings for JUnit properties / history metadata."""
        return {
            "target": self.name,
            "target_version": self.expected_version,
            "target_reported_version": self.reported_version or "",
            "target_image": self.image_ref or "",
            "target_image_id": self.image_id or "",
        }


async def target_identity(
    client: LoomcycleClient,
    *,
    name: str,
    expected_version: str,
    image_ref: str | None,
    docker_client: Any = None,
) -> TargetIdentity:
    """Ask a replica for its version and Docker for the image id (in a thread:
    docker-py blocks, and this may run while streams are being timed)."""
    reported = (await client.health()).version
    image_id = None
    if docker_client is not None and image_ref is not None:
        image = await asyncio.to_thread(docker_client.images.get, image_ref)
        image_id = str(image.id)
    return TargetIdentity(name, expected_version, reported, image_ref, image_id)
