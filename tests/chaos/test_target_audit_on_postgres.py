"""The audit triggers against a real Postgres (the local image; Docker needed).

The tables created here are a fixture for our triggers, named like
loomcycle's and holding only the columns the triggers and the reader touch;
they stand in for nothing else.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from chaos.errors import SetupError
from chaos.labels import docker_labels, new_session_id
from chaos.sut.loomcycle.audit import install_audit, read_audit, uninstall_audit
from chaos.sut.loomcycle.audit_fixture import FIXTURE_TABLES
from chaos.wait import eventually

pytestmark = pytest.mark.chaos

IMAGE = os.environ.get("LOOMCHAOS_PG_IMAGE", "loomchaos/postgres:local")
USER, PASSWORD, DB = "loomchaos", "audit-test-pw", "audit"


def _docker() -> Any:
    docker = pytest.importorskip("docker")
    try:
        client = docker.from_env(timeout=30)
        client.ping()
        client.images.get(IMAGE)
    except Exception as exc:  # no engine or no image: nothing to test against
        pytest.skip(f"needs a Docker engine and image {IMAGE}: {exc}")
    return client


@pytest.fixture
async def pg() -> AsyncIterator[asyncpg.Connection]:
    client = await asyncio.to_thread(_docker)
    container = await asyncio.to_thread(
        client.containers.run,
        IMAGE,
        detach=True,
        environment={"POSTGRES_USER": USER, "POSTGRES_PASSWORD": PASSWORD, "POSTGRES_DB": DB},
        ports={"5432/tcp": ("127.0.0.1", None)},
        labels=docker_labels(new_session_id(), role="test-audit-pg"),
    )
    try:
        await asyncio.to_thread(container.reload)
        port = int(container.attrs["NetworkSettings"]["Ports"]["5432/tcp"][0]["HostPort"])

        async def connect() -> asyncpg.Connection:
            conn = await asyncpg.connect(
                host="127.0.0.1", port=port, user=USER, password=PASSWORD, database=DB, timeout=5
            )
            await conn.fetchval("SELECT 1")
            return conn

        async def logs() -> str:
            raw = await asyncio.to_thread(container.logs, tail=30)
            return str(raw.decode(errors="replace"))

        conn = await eventually(
            connect,
            what=f"Postgres in {container.short_id} to accept a login",
            timeout=60,
            interval=0.5,
            context=logs,
        )
        try:
            yield conn
        finally:
            await conn.close()
    finally:
        await asyncio.to_thread(container.remove, force=True, v=True)


def trail(rows: list[Any]) -> list[tuple[str, str, str]]:
    return [(r.table, r.action, r.key) for r in rows]


async def test_install_refuses_before_the_target_has_migrated(pg: asyncpg.Connection) -> None:
    with pytest.raises(SetupError, match="runs, user_quotas, replicas"):
        await install_audit(pg)


async def test_triggers_record_committed_writes_in_order(pg: asyncpg.Connection) -> None:
    await pg.execute(FIXTURE_TABLES)
    await install_audit(pg)
    await install_audit(pg)  # idempotent: still one trigger per table

    await pg.execute(
        "INSERT INTO runs VALUES ('r_1', 't1_a-w0-1', 't1_a-u1', 'running', NULL, NULL)"
    )
    await pg.execute(
        "INSERT INTO runs VALUES ('r_2', 't1xa-w0-1', 't1xa-u1', 'running', NULL, NULL)"
    )
    await pg.execute(
        "UPDATE runs SET status = 'completed', stop_reason = 'end_turn', completed_at = now() "
        "WHERE id = 'r_1'"
    )
    await pg.execute("INSERT INTO user_quotas (user_id, active_count) VALUES ('t1_a-u1', 1)")
    await pg.execute("UPDATE user_quotas SET active_count = 0 WHERE user_id = 't1_a-u1'")
    await pg.execute("INSERT INTO replicas (id) VALUES ('r1')")
    await pg.execute("DELETE FROM replicas WHERE id = 'r1'")
    # A rolled-back write must leave no audit row.
    with pytest.raises(asyncpg.CheckViolationError):
        async with pg.transaction():
            await pg.execute("UPDATE runs SET status = 'failed' WHERE id = 'r_1'")
            await pg.execute("UPDATE user_quotas SET active_count = -1")

    rows = await read_audit(pg, "t1_a")
    assert trail(rows) == [
        ("runs", "insert", "r_1"),
        ("runs", "update", "r_1"),
        ("user_quotas", "insert", "/t1_a-u1"),
        ("user_quotas", "update", "/t1_a-u1"),
        ("replicas", "insert", "r1"),  # replica rows are cluster-wide: always kept
        ("replicas", "delete", "r1"),
    ]
    update = rows[1]
    assert update.old is not None and update.new is not None
    assert (update.old["status"], update.new["status"]) == ("running", "completed")
    assert rows[0].old is None and rows[-1].new is None
    assert [r.seq for r in rows] == sorted(r.seq for r in rows)
    assert [r.at for r in rows] == sorted(r.at for r in rows)
    # Without a prefix the other test's run is there too ('_' was not a wildcard above).
    assert ("runs", "insert", "r_2") in trail(await read_audit(pg))
    # The cursor returns only what came after it.
    assert trail(await read_audit(pg, "t1_a", after_seq=rows[3].seq)) == trail(rows[4:])


async def test_trail_shows_a_terminal_run_changing_again(pg: asyncpg.Connection) -> None:
    """The evidence a transition checker needs: a snapshot after the second
    write would show only 'running', the trail shows completed -> running."""
    await pg.execute(FIXTURE_TABLES)
    await install_audit(pg)
    await pg.execute(
        "INSERT INTO runs VALUES ('r_9', 't2-w0-1', 't2-u1', 'completed', 'end_turn', now())"
    )
    await pg.execute("UPDATE runs SET status = 'running', completed_at = NULL WHERE id = 'r_9'")
    rows = await read_audit(pg, "t2")
    assert rows[-1].old is not None and rows[-1].new is not None
    assert (rows[-1].old["status"], rows[-1].new["status"]) == ("completed", "running")


async def test_uninstall_stops_recording_and_can_drop_the_table(pg: asyncpg.Connection) -> None:
    await pg.execute(FIXTURE_TABLES)
    await install_audit(pg)
    await pg.execute("INSERT INTO replicas (id) VALUES ('r1')")
    await uninstall_audit(pg)
    await uninstall_audit(pg)  # idempotent
    await pg.execute("INSERT INTO replicas (id) VALUES ('r2')")
    assert trail(await read_audit(pg)) == [("replicas", "insert", "r1")]  # rows kept
    await install_audit(pg)  # re-install after uninstall works
    await pg.execute("DELETE FROM replicas WHERE id = 'r2'")
    assert trail(await read_audit(pg))[-1] == ("replicas", "delete", "r2")
    await uninstall_audit(pg, drop_table=True)
    assert await pg.fetchval("SELECT to_regclass('loomchaos_audit')") is None


# The state reader's SQL on the same server: the columns the contract names.
READER_TABLES = """
CREATE TABLE runs (
    id text PRIMARY KEY, agent_id text, user_id text, tenant_id text, replica_id text,
    status text NOT NULL, stop_reason text, error text, started_at timestamptz NOT NULL,
    completed_at timestamptz, last_heartbeat_at timestamptz, parent_run_id text, provider text
);
CREATE TABLE user_quotas (
    tenant_id text NOT NULL DEFAULT '', user_id text NOT NULL, active_count integer NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);
CREATE TABLE replicas (
    id text PRIMARY KEY, hostname text NOT NULL DEFAULT '', started_at timestamptz NOT NULL,
    last_heartbeat_at timestamptz NOT NULL, version text NOT NULL DEFAULT ''
);
CREATE TABLE events (
    seq bigserial PRIMARY KEY, run_id text, ts timestamptz, type text, payload bytea
);
CREATE TABLE runtime_state (id text PRIMARY KEY DEFAULT 'singleton', state text NOT NULL);
INSERT INTO runtime_state VALUES ('singleton', 'running');
INSERT INTO runs VALUES
  ('r_1', 't3_a-w0-1', 't3_a-u1', '', 'r1', 'completed', 'end_turn', '',
   to_timestamp(100), to_timestamp(102.5), to_timestamp(101), NULL),
  ('r_2', 't3_a-w0-2', 't3_a-u1', '', 'r2', 'running', '', NULL,
   to_timestamp(101), NULL, NULL, NULL),
  ('r_3', 't3xa-w0-1', 't3xa-u1', '', 'r1', 'running', NULL, NULL,
   to_timestamp(99), NULL, NULL, NULL);
INSERT INTO user_quotas VALUES ('', 't3_a-u1', 1), ('acme', 't3_a-u1', 1), ('', 't3xa-u1', 1);
INSERT INTO replicas VALUES ('r1', 'h1', to_timestamp(50), to_timestamp(90), 'v1.59.0');
INSERT INTO events (run_id, ts, type, payload) VALUES
  ('r_1', to_timestamp(102), 'done', convert_to('{"stop_reason":"end_turn"}', 'UTF8'));
"""


async def test_state_reader_sql_on_a_real_server(pg: asyncpg.Connection) -> None:
    from chaos.record.vocabulary import QuotaRow, ReplicaRow
    from chaos.sut.loomcycle.sql import LoomcycleStateReader, missing_columns

    await pg.execute(READER_TABLES)
    reader = LoomcycleStateReader(pg)
    runs = await reader.runs("t3_a")
    assert [r.run_id for r in runs] == ["r_1", "r_2"]  # not t3xa: '_' is literal
    done = runs[0]
    assert (done.status, done.stop_reason, done.error) == ("completed", "end_turn", None)
    assert (done.started_at, done.completed_at, done.last_heartbeat_at) == (100.0, 102.5, 101.0)
    assert runs[1].stop_reason is None and runs[1].completed_at is None  # '' reads as NULL
    assert await reader.quotas("t3_a") == [QuotaRow("t3_a-u1", 2)]  # summed over tenants
    assert await reader.quota_total() == 3
    assert await reader.replicas() == [ReplicaRow("r1", 50.0, 90.0)]
    assert await reader.runtime_state() == "running"
    events = await reader.events("r_1")
    assert [(e.type, e.payload) for e in events] == [("done", {"stop_reason": "end_turn"})]
    assert (
        abs(await reader.db_clock() - await pg.fetchval("SELECT extract(epoch FROM now())::float8"))
        < 60
    )
    assert missing_columns(await reader.contract_columns()) == []
    snap = await reader.snapshot("t3_a")
    assert (len(snap.runs), len(snap.replicas), snap.quotas) == (2, 1, (QuotaRow("t3_a-u1", 2),))
