"""Hypothesis state machines on a real Postgres behind Toxiproxy (no loomcycle needed).

Two runs: the honest machine, which must pass and leave nothing behind, and
a machine whose client lies (it acknowledges writes it could not deliver),
which must fail, shrink to a program of at most three rules, and fail again
when that printed program is replayed: a check that cannot fail is a defect.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_rig import APP_USER, PROXY_NAME, SUPERUSER, Rig, assert_clean, rig

from chaos.faults import ContainerTarget, pg_probe
from chaos.machine import (
    MachineLoop,
    MachineRuntime,
    PgLinkMachine,
    PgLinkSetup,
    failing_program,
    machine_loop,
    machine_settings,
    prepare_table,
    program_rules,
    replay,
    run_machine,
)
from chaos.record.history import History, Outcome

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(300)]

Env = tuple[MachineLoop, Rig, PgLinkSetup]


@pytest.fixture
def machine_env() -> Iterator[Env]:
    """A rig started on the machine's own loop: its clients must live on that loop."""
    with machine_loop() as loop:
        started = rig()
        the_rig = loop.run(started.__aenter__(), timeout=180, what="rig start")
        try:
            setup = PgLinkSetup(
                toxiproxy=the_rig.toxi,
                proxy_name=PROXY_NAME,
                proxy_addr=the_rig.proxy_addr,
                pg_addr=the_rig.pg_addr,
                superuser=SUPERUSER,
                app=APP_USER,
                postgres=ContainerTarget(
                    the_rig.client,
                    the_rig.postgres.id,
                    "postgres",
                    pg_probe(*the_rig.pg_addr, SUPERUSER, timeout=2.0),
                ),
            )
            loop.run(prepare_table(setup), timeout=30, what="create the counter table")
            yield loop, the_rig, setup
        finally:
            loop.run(started.__aexit__(None, None, None), timeout=180, what="rig removal")


def outcomes(history: History) -> dict[Outcome | None, int]:
    counts: dict[Outcome | None, int] = {}
    for op in history.operations("write"):
        counts[op.outcome] = counts.get(op.outcome, 0) + 1
    return counts


def test_machine_on_postgres_behind_toxiproxy(
    machine_env: Env, chaos_history: History, tmp_path: Path
) -> None:
    """The honest machine must pass.

    Shrinking is off here: with real faults it can outlast CI's budget, and an
    unshrunk failure with its history beats a timeout (the lying-client test
    below proves that shrinking works).
    """
    loop, the_rig, setup = machine_env
    runtime = MachineRuntime(loop, chaos_history)
    live = tmp_path / "history.jsonl"
    start = time.monotonic()
    with live.open("w", encoding="utf-8") as sink:
        chaos_history.stream_to(sink)  # readable even if the test is killed by its timeout
        try:
            run_machine(
                lambda: PgLinkMachine(runtime, setup),
                machine_settings(max_examples=5, steps=10, shrink=False),
            )
        finally:
            chaos_history.stream_to(None)
            print(f"machine history: {live}")
    elapsed = time.monotonic() - start
    windows = chaos_history.fault_windows()
    print(
        f"machine: {len(runtime.examples)} examples in {elapsed:.1f}s; "
        f"writes {outcomes(chaos_history)}; faults {sorted({w.name for w in windows})}; "
        f"steps {runtime.examples}"
    )
    assert len(runtime.examples) >= 5
    assert all(w.effect_proven and w.heal_proven for w in windows), [
        w.describe() for w in windows if not w.heal_proven
    ]
    assert outcomes(chaos_history).get("ok", 0) >= 2 * len(runtime.examples), "acks at stake"
    loop.run(assert_clean(the_rig), timeout=60, what="rig clean after the machine")


class LyingClientMachine(PgLinkMachine):
    """Broken on purpose: acknowledges every write, delivered or not. Only the cut fault."""

    enabled_faults = frozenset({"reset_cut"})

    async def attempt_write(self, value: int) -> tuple[Outcome, dict[str, object]]:
        _, detail = await super().attempt_write(value)
        return "ok", detail


def test_machine_catches_a_lying_client_and_shrinks(machine_env: Env) -> None:
    loop, the_rig, setup = machine_env
    runtime = MachineRuntime(loop, History())
    settings = machine_settings(max_examples=25, steps=6, report_multiple_bugs=False)
    start = time.monotonic()
    with pytest.raises(AssertionError) as caught:
        run_machine(lambda: LyingClientMachine(runtime, setup), settings)
    elapsed = time.monotonic() - start
    program = failing_program(caught.value)
    rules = program_rules(program, LyingClientMachine)
    print(f"lying client: {len(runtime.examples)} examples in {elapsed:.1f}s; program {program}")
    assert "acknowledged_writes_durable" in str(caught.value)
    assert "lost" in str(caught.value)
    assert rules[-1].startswith("state.write(") and "state.cut_link()" in rules
    assert len(rules) <= 3, rules
    # The last example run is the shrunk one: two initial writes, the cut, one write.
    assert len(runtime.examples[-1]) <= 4, runtime.examples[-1]

    # The printed program replays: the same rules on a fresh machine fail the same way.
    with pytest.raises(AssertionError, match="acknowledged write"):
        replay(program, LyingClientMachine(runtime, setup))
    loop.run(assert_clean(the_rig), timeout=60, what="rig clean after the shrinking")
