"""Resource faults on a real Postgres and nginx: slots, the sweeper's lock, file descriptors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from fault_rig import APP_USER, SUPERUSER, Rig, assert_clean, rig

from chaos.faults import (
    REPLICAS_SWEEPER_LOCK_KEY,
    AdvisoryLockHold,
    ContainerTarget,
    NginxFdExhaustion,
    PgConnectionExhaustion,
    http_probe,
    injected,
)
from chaos.faults.probes import pg_connect
from chaos.faults.resources import PgSlotsTaken, refused_as_too_many
from chaos.record.history import History
from chaos.wait import eventually

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(120)]


@pytest.fixture
async def frig() -> AsyncIterator[Rig]:
    async with rig(with_nginx=True) as the_rig:
        yield the_rig


def phases(history: History) -> list[str]:
    return [r.data["phase"] for r in history.records]


async def test_connection_exhaustion_refuses_the_role_not_the_superuser(frig: Rig) -> None:
    fault = PgConnectionExhaustion(frig.pg_addr, SUPERUSER, APP_USER)
    assert not await fault.effect_present(), "control: the role connects on a healthy server"
    history = History()
    async with injected(fault, history):
        h, p = frig.pg_addr
        with pytest.raises(asyncpg.TooManyConnectionsError):
            await asyncpg.connect(
                host=h,
                port=p,
                user=APP_USER.user,
                password=APP_USER.password,
                database=APP_USER.database,
                timeout=5,
            )
    assert phases(history) == ["inject", "effect", "heal", "healed"]
    effect = history.records[1].data
    assert effect["held"] > 0 and "probe_refused_with" in effect
    await assert_clean(frig)


async def test_every_slot_taken_and_kept_taken_while_held(frig: Rig) -> None:
    """A session from elsewhere (through Toxiproxy) is pushed out; a session of this host
    is left alone, and when it closes inside the fault its slot is taken back by the
    holder: a new connection is refused again.  Without the holder that slot stays free."""
    foreign = await pg_connect(*frig.proxy_addr, SUPERUSER, 5.0)
    local = await pg_connect(*frig.pg_addr, SUPERUSER, 5.0)
    fault = PgSlotsTaken(frig.pg_addr, SUPERUSER, hold_interval_s=0.1)
    history = History()
    try:
        async with injected(fault, history):
            assert await local.fetchval("SELECT 1") == 1, "this host's session was left alone"
            with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, OSError)):
                await foreign.fetchval("SELECT 1")
            await local.close()  # frees a slot inside the fault
            seen: dict[str, object] = {}

            async def refused_again() -> bool:
                return await refused_as_too_many(frig.pg_addr, SUPERUSER, seen)

            await eventually(refused_again, what="the freed slot taken back", timeout=10.0)
    finally:
        foreign.terminate()
        local.terminate()
    assert phases(history) == ["inject", "effect", "heal", "healed"]
    effect = history.records[1].data
    assert effect["terminated"] >= 1 and effect["foreign_backends"] == 0, effect
    await assert_clean(frig)


async def test_sweeper_lock_held_elsewhere_and_released(frig: Rig) -> None:
    fault = AdvisoryLockHold(frig.pg_addr, APP_USER, REPLICAS_SWEEPER_LOCK_KEY)
    assert not await fault.effect_present(), "control: nobody holds the lock on a healthy server"
    history = History()
    async with injected(fault, history):
        assert await fault.effect_present()
    assert phases(history) == ["inject", "effect", "heal", "healed"]
    effect = history.records[1].data
    assert (
        effect["lock_holders"] == [effect["holder_pid"]] and effect["try_lock_elsewhere"] is False
    )
    await assert_clean(frig)


async def test_nginx_out_of_file_descriptors(frig: Rig) -> None:
    assert frig.nginx is not None and frig.nginx_port is not None
    addr = ("127.0.0.1", frig.nginx_port)
    target = ContainerTarget(frig.client, frig.nginx.id, "nginx", http_probe(*addr))
    fault = NginxFdExhaustion(target, addr, max_connections=128)
    assert not await fault.effect_present(), "control: a healthy nginx answers"
    history = History()
    async with injected(fault, history):
        pass
    assert phases(history) == ["inject", "effect", "heal", "healed"]
    assert "Too many open files" in history.records[1].data["log"]
    await assert_clean(frig)


async def test_exception_inside_exhaustion_releases_every_connection(frig: Rig) -> None:
    history = History()
    with pytest.raises(RuntimeError, match="scenario failed"):
        async with injected(PgConnectionExhaustion(frig.pg_addr, SUPERUSER, APP_USER), history):
            raise RuntimeError("scenario failed")
    assert phases(history)[-1] == "healed"
    await assert_clean(frig)


async def test_cancel_inside_lock_hold_releases_the_lock(frig: Rig) -> None:
    history = History()
    inside = asyncio.Event()

    async def scenario() -> None:
        async with injected(AdvisoryLockHold(frig.pg_addr, APP_USER), history):
            inside.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(scenario())
    await asyncio.wait_for(inside.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert phases(history)[-1] == "healed"
    await assert_clean(frig)
