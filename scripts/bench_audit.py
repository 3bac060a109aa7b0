#!/usr/bin/env python3
"""What the suite's audit triggers cost the target's writes.

Starts a labelled Postgres (the local image) on 127.0.0.1, creates the
minimal loomcycle-like tables (chaos.sut.loomcycle.audit_fixture), and
times N run lifecycles as the target writes them -- insert the run, take a
quota slot, complete the run, give the slot back: four writes, each its own
transaction -- first without and then with the triggers.  Prints the time per
write and the overhead.  The container is removed whatever happens.

Usage: ``python scripts/bench_audit.py [--runs 3000] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from typing import Any

import asyncpg
import docker

from chaos.labels import docker_labels, new_session_id
from chaos.sut.loomcycle.audit import install_audit, uninstall_audit
from chaos.sut.loomcycle.audit_fixture import FIXTURE_TABLES
from chaos.wait import eventually

IMAGE = "loomchaos/postgres:local"
USER, PASSWORD, DB = "loomchaos", "bench-audit-pw", "bench"
WRITES_PER_RUN = 4


async def lifecycles(conn: asyncpg.Connection, runs: int, tag: str) -> float:
    """Seconds for ``runs`` lifecycles of four autocommitted writes each."""
    began = time.perf_counter()
    for i in range(runs):
        run_id, user = f"r_{tag}{i}", f"{tag}-u{i % 20}"
        await conn.execute(
            "INSERT INTO runs VALUES ($1, $2, $3, 'running', NULL, NULL)", run_id, f"a{i}", user
        )
        await conn.execute(
            "INSERT INTO user_quotas (user_id, active_count) VALUES ($1, 1) "
            "ON CONFLICT (tenant_id, user_id) DO UPDATE SET active_count = "
            "user_quotas.active_count + 1",
            user,
        )
        await conn.execute(
            "UPDATE runs SET status = 'completed', stop_reason = 'end_turn', "
            "completed_at = now() WHERE id = $1",
            run_id,
        )
        await conn.execute(
            "UPDATE user_quotas SET active_count = active_count - 1 WHERE user_id = $1", user
        )
    return time.perf_counter() - began


async def measure(port: int, runs: int, rounds: int) -> list[tuple[str, float]]:
    conn = await asyncpg.connect(
        host="127.0.0.1", port=port, user=USER, password=PASSWORD, database=DB, timeout=5
    )
    try:
        await conn.execute(FIXTURE_TABLES)
        await lifecycles(conn, 200, "warm")  # warm caches and the plan cache
        plain, audited = [], []
        for r in range(rounds):
            await uninstall_audit(conn)
            plain.append(await lifecycles(conn, runs, f"p{r}-"))
            await install_audit(conn)
            audited.append(await lifecycles(conn, runs, f"a{r}-"))
        audit_rows = await conn.fetchval("SELECT count(*) FROM loomchaos_audit")
    finally:
        await conn.close()
    writes = runs * WRITES_PER_RUN
    p, a = statistics.median(plain), statistics.median(audited)
    return [
        ("writes per round", float(writes)),
        ("without triggers, us per write (median)", p / writes * 1e6),
        ("with triggers, us per write (median)", a / writes * 1e6),
        ("overhead per write, us", (a - p) / writes * 1e6),
        ("overhead, %", (a - p) / p * 100),
        ("audit rows written", float(audit_rows)),
    ]


def start_postgres(client: Any) -> Any:
    return client.containers.run(
        IMAGE,
        detach=True,
        environment={"POSTGRES_USER": USER, "POSTGRES_PASSWORD": PASSWORD, "POSTGRES_DB": DB},
        ports={"5432/tcp": ("127.0.0.1", None)},
        labels=docker_labels(new_session_id(), role="bench-audit-pg"),
    )


async def main(runs: int, rounds: int) -> int:
    client = docker.from_env()
    container = await asyncio.to_thread(start_postgres, client)
    try:
        await asyncio.to_thread(container.reload)
        port = int(container.attrs["NetworkSettings"]["Ports"]["5432/tcp"][0]["HostPort"])

        async def accepts() -> bool:
            conn = await asyncpg.connect(
                host="127.0.0.1", port=port, user=USER, password=PASSWORD, database=DB, timeout=3
            )
            await conn.close()
            return True

        await eventually(accepts, what="the bench Postgres to accept a login", timeout=60)
        for name, value in await measure(port, runs, rounds):
            print(f"{name:<42} {value:>12.1f}")
    finally:
        await asyncio.to_thread(container.remove, force=True, v=True)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    ns = parser.parse_args()
    try:
        sys.exit(asyncio.run(main(ns.runs, ns.rounds)))
    except KeyboardInterrupt:
        sys.exit(130)
