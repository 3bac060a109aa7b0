"""Issue 11: every invariant broken from outside a live cluster, and found by its checker.

Two workloads, each with a control run and its rows:

* ``matrix`` (ids ``control``, ``<invariant>``; chaos tier, ~2 min): 24 runs
  of ~2 s for 6 users through nginx under the per-user cap (SMOKE_SPEC), then
  two runs cancelled through replicas that do not own them; one row per invariant;
* ``kill`` (ids ``kill-control``, ``kill-bounded_recovery``; ``slow``, ~3 min):
  24 runs of ~10 s (CRASH_SPEC), a replica owning some SIGKILLed (a recorded
  fault) and reaped; the row delays the reap, the half of bounded_recovery the
  matrix cannot reach without a kill.

Each row of ``sabotage_rows.py`` sabotages its workload from outside
(database, containers, network; never the History) and asserts:

* the row's own invariant fails (an undetected sabotage is a missing check);
* every other invariant, except the side effects the row argues for, judges
  exactly as the control did, and the control judges exactly as the baseline
  recorded from real runs (``data/sabotage_baseline.json``).

Time to detect runs from the moment the sabotage took effect to the moment
its checker returned the failing verdict.  The checkers judge the history
after the scenario converged, so that is sabotage -> end of convergence ->
check; both spans are recorded (JUnit ``sabotage_row``), and
``scripts/sabotage_table.py`` turns them into docs/sabotage.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sabotage_rows import Sabotage, Scene, all_rows

from chaos.checks import ALL_CHECKS, run_checks
from chaos.cluster.cluster import Cluster
from chaos.faults import injected
from chaos.faults.replica import kill_replica, rejoin
from chaos.record.history import History
from chaos.scenario import non_owner, recorded_cancel
from chaos.scenario.steps import load_requests, run_many, running_row
from chaos.sut.base import RunRequest
from chaos.sut.loomcycle.ports import (
    gated_policy,
    lb_client,
    replica_clients,
    scenario_run,
    started_runs,
)
from chaos.sut.loomcycle.settings import settings_of
from chaos.sut.loomcycle.specs import CRASH_SPEC, SMOKE_SPEC
from chaos.testing.sabotage_table import PROPERTY, row_record
from chaos.verdict import Status, Verdict
from chaos.workload import Driver

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.timeout(300),
]

SPEC = SMOKE_SPEC
SCENARIO = "matrix"
KILL_SCENARIO = "kill"
LOAD_RUNS, LOAD_USERS = 24, 6
#: Without faults the convergence budget is this settle time: quota give-back (<= 5 s)
#: and the last writes, with room.  A sabotaged cluster that never converges is judged
#: on what it left after this long.
SETTLE_S = 15.0
CANCEL_REASON = "loomchaos sabotage matrix: cancelled through a non-owner"
BASELINE = Path(__file__).parent / "data" / "sabotage_baseline.json"

#: The control's verdict statuses, once per session (every row compares against them).
_CONTROL: dict[str, dict[str, str]] = {}


@dataclass(frozen=True)
class Judged:
    verdicts: dict[str, Verdict]
    #: When each checker returned its verdict (epoch), for time to detect.
    judged_at: dict[str, float]
    converged_at: float


def baseline_statuses(scenario: str) -> dict[str, str]:
    recorded = json.loads(BASELINE.read_text())[scenario]["verdicts"]
    return {str(k): str(v) for k, v in recorded.items()}


def statuses(judged: Judged) -> dict[str, str]:
    return {name: v.status.value for name, v in judged.verdicts.items()}


def judge(run: Any, converged_at: float) -> Judged:
    """Every checker in turn, each verdict with the moment it was returned."""
    ctx = run.context()
    verdicts: dict[str, Verdict] = {}
    judged_at: dict[str, float] = {}
    for name in ALL_CHECKS:
        (verdicts[name],) = run_checks(ctx, [name])
        judged_at[name] = time.time()
    return Judged(verdicts, judged_at, converged_at)


async def matrix_scenario(
    cluster: Cluster,
    history: History,
    prefix: str,
    rng: random.Random,
    sabotage: Sabotage,
) -> Judged:
    load = load_requests(prefix, "load", LOAD_RUNS, LOAD_USERS)
    # Two runs cancelled through a non-owner: ``steady``'s cancel is never sabotaged (it
    # keeps bounded_recovery's healthy ack when a row breaks the other), ``victim``'s is
    # the one a row may sabotage.
    steady = RunRequest("chaos", f"{prefix}-cs", "loomchaos sabotage matrix cancel", f"{prefix}-cv")
    victim = RunRequest("chaos", f"{prefix}-cx", "loomchaos sabotage matrix cancel", f"{prefix}-cu")
    cap = settings_of(SPEC).max_runs_per_user
    async with (
        # nginx round-robins over 3 replicas: one owning over 60 % of the runs means the
        # balancer is not spreading them (the smoke test's bound).
        scenario_run(cluster, history, prefix, max_replica_share=0.6, settle_s=SETTLE_S) as run,
        lb_client(cluster) as lb,
        replica_clients(cluster) as replicas,
    ):
        scene = Scene(cluster, run, load, victim, rng)
        try:
            await sabotage.arm(scene)
            driver = Driver(lb, history, via="lb", policy=gated_policy(cap))
            async with asyncio.TaskGroup() as tg:
                tg.create_task(run_many(driver, load))
                tg.create_task(sabotage.during_load(scene))
            await sabotage.after_load(scene)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(run_many(driver, [steady, victim]))
                snap = await run.wait_for(
                    lambda s: running_row(s, steady.agent_id) and running_row(s, victim.agent_id),
                    what=f"{steady.agent_id} and {victim.agent_id} running with known owners",
                    timeout=30,
                )
                for req in (steady, victim):
                    row = running_row(snap, req.agent_id)
                    assert row is not None and row.replica_id is not None
                    via = non_owner(cluster.replica_ids, row.replica_id, rng)
                    hook = (
                        sabotage.around_cancel(scene, row.replica_id, via)
                        if req is victim
                        else contextlib.nullcontext()
                    )
                    async with hook:
                        await recorded_cancel(
                            history, replicas[via], req.agent_id, via=via, reason=CANCEL_REASON
                        )
            await run.converge()
            judged = judge(run, time.time())
        finally:
            await sabotage.cleanup(scene)
    return judged


def _differences(got: dict[str, str], want: dict[str, str], skip: set[str]) -> dict[str, str]:
    return {
        name: f"{got.get(name)} (baseline {want.get(name)})"
        for name in sorted(set(got) | set(want))
        if name not in skip and got.get(name) != want.get(name)
    }


def _summaries(judged: Judged) -> str:
    return "\n".join(
        f"  {n}: {v.status.value}: {v.summary}" for n, v in sorted(judged.verdicts.items())
    )


Scenario = Callable[[Cluster, History, str, random.Random, Sabotage], Awaitable[Judged]]


async def judge_row(
    scenario: str,
    run_scenario: Scenario,
    key: str,
    cluster: Cluster,
    history: History,
    prefix: str,
    rng: random.Random,
    record_property: Callable[[str, Any], None],
) -> None:
    """The control (``key == "control"``) or one row of ``scenario``, asserted."""
    baseline = baseline_statuses(scenario)
    if key == "control":
        judged = await run_scenario(cluster, history, prefix, rng, Sabotage())
        _CONTROL[scenario] = statuses(judged)
        diff = _differences(statuses(judged), baseline, set())
        assert not diff, f"the control differs from the baseline: {diff}\n{_summaries(judged)}"
        return
    if scenario not in _CONTROL:
        # Selected alone (-k): run the control first, on its own history and ids.
        control = await run_scenario(
            cluster, History(), f"{prefix}c", random.Random(rng.random()), Sabotage()
        )
        _CONTROL[scenario] = statuses(control)
    control_matches = not _differences(_CONTROL[scenario], baseline, set())

    (sabotage,) = [r for r in all_rows() if r.key == key and r.scenario == scenario]
    judged = await run_scenario(cluster, history, prefix, rng, sabotage)
    struck = sabotage.strike.require()
    primary = judged.verdicts[sabotage.invariant]
    detected = primary.status is Status.FAIL
    got = statuses(judged)
    side_failed = sorted(n for n in sabotage.side_effects if got[n] != baseline[n])
    unexpected = _differences(got, baseline, {sabotage.invariant, *sabotage.side_effects})
    ttd = judged.judged_at[sabotage.invariant] - struck if detected else None
    record_property("sabotage_time_to_detect_s", None if ttd is None else round(ttd, 3))
    record_property(
        PROPERTY,
        row_record(
            invariant=sabotage.invariant,
            sabotage=sabotage.what,
            detected=detected,
            time_to_detect_s=None if ttd is None else round(ttd, 3),
            struck_to_converged_s=round(judged.converged_at - struck, 3),
            allowed_side_effects=sorted(sabotage.side_effects),
            side_effects_failed=side_failed,
            control_matches=control_matches,
        ),
    )
    record_property("sabotage_strike", json.dumps(sabotage.strike.evidence, default=str))
    assert control_matches, f"the control differs from the baseline: {_CONTROL[scenario]}"
    assert detected, (
        f"MISSING CHECK: {sabotage.what} went undetected by {sabotage.invariant}: "
        f"{primary.status.value}: {primary.summary}\n{_summaries(judged)}"
    )
    assert not unexpected, (
        f"{sabotage.what}: invariants outside its argued side effects judged differently "
        f"from the control: {unexpected}\n{_summaries(judged)}"
    )


# -- the kill scenario: the reap half of bounded_recovery --------------------------------

KILL_SPEC = CRASH_SPEC
#: The victim must own this many running runs at the kill (as in the crash scenario).
MIN_OWNED = 2
#: The kill's effect is proven by the reap; a row may delay the reap on purpose by up to
#: this much past the documented wait.
REAP_DELAY_ALLOWANCE_S = 20.0


async def kill_scenario(
    cluster: Cluster,
    history: History,
    prefix: str,
    rng: random.Random,
    sabotage: Sabotage,
) -> Judged:
    """24 runs of ~10 s, all admitted at once (6 users x cap 4); once every one runs, a
    replica owning some is SIGKILLed (a recorded fault), reaped, and restarted.  No start
    is in flight at the kill, so LC-003 (a start dying mid-admission leaks its slot) cannot
    happen and the control is clean."""
    load = load_requests(prefix, "kill", LOAD_RUNS, LOAD_USERS)
    async with scenario_run(cluster, history, prefix) as run:
        scene = Scene(cluster, run, load, load[0], rng)
        try:
            async with started_runs(cluster, history, load, poll_timeout_s=15.0):
                snap = await run.wait_for(
                    lambda s: all(running_row(s, r.agent_id) for r in load),
                    what=f"all {len(load)} runs running",
                    timeout=60,
                )
                owners = Counter(r.replica_id for r in snap.runs if r.status == "running")
                victim = rng.choice(sorted(str(o) for o, n in owners.items() if n >= MIN_OWNED))
                await sabotage.arm(scene)
                kill = await kill_replica(cluster, victim, run.params)
                kill.effect_timeout += REAP_DELAY_ALLOWANCE_S
                delayed = asyncio.create_task(sabotage.after_kill(scene, time.monotonic()))
                try:
                    async with injected(kill, history):
                        pass
                finally:
                    await rejoin(cluster, victim)
                    await delayed
            await run.converge()
            judged = judge(run, time.time())
        finally:
            await sabotage.cleanup(scene)
    return judged


SCENARIOS: dict[str, tuple[Any, Scenario]] = {
    SCENARIO: (SPEC, matrix_scenario),
    KILL_SCENARIO: (KILL_SPEC, kill_scenario),
}
#: The kill scenario waits out a reap (~70-100 s a test): not in the chaos tier.
_KILL_MARKS = [pytest.mark.slow, pytest.mark.timeout(600)]
CASES = [
    pytest.param(
        scenario,
        key,
        id=key if scenario == SCENARIO else f"{scenario}-{key}",
        marks=_KILL_MARKS if scenario == KILL_SCENARIO else [],
    )
    for scenario in SCENARIOS
    for key in ["control", *(r.key for r in all_rows() if r.scenario == scenario)]
]


@pytest.mark.parametrize(("scenario", "key"), CASES)
async def test_sabotage(
    scenario: str,
    key: str,
    chaos_cluster_for: Callable[..., Awaitable[Any]],
    chaos_history: History,
    chaos_prefix: str,
    chaos_rng: random.Random,
    record_property: Callable[[str, Any], None],
) -> None:
    spec, run_scenario = SCENARIOS[scenario]
    cluster = await chaos_cluster_for(spec)
    await judge_row(
        scenario,
        run_scenario,
        key,
        cluster,
        chaos_history,
        chaos_prefix,
        chaos_rng,
        record_property,
    )
