"""Fast tests of the toy target's Python side (no Docker, no Go)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pytest

from chaos.checks.params import CheckParams
from chaos.cluster.spec import ClusterSpec
from chaos.record.history import History
from chaos.record.vocabulary import (
    NOTE_DONE_EVENTS,
    OP_START_RUN,
    AuditRow,
    ReplicaRow,
    RunRow,
    Snapshot,
)
from chaos.scenario import OwnerAnswer, ScenarioRun
from chaos.sut.postgres import like_prefix
from chaos.verdict import Status
from tests.toy.adapter import DEFECT_ENV, ToyAdapter, ToySettings
from tests.toy.client import classify_cancel, health_from
from tests.toy.cluster import DEFECT_SPEC, TOY_SPEC


def test_launch_env_carries_the_toy_timers_cap_and_the_defect_only_when_asked() -> None:
    dsn = "postgres://u:p@toxiproxy:15401/chaos?sslmode=disable"
    clean = ToyAdapter().replica_launch(TOY_SPEC, "r1", dsn)
    assert clean.command == () and clean.port == 8787
    assert clean.env["REPLICA_ID"] == "r1"
    assert clean.env["PG_DSN"] == f"{dsn}&pool_max_conns={TOY_SPEC.pool_size}"
    assert (clean.env["STALE_MS"], clean.env["SWEEP_MS"], clean.env["CAP"]) == ("6000", "1000", "3")
    assert DEFECT_ENV not in clean.env
    assert ToyAdapter().replica_launch(DEFECT_SPEC, "r1", dsn).env[DEFECT_ENV] == "1"


def test_spec_replica_env_wins_over_the_defaults() -> None:
    spec = ClusterSpec(replica_env=(("RUN_MS", "500"),), target=ToySettings())
    assert ToyAdapter().replica_launch(spec, "r2", "postgres://x/db").env["RUN_MS"] == "500"


def test_health_lists_replicas_or_none_when_the_table_was_unreadable() -> None:
    body = {"ok": True, "replica_id": "r1", "version": "toy-0.1", "replicas": [{"id": "r1"}]}
    assert health_from(body).replica_ids == ("r1",)
    assert health_from({"ok": True, "replica_id": "r1"}).replica_ids is None
    assert not health_from({"ok": "yes"}).ok


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, {"cancelled": True, "reason": "x"}, "acknowledged"),
        (200, {"cancelled": False, "status": "completed"}, "already_terminal"),
        (200, {"cancelled": False, "reason": "owner_replica_unreachable"}, "owner_unreachable"),
        (404, {"code": "unknown_agent_id"}, "unknown"),
        (504, {"code": "cancel_timeout"}, "unknown"),
    ],
)
def test_cancel_answers_map_to_the_suite_vocabulary(
    status: int, body: dict[str, object], expected: str
) -> None:
    assert classify_cancel(status, body) == expected


def test_like_prefix_takes_wildcards_literally() -> None:
    assert like_prefix("t1_a%") == "t1\\_a\\%%"


class _NoEventsPorts:
    """Ports of a target with no events table: one completed run, nothing else."""

    async def snapshot(self) -> Snapshot:
        now = time.time()
        row = RunRow("r_a", "t1-a", "t1-u", "r1", "completed", "end_turn", None, now, now, now)
        return Snapshot(time.monotonic(), now, (row,), (ReplicaRow("r1", now, now),), ())

    async def audit_after(self, seq: int) -> Sequence[AuditRow]:
        return []

    async def done_run_ids(self, run_ids: Sequence[str]) -> set[str] | None:
        return None

    async def ask_owner(self, replica_id: str, agent_id: str) -> OwnerAnswer:
        return OwnerAnswer(live=False)


async def test_a_target_without_events_leaves_done_to_the_client_stream() -> None:
    """``done_run_ids`` answering None writes no done_events note (an empty one would
    fail every completed run); no_silent_regressions then reads the client's ``done``."""
    history = History()
    inv = history.invoke(OP_START_RUN, "w", key="t1-a", user_id="t1-u", via="lb")
    history.complete(inv, "ok", end="done", run_id="r_a", stop_reason="end_turn", events=[])
    params = CheckParams(test_prefix="t1", replica_ids=("r1",))
    async with ScenarioRun(history, params, _NoEventsPorts(), sample_interval_s=0.01) as run:
        await run.converge(timeout=1.0)
    assert not [r for r in history.records if r.type == "note" and r.op == NOTE_DONE_EVENTS]
    (verdict,) = run.verdicts(["no_silent_regressions"])
    assert verdict.status is Status.PASS and verdict.evidence["verified"] == 1, verdict
