"""Circuit requests and the circuit pool (drain before reuse, quarantine, shortage)."""

from __future__ import annotations

import pytest

from chaos.errors import SetupError
from chaos.record.history import History
from chaos.record.vocabulary import OP_CIRCUIT_DRAIN
from chaos.workload import (
    CapPolicy,
    CircuitPool,
    CircuitWorkload,
    DrainResult,
    Driver,
    WaveContext,
    circuit_requests,
)
from chaos.workload.scripted import Script, ScriptedRunClient


class Drains:
    """Records calls; answers ``empty`` per circuit (default True), or raises for ``broken``."""

    def __init__(self, empty: dict[int, bool] | None = None, broken: set[int] | None = None):
        self.calls: list[int] = []
        self.empty = empty or {}
        self.broken = broken or set()

    async def __call__(self, circuit: int) -> DrainResult:
        self.calls.append(circuit)
        if circuit in self.broken:
            raise ConnectionError("target down")
        return DrainResult(circuit, drained=1, empty=self.empty.get(circuit, True))


def drain_notes(history: History) -> list[dict[str, object]]:
    return [r.data for r in history.records if r.type == "note" and r.op == OP_CIRCUIT_DRAIN]


def test_circuit_requests_share_user_and_prompt_with_role_ids() -> None:
    reqs = circuit_requests(7, "tpu0", "tpw3", agents={"editor": "editor-v2"})
    assert [r.agent_id for r in reqs] == [
        "researcher-c7-tpw3",
        "editor-c7-tpw3",
        "evaluator-c7-tpw3",
    ]
    assert [r.agent for r in reqs] == ["researcher", "editor-v2", "evaluator"]
    assert {r.user_id for r in reqs} == {"tpu0"}
    assert all("circuit_id is c7." in r.prompt for r in reqs)


def test_a_question_naming_another_circuit_is_refused() -> None:
    with pytest.raises(ValueError, match="names a circuit id"):
        circuit_requests(1, "u", "p", question="compare with c12 please")


async def test_fresh_ids_need_no_drain_but_reuse_is_proven_and_recorded() -> None:
    drains = Drains()
    history = History()
    pool = CircuitPool([1, 2], drains, history)

    first = await pool.lease(2)
    assert drains.calls == [] and drain_notes(history) == []
    pool.release(first)
    second = await pool.lease(2)

    assert sorted(second) == [1, 2] and sorted(drains.calls) == [1, 2]
    notes = drain_notes(history)
    assert {n["circuit"] for n in notes} == {1, 2}
    assert all(n["empty"] is True and n["reused"] is True for n in notes)


async def test_a_shared_cluster_proves_even_the_first_lease() -> None:
    drains = Drains()
    pool = CircuitPool([4], drains, History(), fresh=False)
    assert await pool.lease(1) == [4] and drains.calls == [4]


async def test_unproven_ids_are_quarantined_and_a_short_pool_says_so() -> None:
    drains = Drains(empty={1: False}, broken={2})
    history = History()
    pool = CircuitPool([1, 2, 3], drains, history, fresh=False)

    assert await pool.lease(1) == [3]
    assert pool.quarantined == {1, 2}
    notes = {n["circuit"]: n for n in drain_notes(history)}
    assert notes[1]["empty"] is False
    assert "ConnectionError" in str(notes[2]["error"])

    with pytest.raises(SetupError, match="circuit pool short"):
        await pool.lease(1)  # 3 is leased, 1 and 2 quarantined


async def test_circuit_wave_runs_three_agents_per_circuit_under_the_user_gate() -> None:
    client = ScriptedRunClient(script=lambda _r, _a: Script.done(delay_s=0.01))
    history = History()
    driver = Driver(client, history, policy=CapPolicy.gated(4))
    pool = CircuitPool([1, 2, 3], Drains(), history)
    workload = CircuitWorkload(pool, circuits_per_user=2)
    ctx = WaveContext(prefix="tpw0", phase="p", phase_index=0, wave=0, scale=3)

    results = await workload.wave(driver, ctx)

    assert len(results) == 9 and all(r.completed for r in results)
    # Two circuits (6 runs) share user u0 under a cap of 4: never more than 4 open.
    assert client.peak_by_user["tpw0-u0"] <= 4
    invokes = [o.invoke for o in history.operations()]
    assert {i.data["circuit"] for i in invokes} == {"c1", "c2", "c3"}
    assert {i.key for i in invokes if i.data["circuit"] == "c2"} == {
        "researcher-c2-tpw0",
        "editor-c2-tpw0",
        "evaluator-c2-tpw0",
    }
    assert pool.quarantined == set()


async def test_circuits_need_three_slots_per_user() -> None:
    client = ScriptedRunClient(script=lambda _r, _a: Script.done())
    history = History()
    driver = Driver(client, history, policy=CapPolicy.gated(2))
    workload = CircuitWorkload(CircuitPool([1], Drains(), history))
    ctx = WaveContext(prefix="tpw0", phase="p", phase_index=0, wave=0, scale=1)

    with pytest.raises(ExceptionGroup) as info:
        await workload.wave(driver, ctx)
    assert info.group_contains(ValueError, match="cannot hold 3 of 2")
