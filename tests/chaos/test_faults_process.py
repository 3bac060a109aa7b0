"""Process and partition faults on real containers (Postgres, nginx; loomcycle is not available).

Replica-specific effects ("gone from the survivors' /healthz") need loomcycle;
the faults take the probe as a parameter, so those tests only swap the probe.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from fault_rig import APP_USER, SUPERUSER, Rig, assert_clean, rig

from chaos.faults import (
    ContainerTarget,
    Fault,
    Freeze,
    GracefulStop,
    Kill,
    NetworkPartition,
    PostgresRestart,
    Restart,
    http_probe,
    injected,
    pg_boot_time,
    pg_probe,
)
from chaos.record.history import History

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(180)]


@pytest.fixture
async def frig() -> AsyncIterator[Rig]:
    async with rig(with_nginx=True) as the_rig:
        yield the_rig


def pg_target(the_rig: Rig) -> ContainerTarget:
    return ContainerTarget(
        the_rig.client,
        the_rig.postgres.id,
        "postgres",
        pg_probe(*the_rig.pg_addr, APP_USER, timeout=2.0),
    )


def nginx_target(the_rig: Rig) -> ContainerTarget:
    assert the_rig.nginx is not None and the_rig.nginx_port is not None
    return ContainerTarget(
        the_rig.client, the_rig.nginx.id, "nginx", http_probe("127.0.0.1", the_rig.nginx_port)
    )


async def run_fault(the_rig: Rig, fault: Fault) -> History:
    history = History()
    assert not await fault.effect_present(), "control: no effect on a healthy system"
    async with injected(fault, history):
        assert not await fault.healthy(), "the target must be down while the fault is in force"
    assert [r.data["phase"] for r in history.records] == ["inject", "effect", "heal", "healed"]
    await assert_clean(the_rig)
    return history


async def test_kill_postgres(frig: Rig) -> None:
    history = await run_fault(frig, Kill(pg_target(frig)))
    effect = next(r for r in history.records if r.data["phase"] == "effect")
    assert effect.data["container"]["exit_code"] == 137  # SIGKILL, no goodbye


async def test_graceful_stop_nginx(frig: Rig) -> None:
    history = await run_fault(frig, GracefulStop(nginx_target(frig), grace_s=10))
    effect = next(r for r in history.records if r.data["phase"] == "effect")
    assert effect.data["container"]["exit_code"] != 137, "SIGTERM was enough; no SIGKILL needed"


async def test_freeze_postgres(frig: Rig) -> None:
    await run_fault(frig, Freeze(pg_target(frig)))


async def test_restart_postgres_proves_a_new_boot(frig: Rig) -> None:
    h, p = frig.pg_addr
    before = await pg_boot_time(h, p, SUPERUSER)
    fault = Restart(pg_target(frig), boot_id=lambda: pg_boot_time(h, p, SUPERUSER))
    fault._before = before  # control: with no restart the boot id does not move
    assert not await fault.effect_present()
    history = History()
    async with injected(fault, history):
        pass
    assert await pg_boot_time(h, p, SUPERUSER) != before
    assert [r.data["phase"] for r in history.records][-1] == "healed"
    await assert_clean(frig)


async def test_restart_nginx_without_boot_probe_uses_docker_start_time(frig: Rig) -> None:
    history = History()
    async with injected(Restart(nginx_target(frig)), history):
        pass
    assert [r.data["phase"] for r in history.records][-1] == "healed"
    await assert_clean(frig)


@pytest.mark.parametrize("mode", ["fast", "crash"])
async def test_postgres_restart_keeps_data(frig: Rig, mode: str) -> None:
    fault = PostgresRestart(pg_target(frig), frig.pg_addr, SUPERUSER, mode=mode)
    history = await run_fault(frig, fault)
    healed = history.records[-1].data
    assert healed["marker_rows"] == 1 and healed["boot_after"] != healed["boot_before"]
    # Fast: 0 or 130 (su, the image's PID 1, may die of the SIGINT it forwards); crash: 137.
    assert (healed["exit_code"] == 137) == (mode == "crash")


async def test_partition_postgres_from_the_proxy_restores_its_ip(frig: Rig) -> None:
    through_proxy = pg_probe(*frig.proxy_addr, APP_USER, timeout=2.0)
    fault = NetworkPartition(
        frig.client, frig.postgres.id, frig.network.name, "postgres", through_proxy
    )
    history = await run_fault(frig, fault)
    healed = history.records[-1].data
    assert healed["ip_before"] and healed["ip_now"] == healed["ip_before"]


async def test_kill_cancelled_mid_block_restarts_the_container(frig: Rig) -> None:
    history = History()
    inside = asyncio.Event()

    async def scenario() -> None:
        async with injected(Kill(pg_target(frig)), history):
            inside.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(scenario())
    await asyncio.wait_for(inside.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [r.data["phase"] for r in history.records][-1] == "healed"
    await assert_clean(frig)
