"""Issue 12: the Hypothesis state machine on a live 3-replica cluster of the target.

Four tests; the ``ci`` exploration runs in CI (~5 min, measured), the other three are
``slow`` (in ``gate --full`` and by hand):

* ``test_live_machine_replays_saved_regressions`` (slow: with no saved program it would
  be an empty parametrization, a skip): every saved program under
  ``tests/regressions/live_machine/`` (at most the profile's bound), replayed
  once; a file naming a ``finding`` is a strict xfail (``known_finding``);
* ``test_live_machine_explores``: new examples under the profile
  (``LOOMCHAOS_MACHINE_PROFILE=ci|deep``, default ``ci``); a failure is saved as
  a regression file and fails the test with the shrunk program;
* ``test_live_machine_fails_shrinks_saves_and_replays``: a machine whose model
  is wrong on purpose must fail, shrink, save and replay (the failure path, live);
* ``test_live_machine_fault_rules_program``: one fixed program through the
  rules that cut a Postgres link, start a circuit and hold the sweeper's lock
  (each runs live at least once, whatever Hypothesis draws), judged like any
  example.

Known findings are classified with the same signature helpers the scripted
scenarios use (LC-002, LC-003, LC-004, LC-005): a verdict that fails with exactly that
signature is counted as known; anything else fails the example.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from hypothesis.stateful import invariant
from test_scenario_cancel import assert_lc004_signature
from test_scenario_crash import (
    assert_lc003_signature,
)
from test_scenario_crash_cancel_windows import assert_dead_owner_mark_signature

from chaos.findings import known_finding
from chaos.machine.live import (
    REGRESSIONS_DIR,
    ExampleFacts,
    LiveClusterMachine,
    LiveSetup,
    SessionLoopBridge,
    active_profile,
    explore,
    load_regression,
    load_regressions,
    replay_program,
    replay_regression,
)
from chaos.machine.live.spec import LIVE_MACHINE_SPEC
from chaos.machine.run import machine_settings, program_rules
from chaos.record.history import History
from chaos.record.vocabulary import FAULT_KILL
from chaos.seeds import HYPOTHESIS, stream_seed
from chaos.sut.loomcycle.signatures import (
    LC002_INVARIANTS,
    assert_lc002_signature,
    last_stops,
)
from chaos.verdict import Verdict

pytestmark = [pytest.mark.chaos, pytest.mark.asyncio(loop_scope="session")]

ROOT = Path(__file__).resolve().parents[2]
SAVED = ROOT / REGRESSIONS_DIR


#: The row the cancel path writes for a run whose owner it judged dead (LC-005's runs).
LC005_MARK = ("failed", "owner_replica_dead")


def explain_known(verdict: Verdict, facts: ExampleFacts) -> str | None:
    """The finding whose signature ``verdict`` shows, or None.  Each signature helper
    raises AssertionError when the failure is not that finding's."""
    attempts: list[tuple[str, Callable[[], None]]] = []
    if verdict.invariant == "one_truth":
        attempts.append(("LC-004", lambda: assert_lc004_signature(verdict, facts.cancel_reason)))
    if verdict.invariant == "no_quota_leaks":
        marked = [r for r in facts.final.runs if (r.status, r.stop_reason) == LC005_MARK]
        if marked:
            attempts.append(("LC-005", lambda: assert_dead_owner_mark_signature(verdict, marked)))
        for w in facts.windows:
            if w.name == FAULT_KILL:
                attempts.append(
                    ("LC-003", lambda w=w: assert_lc003_signature(verdict, facts.ctx, w))
                )
    stops = last_stops(facts.windows)
    if verdict.invariant in LC002_INVARIANTS and stops:
        attempts.append(
            (
                "LC-002",
                lambda: assert_lc002_signature(verdict, stops, facts.final, facts.ctx.params),
            )
        )
    for finding, check in attempts:
        try:
            check()
        except AssertionError:
            continue
        return finding
    return None


@pytest_asyncio.fixture(loop_scope="session")
async def live_setup(
    chaos_cluster_for: Callable[..., Awaitable[Any]],
    chaos_history: History,
    chaos_prefix: str,
    chaos_seed: int,
    chaos_artifacts: Path,
    record_property: Callable[[str, Any], None],
) -> AsyncIterator[LiveSetup]:
    """The machine's cluster, and a bridge to the session loop its clients live on."""
    cluster = await chaos_cluster_for(LIVE_MACHINE_SPEC)
    setup = LiveSetup(
        cluster=cluster,
        bridge=SessionLoopBridge(asyncio.get_running_loop()),
        prefix=chaos_prefix,
        seed=chaos_seed,
        meta=chaos_history.meta,
        explain=explain_known,
        artifacts=chaos_artifacts,
    )
    yield setup
    summary = setup.stats.summary()
    print(f"live machine: {json.dumps(summary)}")
    record_property("machine_stats", json.dumps(summary))
    # Failing verdicts a write-up explained stay visible to the gate (known findings grow).
    known = setup.stats.known_verdicts
    record_property("chaos_known_verdicts", json.dumps([v.to_dict() for v in known]))


#: The strict xfail of each finding a saved program may name (literal ids: the fast tier
#: ties every xfail to its write-up).
FINDING_MARKS = {
    "LC-002": known_finding("LC-002", AssertionError),
    "LC-003": known_finding("LC-003", AssertionError),
    "LC-004": known_finding("LC-004", AssertionError),
    "LC-005": known_finding("LC-005", AssertionError),
}


def _regression_params() -> list[Any]:
    params = []
    for reg in load_regressions(SAVED, limit=active_profile().max_regressions):
        if reg.finding is not None and reg.finding not in FINDING_MARKS:
            raise ValueError(f"{reg.path}: finding {reg.finding} has no mark in FINDING_MARKS")
        marks = [FINDING_MARKS[reg.finding]] if reg.finding else []
        params.append(pytest.param(reg, id=reg.name, marks=marks))
    return params


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("regression", _regression_params())
async def test_live_machine_replays_saved_regressions(
    live_setup: LiveSetup, regression: Any
) -> None:
    await asyncio.to_thread(replay_regression, live_setup, regression)


@pytest.mark.timeout(active_profile().timeout_s())
async def test_live_machine_explores(live_setup: LiveSetup, chaos_seed: int) -> None:
    profile = active_profile()
    seed = stream_seed(chaos_seed, HYPOTHESIS)
    print(
        f"live machine: profile {profile.name} ({profile.max_examples} examples, "
        f"{profile.steps} steps, budget {profile.minutes} min), hypothesis seed {seed} "
        f"from test seed {int(chaos_seed)}"
    )
    live_setup.stats.began = time.monotonic()  # the cluster start is not exploration
    await asyncio.to_thread(explore, live_setup, profile, seed=seed, regressions_dir=SAVED)


#: Every fault rule that holds state across steps, once, in an order the model must follow:
#: a cut link while runs run elsewhere, a circuit on another replica, the sweeper's lock held
#: across a kill (no reap while held, the reap due again from the release), the reap, the
#: restart.
FAULT_RULES_PROGRAM = (
    "state.initial_load(runs=4, users=2)",
    "state.cut_postgres_link(hold=3.0, replica='r1')",
    "state.start_circuit(user=1, via='r3')",
    "state.hold_sweeper_lock()",
    "state.kill_replica(replica='r2')",
    "state.pass_one_sweep()",
    "state.release_sweeper_lock()",
    "state.pass_the_stale_threshold()",
    "state.restart()",
    "state.start_runs(count=2, user=0, via='r2')",
)


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_live_machine_fault_rules_program(live_setup: LiveSetup) -> None:
    await asyncio.to_thread(replay_program, live_setup, FAULT_RULES_PROGRAM)
    steps = live_setup.stats.programs[-1]
    for step in ("inject:link:reset_cut", "start_circuit", "inject:sweeper_stall", "inject:kill"):
        assert step in steps, (step, steps)


class CapOfOneMachine(LiveClusterMachine):
    """Broken on purpose: it believes each user may have one run at all, so a user's
    second run "breaks" it.  A machine that cannot fail tests nothing.

    Judged on the runs table, not on live slot counts: a user's rows stay once written
    and every start rule waits for its rows, so the same program fails at the same step
    on every replay.  The first version judged the slot count at the moment of the check,
    which depends on whether the first run had already ended; Hypothesis, replaying a
    prefix that failed one step earlier, stopped with FlakyStrategyDefinition
    ("the second run stopped drawing earlier than the first run"), and shrinking needs a
    failure the program decides.  Only the cheap rules (no fault, no time rule), so that
    each shrink attempt costs seconds."""

    enabled_rules = frozenset()

    @invariant()
    def one_run_per_user(self) -> None:
        if self.closed:
            return
        per_user: dict[str, int] = {}
        for row in self.snapshot().runs:
            if row.agent_id in self.model.runs:
                per_user[row.user_id] = per_user.get(row.user_id, 0) + 1
        over = {u: n for u, n in per_user.items() if n > 1}
        if over:
            raise AssertionError(f"users with more runs than the cap of 1 allows: {over}")


@pytest.mark.slow
@pytest.mark.timeout(1200)
async def test_live_machine_fails_shrinks_saves_and_replays(
    live_setup: LiveSetup, chaos_seed: int, tmp_path: Path
) -> None:
    """The failure path end to end on the live cluster: the wrong model fails, Hypothesis
    shrinks the program to one or two rules, the program is saved, and its replay fails
    the same way."""
    run_settings = machine_settings(max_examples=10, steps=4, report_multiple_bugs=False)
    seed = stream_seed(chaos_seed, HYPOTHESIS)
    with pytest.raises(AssertionError) as caught:
        await asyncio.to_thread(
            explore,
            live_setup,
            run_settings,
            seed=seed,
            regressions_dir=tmp_path,
            machine=CapOfOneMachine,
        )
    assert "the cap of 1" in str(caught.value), caught.value
    (saved,) = await asyncio.to_thread(lambda: list(tmp_path.glob("*.json")))
    regression = await asyncio.to_thread(load_regression, saved)
    rules = program_rules(regression.program, CapOfOneMachine)
    print(f"cap-of-one machine: shrunk to {rules}; saved {saved}")
    assert 1 <= len(rules) <= 2, rules
    assert any(r.startswith(("state.start_runs(", "state.initial_load(")) for r in rules), rules
    with pytest.raises(AssertionError, match="the cap of 1"):
        await asyncio.to_thread(replay_regression, live_setup, regression, CapOfOneMachine)
