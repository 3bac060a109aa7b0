"""Generated scenarios: legal ones pass every checker; one injected violation fails
exactly the checkers that judge it."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaos.checks import run_checks
from chaos.checks.context import CheckContext
from chaos.record.vocabulary import AuditRow, RunRow
from chaos.testing.synthetic import PREFIX, WALL0, SynthRun, World, plan_world, render
from chaos.verdict import Status, render_failure

# Modest example counts keep the fast tier in seconds; CI may load a bigger profile.
settings.register_profile(
    "checks",
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
CHECKS = settings.get_profile("checks")


@st.composite
def worlds(draw: st.DrawFn, *, ensure_fates: bool = False) -> World:
    return plan_world(
        draw(st.integers(min_value=6, max_value=60)),
        seed=draw(st.integers(min_value=0, max_value=2**32 - 1)),
        replicas=draw(st.integers(min_value=2, max_value=4)),
        kill=ensure_fates or draw(st.booleans()),
        cancel_share=draw(st.floats(min_value=0.0, max_value=0.3)),
        cut_share=draw(st.floats(min_value=0.0, max_value=0.3)),
        concurrency=draw(st.floats(min_value=2.0, max_value=30.0)),
        ensure_fates=ensure_fates,
    )


def _statuses(world: World) -> dict[str, Status]:
    verdicts = run_checks(CheckContext.from_history(render(world)))
    return {v.invariant: v.status for v in verdicts}


@CHECKS
@given(worlds())
def test_legal_histories_pass_every_checker(world: World) -> None:
    statuses = _statuses(world)
    assert Status.FAIL not in statuses.values(), statuses
    for always in (
        "no_zombies",
        "stop_reason_fits_cause",
        "terminal_is_final",
        "nothing_lost",
        "load_spread",
    ):
        assert statuses[always] is Status.PASS, (always, statuses)


# -- injected violations -------------------------------------------------------------------
def _healthy_completions(world: World) -> list[SynthRun]:
    return [r for r in world.runs if r.fate == "complete" and r.replica not in world.kills]


def _zombie(world: World, pick: int) -> None:
    run = _pick(_healthy_completions(world), pick)
    run.client_outcome, run.client_events, run.client_stop_reason = "info", ["agent"], None
    run.db_end, run.hold_end = None, math.inf


def _quota_leak(world: World, pick: int) -> None:
    world.final_quota_bump[_pick(world.runs, pick).user_id] = 1


def _wrong_stop_reason(world: World, pick: int) -> None:
    _pick([r for r in world.runs if r.fate == "cut"], pick).db_stop_reason = "chaos-other"


def _terminal_changed(world: World, pick: int) -> None:
    run = _pick([r for r in world.runs if r.db_end is not None], pick)
    end = run.row_at(None)
    old: dict[str, object] = {
        "status": end.status,
        "stop_reason": end.stop_reason,
        "completed_at": end.completed_at,
    }
    other = "completed" if end.status == "failed" else "failed"
    world.extra_audit.append(
        AuditRow(
            0,
            "runs",
            "update",
            run.run_id,
            old,
            {**old, "status": other},
            (end.completed_at or 0) + 1,
        )
    )


def _lost_run(world: World, pick: int) -> None:
    _pick(_healthy_completions(world), pick).in_db = False


def _phantom_run(world: World, pick: int) -> None:
    world.extra_rows.append(
        RunRow(
            f"r_ghost{pick}",
            f"{PREFIX}-ghost",
            None,
            "r1",
            "completed",
            "end_turn",
            None,
            WALL0 + 1,
            WALL0 + 2,
        )
    )


def _done_but_failed(world: World, pick: int) -> None:
    run = _pick(_healthy_completions(world), pick)
    run.db_status, run.db_stop_reason, run.db_error = "failed", None, "boom"


def _reaped_live(world: World, pick: int) -> None:
    run = _pick(_healthy_completions(world), pick)
    run.client_outcome, run.client_events, run.client_stop_reason = "info", ["agent"], None
    run.db_status, run.db_stop_reason, run.db_error = (
        "failed",
        "replica_died",
        "owner replica died",
    )


def _slow_reap(world: World, pick: int) -> None:
    p = world.params
    for replica, killed_at in world.kills.items():
        late = killed_at + p.reap_bound_s + p.reap_margin_s + 5.0
        world.reaps[replica] = late
        for run in world.runs:
            if run.fate == "killed" and run.replica == replica:
                run.db_end = run.hold_end = late
    world.snapshot_times[-1] = max(world.snapshot_times[-1], max(world.reaps.values()) + 5.0)


def _healthy_cancels(world: World) -> list[SynthRun]:
    out = []
    for run in world.runs:
        c = run.cancel
        if c is None:
            continue
        near_kill = any(
            k <= c.start + 10.0 for r, k in world.kills.items() if r in (run.replica, c.via)
        )
        if not near_kill:
            out.append(run)
    return out


def _unknown_cancel(world: World, pick: int) -> None:
    cancel = _pick([r for r in world.runs if r.cancel is not None], pick).cancel
    assert cancel is not None
    cancel.classification = "unknown"


def _slow_ack(world: World, pick: int) -> None:
    cancel = _pick(_healthy_cancels(world), pick).cancel
    assert cancel is not None
    cancel.end = cancel.start + world.params.cancel_ack_timeout_s + 2.0


def _missing_done(world: World, pick: int) -> None:
    run = _pick(_healthy_completions(world), pick)
    run.client_events, run.client_stop_reason = ["session", "agent"], None


def _pick(items: list[SynthRun], pick: int) -> SynthRun:
    assert items, "the skeleton guarantees a candidate"
    return items[pick % len(items)]


INJECTIONS: dict[str, tuple[Callable[[World, int], None], set[str]]] = {
    "zombie": (_zombie, {"no_zombies"}),
    "quota_leak": (_quota_leak, {"no_quota_leaks"}),
    "wrong_stop_reason": (_wrong_stop_reason, {"stop_reason_fits_cause"}),
    "terminal_changed": (_terminal_changed, {"terminal_is_final"}),
    "lost_run": (_lost_run, {"nothing_lost"}),
    "phantom_run": (_phantom_run, {"nothing_lost"}),
    "done_but_failed": (_done_but_failed, {"one_truth", "stop_reason_fits_cause"}),
    "reaped_live": (_reaped_live, {"one_truth", "stop_reason_fits_cause"}),
    "slow_reap": (_slow_reap, {"bounded_recovery"}),
    "unknown_cancel": (_unknown_cancel, {"cancel_classification"}),
    "slow_ack": (_slow_ack, {"bounded_recovery"}),
    "missing_done": (_missing_done, {"no_silent_regressions"}),
}


@settings(CHECKS, max_examples=40)
@given(worlds(ensure_fates=True), st.sampled_from(sorted(INJECTIONS)), st.integers(0, 1000))
def test_one_injected_violation_fails_exactly_its_checkers(
    world: World, kind: str, pick: int
) -> None:
    assert Status.FAIL not in _statuses(world).values()
    inject, expected = INJECTIONS[kind]
    inject(world, pick)
    statuses = _statuses(world)
    failed = {name for name, status in statuses.items() if status is Status.FAIL}
    assert failed == expected, (kind, statuses)


def test_every_injection_kind_is_exercised_at_least_once() -> None:
    """Hypothesis samples kinds at random; this walks each one deterministically, and
    checks that every failing verdict's evidence serialises for the report."""
    for kind, (inject, expected) in sorted(INJECTIONS.items()):
        world = plan_world(30, seed=3, ensure_fates=True)
        inject(world, 0)
        verdicts = run_checks(CheckContext.from_history(render(world)))
        failed = {v.invariant for v in verdicts if v.status is Status.FAIL}
        assert failed == expected, kind
        for v in verdicts:
            json.dumps(v.to_dict())
        rendered = render_failure(verdicts, seed=3)
        assert all(f"[FAIL] {name}" in rendered for name in expected)


def test_params_survive_the_history() -> None:
    world = plan_world(10, seed=1)
    ctx = CheckContext.from_history(render(world))
    assert ctx.params == replace(world.params, per_user_cap=ctx.params.per_user_cap)
