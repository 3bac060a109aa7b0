"""``explain_known``: which failing verdict of a live-machine example a write-up explains.

The function lives beside its chaos test (tests/chaos/test_machine_live.py) and uses the
scripted scenarios' signature helpers; loaded here by path, with tests/chaos importable as
pytest makes it for that folder.  Hand-made verdicts, no Docker: for each finding the
machine may meet (LC-002, LC-003, LC-004) one verdict its write-up explains and one it does
not, and verdicts no signature applies to.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from chaos.checks.context import CheckContext
from chaos.machine.live import CANCEL_REASON, ExampleFacts
from chaos.record.history import FaultWindow, History
from chaos.record.vocabulary import FAULT_KILL, FAULT_STOP, QuotaRow, RunRow, Snapshot
from chaos.verdict import Verdict

CHAOS_TESTS = Path(__file__).resolve().parents[1] / "chaos"
Explain = Callable[[Verdict, ExampleFacts], "str | None"]


@pytest.fixture(scope="module")
def explain_known() -> Iterator[Explain]:
    added = str(CHAOS_TESTS) not in sys.path
    if added:
        sys.path.insert(0, str(CHAOS_TESTS))
    try:
        yield _live_machine_tests().explain_known
    finally:
        if added:
            sys.path.remove(str(CHAOS_TESTS))


def _live_machine_tests() -> ModuleType:
    name = "test_machine_live_under_unit_test"
    spec = importlib.util.spec_from_file_location(name, CHAOS_TESTS / "test_machine_live.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def window(name: str, target: str = "r2", start: float = 100.0) -> FaultWindow:
    return FaultWindow(name, target, start, start + 10.0, 1000.0, 1010.0, True, True)


def run_row(agent: str, replica: str, status: str = "running", user: str = "u0") -> RunRow:
    return RunRow(f"run-{agent}", agent, user, replica, status, None, None, 1000.0, None)


def facts(*windows: FaultWindow, final: Snapshot | None = None, ctx: Any = None) -> ExampleFacts:
    return ExampleFacts(
        ctx=ctx if ctx is not None else CheckContext.from_history(History()),
        final=final if final is not None else Snapshot(mono=0.0, wall=0.0),
        windows=windows,
        cancel_reason=CANCEL_REASON,
    )


def one_truth(stop_reason: str, client_saw: str = "done end_turn") -> Verdict:
    mismatch = {"client_saw": client_saw, "status": "cancelled", "stop_reason": stop_reason}
    return Verdict.failed("one_truth", "client and row disagree", client_db_mismatch=[mismatch])


# -- LC-004: a done run whose row says cancelled with our reason --------------------------------
def test_lc004_explains_a_done_run_cancelled_with_the_machines_reason(
    explain_known: Explain,
) -> None:
    assert explain_known(one_truth(CANCEL_REASON), facts()) == "LC-004"


def test_lc004_does_not_explain_another_reason_or_a_reap_of_a_live_owner(
    explain_known: Explain,
) -> None:
    assert explain_known(one_truth("client disconnected"), facts()) is None
    assert explain_known(one_truth(CANCEL_REASON, client_saw="error boom"), facts()) is None
    reaped = Verdict.failed(
        "one_truth", "a live owner reaped", reaped_live_owner=["r1"], client_db_mismatch=[]
    )
    assert explain_known(reaped, facts()) is None


# -- LC-002: a graceful stop leaves the stopped replica's runs running --------------------------
def test_lc002_explains_zombies_of_the_stopped_replica_only(explain_known: Explain) -> None:
    final = Snapshot(
        mono=0.0,
        wall=0.0,
        runs=(run_row("a1", "r2"), run_row("a2", "r1", "completed")),
        quotas=(QuotaRow("u0", 1),),
    )
    zombies = Verdict.failed("no_zombies", "a run left running", offenders=["a1"])
    assert explain_known(zombies, facts(window(FAULT_STOP), final=final)) == "LC-002"
    leak = Verdict.failed("no_quota_leaks", "u0 holds a slot", quiescence=[{"user_id": "u0"}])
    assert explain_known(leak, facts(window(FAULT_STOP), final=final)) == "LC-002"


def test_lc002_does_not_explain_zombies_elsewhere_or_without_a_stop(
    explain_known: Explain,
) -> None:
    elsewhere = Snapshot(mono=0.0, wall=0.0, runs=(run_row("a1", "r3"),))
    zombies = Verdict.failed("no_zombies", "a run left running")
    assert explain_known(zombies, facts(window(FAULT_STOP), final=elsewhere)) is None
    on_victim = Snapshot(mono=0.0, wall=0.0, runs=(run_row("a1", "r2"),))
    assert explain_known(zombies, facts(window(FAULT_KILL), final=on_victim)) is None
    assert explain_known(zombies, facts(final=on_victim)) is None


# -- LC-003: slots left at quiescence by starts that died with a killed replica -----------------
class _ClientRun:
    def __init__(self, user: str, end: float) -> None:
        self.user_id = user
        self.run_id = None
        self.maybe_admitted = True
        self.outcome = "info"
        self.end = end


class _Ctx:
    def __init__(self, runs: list[_ClientRun]) -> None:
        self.client_runs = runs

    def row_for(self, run: Any) -> None:
        return None


#: u0 holds one slot at quiescence and runs nothing.
LEAK = Verdict.failed(
    "no_quota_leaks",
    "u0 holds a slot at quiescence",
    quiescence=[{"user_id": "u0", "active_count": 1, "running_runs": 0}],
)


def test_lc003_explains_a_slot_held_by_a_start_that_died_with_the_victim(
    explain_known: Explain,
) -> None:
    died = _Ctx([_ClientRun("u0", end=100.5)])
    assert explain_known(LEAK, facts(window(FAULT_KILL, start=100.0), ctx=died)) == "LC-003"


def test_lc003_does_not_explain_a_leak_without_such_a_start_or_below_the_bound(
    explain_known: Explain,
) -> None:
    kill = window(FAULT_KILL, start=100.0)
    leak = LEAK
    assert explain_known(leak, facts(kill, ctx=_Ctx([]))) is None
    long_after = _Ctx([_ClientRun("u0", end=500.0)])
    assert explain_known(leak, facts(kill, ctx=long_after)) is None
    below = Verdict.failed(
        "no_quota_leaks", "below", out_of_bounds=[{"why": "below the runs holding a slot"}]
    )
    assert explain_known(below, facts(kill, ctx=_Ctx([_ClientRun("u0", 100.5)]))) is None


@pytest.mark.parametrize("invariant", ["nothing_lost", "terminal_is_final", "bounded_recovery"])
def test_no_write_up_explains_other_invariants(explain_known: Explain, invariant: str) -> None:
    verdict = Verdict.failed(invariant, "broken")
    everything = facts(window(FAULT_KILL), window(FAULT_STOP))
    assert explain_known(verdict, everything) is None


# -- LC-005: a slot kept by a run the cancel path marked failed / owner_replica_dead -----------
def marked_final(user: str = "u0") -> Snapshot:
    marked = RunRow("run-a1", "a1", user, "r2", "failed", "owner_replica_dead", None, 1.0, 2.0)
    return Snapshot(mono=0.0, wall=0.0, runs=(marked,))


def test_lc005_explains_one_slot_kept_per_marked_run(explain_known: Explain) -> None:
    assert explain_known(LEAK, facts(final=marked_final())) == "LC-005"


def test_lc005_does_not_explain_another_users_leak_or_more_slots(explain_known: Explain) -> None:
    assert explain_known(LEAK, facts(final=marked_final("u9"))) is None
    two = Verdict.failed(
        "no_quota_leaks",
        "u0 holds two slots",
        quiescence=[{"user_id": "u0", "active_count": 2, "running_runs": 0}],
    )
    assert explain_known(two, facts(final=marked_final())) is None
