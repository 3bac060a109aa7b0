"""The Postgres clock skew fault without Docker: what it writes and what proves it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from chaos.cluster.faketime import FAKETIME_FILE
from chaos.faults.clock import PgClockSkew, offset_spec


@dataclass
class Result:
    exit_code: int
    output: bytes = b""


class FakePostgres:
    """A container whose offset file is a string, and whose clock follows it."""

    def __init__(self, exit_code: int = 0, has_libfaketime: bool = True) -> None:
        self.has_libfaketime = has_libfaketime
        self.file = "+0"
        self.exit_code = exit_code
        self.commands: list[Any] = []

    def exec_run(self, command: list[str], user: str = "") -> Result:
        if command[-1].startswith("test -e"):
            return Result(0 if self.has_libfaketime else 1)
        self.commands.append((command, user))
        if self.exit_code == 0:
            self.file = command[-1].split("'")[3]
        return Result(self.exit_code, b"denied")

    async def offset(self, dsn: str) -> float:
        return float(self.file) + 0.3  # a round trip's worth of error


def test_offsets_are_libfaketimes_relative_seconds() -> None:
    assert (offset_spec(-45), offset_spec(0), offset_spec(90.4)) == ("-45", "+0", "+90")


def test_the_skew_is_written_proven_and_healed() -> None:
    pg = FakePostgres()
    fault = PgClockSkew(pg, "dsn", -45.0, read_offset=pg.offset)

    async def cycle() -> tuple[bool, bool, bool, bool]:
        before = (await fault.healthy(), await fault.effect_present())
        await fault.inject()
        during = await fault.effect_present()
        await fault.heal()
        return before[0], before[1], during, await fault.heal_present()

    assert asyncio.run(cycle()) == (True, False, True, True)
    (written, user), _ = pg.commands
    assert user == "root" and FAKETIME_FILE in written[-1] and "'-45'" in written[-1]
    assert asyncio.run(fault.evidence()) == {"db_clock_offset_s": 0.3}


def test_a_skew_that_does_not_show_is_not_proven() -> None:
    pg = FakePostgres()
    stuck = PgClockSkew(pg, "dsn", -45.0, read_offset=lambda dsn: _const(0.1))

    async def cycle() -> bool:
        await stuck.inject()
        return await stuck.effect_present()

    assert asyncio.run(cycle()) is False


async def _const(value: float) -> float:
    return value


def test_a_refused_write_is_an_error_and_zero_is_refused() -> None:
    fault = PgClockSkew(FakePostgres(exit_code=1), "dsn", 30.0, read_offset=_const)
    with pytest.raises(RuntimeError, match="failed"):
        asyncio.run(fault.inject())
    with pytest.raises(ValueError, match="proves nothing"):
        PgClockSkew(FakePostgres(), "dsn", 0.0)


def test_a_postgres_without_libfaketime_is_a_clear_error() -> None:
    pg = FakePostgres(has_libfaketime=False)
    fault = PgClockSkew(pg, "dsn", -45.0, read_offset=pg.offset)
    with pytest.raises(RuntimeError, match=r"no libfaketime .* local images"):
        asyncio.run(fault.inject())
    assert pg.commands == [] and pg.file == "+0"
