"""Toxiproxy link faults on a real Postgres: proven effect, proven heal, nothing left behind.

Also pins down the Toxiproxy semantics the fault docstrings state (what a
disabled proxy, a removed black hole and a removed stall do to connections
that were open), because those decide what each fault means.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio
from fault_rig import APP_USER, PROXY_NAME, Rig, assert_clean, rig

from chaos.faults import (
    BlackHole,
    LinkTarget,
    PgPath,
    ResetCut,
    Stall,
    injected,
)
from chaos.faults.base import self_test
from chaos.faults.catalogue import LINK_FAULTS
from chaos.record.history import History

# One rig for the module (link faults do not touch the containers) and one
# event loop for it: the rig's clients belong to the loop that made them.
pytestmark = [pytest.mark.chaos, pytest.mark.timeout(120), pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_rig() -> AsyncIterator[Rig]:
    async with rig() as the_rig:
        yield the_rig


@pytest_asyncio.fixture(loop_scope="module")
async def frig(shared_rig: Rig) -> AsyncIterator[Rig]:
    """The shared rig; reset after each test so one test's failed heal cannot fail the next."""
    yield shared_rig
    await shared_rig.toxi.reset()


def pg_link(the_rig: Rig) -> LinkTarget:
    return LinkTarget(the_rig.toxi, PROXY_NAME, the_rig.proxy_addr, PgPath(APP_USER), "pg:r1", "r1")


FAULTS = LINK_FAULTS


@pytest.mark.parametrize("kind", list(FAULTS))
async def test_link_fault_effect_and_heal(frig: Rig, kind: str) -> None:
    history = History()
    window = await self_test(FAULTS[kind](pg_link(frig)), history)
    phases = [r.data["phase"] for r in history.records]
    assert phases == ["inject", "effect", "heal", "healed"]
    assert window.name == "link:" + kind and window.target == "pg:r1"
    assert window.data["link"] == "pg:r1" and window.data["replica"] == "r1"
    await assert_clean(frig)


async def test_every_link_effect_probe_is_false_on_a_healthy_link(frig: Rig) -> None:
    """Control: a probe that says "effect" on a healthy system would make every proof vacuous."""
    for kind, make in FAULTS.items():
        assert not await make(pg_link(frig)).effect_present(), kind


async def _connect(the_rig: Rig) -> asyncpg.Connection:
    h, p = the_rig.proxy_addr
    return await asyncpg.connect(
        host=h, port=p, user=APP_USER.user, password=APP_USER.password, database=APP_USER.database
    )


async def test_disabled_proxy_closes_open_connections_for_good(frig: Rig) -> None:
    conn = await _connect(frig)
    try:
        async with injected(ResetCut(pg_link(frig)), History()):
            with pytest.raises((asyncpg.InterfaceError, asyncpg.ConnectionDoesNotExistError)):
                await asyncio.wait_for(conn.fetchval("SELECT 1"), 3)
        with pytest.raises((asyncpg.InterfaceError, asyncpg.ConnectionDoesNotExistError)):
            await asyncio.wait_for(conn.fetchval("SELECT 1"), 3)  # re-enabling does not revive it
    finally:
        conn.terminate()


async def test_removing_a_black_hole_closes_the_connections_it_held(frig: Rig) -> None:
    conn = await _connect(frig)
    try:
        async with injected(BlackHole(pg_link(frig), direction="down"), History()):
            in_flight = asyncio.ensure_future(conn.fetchval("SELECT 42"))
            done, _ = await asyncio.wait([in_flight], timeout=1.0)
            assert not done, "answers vanish: the query must hang"
        with pytest.raises(asyncpg.ConnectionDoesNotExistError):
            await asyncio.wait_for(in_flight, 5)
    finally:
        conn.terminate()


async def test_removing_a_stall_delivers_what_it_held(frig: Rig) -> None:
    conn = await _connect(frig)
    try:
        async with injected(Stall(pg_link(frig), direction="down"), History()):
            in_flight = asyncio.ensure_future(conn.fetchval("SELECT 42"))
            done, _ = await asyncio.wait([in_flight], timeout=1.0)
            assert not done, "answers are held: the query must hang"
        assert await asyncio.wait_for(in_flight, 5) == 42
    finally:
        conn.terminate()


async def test_exception_inside_the_block_heals(frig: Rig) -> None:
    history = History()
    with pytest.raises(RuntimeError, match="scenario failed"):
        async with injected(BlackHole(pg_link(frig)), history):
            raise RuntimeError("scenario failed")
    assert [r.data["phase"] for r in history.records][-1] == "healed"
    await assert_clean(frig)


async def test_cancelled_task_heals(frig: Rig) -> None:
    history = History()
    inside = asyncio.Event()

    async def scenario() -> None:
        async with injected(ResetCut(pg_link(frig)), history):
            inside.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(scenario())
    await asyncio.wait_for(inside.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [r.data["phase"] for r in history.records][-1] == "healed"
    await assert_clean(frig)
