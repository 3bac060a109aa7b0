"""The streamed checking path (a history file read once) against the in-memory one.

Both build their facts with the same fold (:mod:`chaos.checks.facts`), so any
difference is in the reading: split rows, byte offsets for excerpts, a completion
read before its invoke, a repeated audit ``seq``.  The property at the end draws
legal and violating histories and asks for identical verdicts and evidence.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_checks_verdicts_mutants import SCENARIOS

from chaos.checks import run_checks
from chaos.checks.context import CheckContext
from chaos.checks.facts import (
    EXCERPT_MAX,
    FactsFold,
    close_cancel,
    close_run,
    gather,
    open_cancel,
    open_run,
)
from chaos.checks.offline import check_path
from chaos.checks.params import CheckParams, record_params
from chaos.checks.streamed import MalformedFacts, context_from_path
from chaos.errors import SetupError
from chaos.record.history import History, HistoryError, Record
from chaos.record.jsonl import Header, iter_lines, write_records
from chaos.record.readers import audit_from_history, record_audit
from chaos.record.vocabulary import AuditRow, RunRow
from chaos.testing import synthetic
from chaos.testing.bench import HistoryBench
from chaos.testing.synthetic import PREFIX, WALL0, World, plan_world, render, render_to_path
from chaos.verdict import Verdict


def _write(history: History, path: Path, part_size: int) -> Path:
    """Save with a chosen part size, so small histories exercise split rows too."""
    with path.open("w", encoding="utf-8") as fp:
        fp.write(json.dumps(history.header(), sort_keys=True) + "\n")
        write_records(fp, history.records, part_size)
    return path


def _as_json(verdicts: list[Verdict]) -> list[dict[str, Any]]:
    raw = [v.to_dict() for v in verdicts]
    loaded: list[dict[str, Any]] = json.loads(json.dumps(raw, default=str, sort_keys=True))
    return loaded


def _assert_same(history: History, path: Path, params: CheckParams | None = None) -> None:
    in_memory = run_checks(CheckContext.from_history(history, params))
    streamed = run_checks(context_from_path(path, params))
    assert streamed == in_memory
    assert _as_json(streamed) == _as_json(in_memory)


# -- the golden scenarios ---------------------------------------------------------------
@pytest.mark.parametrize("part_size", [1, 3, 5000])
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_golden_scenario_checks_the_same_streamed(
    name: str, part_size: int, tmp_path: Path
) -> None:
    bench = SCENARIOS[name]()
    ctx = bench.context()  # records the params, as the golden test does
    assert ctx.history is not None
    _assert_same(ctx.history, _write(ctx.history, tmp_path / "h.jsonl", part_size))


def test_check_path_reads_the_file_streamed_and_agrees_with_the_history(tmp_path: Path) -> None:
    world = plan_world(40, seed=3, ensure_fates=True)
    world.final_quota_bump[world.runs[0].user_id] = 1  # one failing verdict, with evidence
    history = render(world)
    history.save(tmp_path / "history.jsonl")
    got = check_path(tmp_path)
    assert got == run_checks(CheckContext.from_history(history))
    assert any(v.status.value == "fail" for v in got)


# -- the fold's corner cases ------------------------------------------------------------
def test_a_completion_read_before_its_invoke_still_pairs() -> None:
    h = History(seed=1, clock=lambda: 1.0, wall_clock=lambda: WALL0)
    record_params(h, CheckParams(test_prefix="t1"))
    ahead = Record(index=2, type="invoke", mono=0.0, wall=0.0, op="start_run", key="t1-a")
    h.complete(ahead, "ok", run_id="r_1", stop_reason="end_turn")
    h.invoke("start_run", "w0", "t1-a", user_id="t1-u")
    (run,) = gather(h.records).client_runs
    assert run.outcome == "ok" and run.run_id == "r_1" and run.invoke_index == 2


def test_a_later_completion_of_the_same_invoke_wins() -> None:
    h = History(seed=1, clock=lambda: 1.0, wall_clock=lambda: WALL0)
    inv = h.invoke("start_run", "w0", "t1-a")
    h.complete(inv, "info", error="stream closed")
    h.complete(inv, "ok", run_id="r_1", stop_reason="end_turn")
    call = h.invoke("cancel", "c", "t1-a", via="r2")
    h.complete(call, "ok", classification="acknowledged")
    h.complete(call, "ok", classification="already_terminal")
    facts = gather(h.records)
    assert [r.outcome for r in facts.client_runs] == ["ok"]
    assert [c.classification for c in facts.cancels] == ["already_terminal"]


def test_closing_a_closed_run_again_is_closing_its_invoke() -> None:
    """A repeated completion closes the run an earlier one closed: the result must be what
    closing the invoke itself would give, whatever the first completion said."""
    h = History(seed=1, clock=lambda: 1.0, wall_clock=lambda: WALL0)
    inv = h.invoke("start_run", "w0", None, user_id="u", via="lb", circuit="c1")
    first = h.complete(inv, "fail", code="x", status=503, error="boom")
    last = h.complete(inv, "ok", run_id="r_1", end="done")
    assert close_run(close_run(open_run(inv), first), last) == close_run(open_run(inv), last)
    never = close_run(open_run(inv), None)
    assert never.agent_id == "" and never.outcome is None and never.end is None
    call = h.invoke("cancel", "c", "a", via="r1", reason="chaos")
    first = h.complete(call, "info")
    last = h.complete(call, "ok", cancelled=True, classification="acknowledged")
    once = close_cancel(open_cancel(call), last)
    assert close_cancel(close_cancel(open_cancel(call), first), last) == once
    assert close_cancel(open_cancel(call), None).outcome is None


def _audit_row(seq: int, status: str) -> AuditRow:
    return AuditRow(seq, "runs", "update", "r_1", {"status": "x"}, {"status": status}, 1.0 + seq)


@pytest.mark.parametrize(
    "notes",
    [
        [[1, 2, 3]],  # in order: kept as read
        [[1, 2], [3, 4]],  # in order across notes
        [[1, 2, 3], [2, 5]],  # a repeat: the later row of seq 2 wins
        [[3, 1], [2]],  # out of order: sorted by seq
        [[1, 1, 1]],
    ],
)
def test_audit_rows_are_the_in_memory_read(notes: list[list[int]]) -> None:
    h = History(seed=1, clock=lambda: 1.0, wall_clock=lambda: WALL0)
    for k, seqs in enumerate(notes):
        record_audit(h, [_audit_row(s, f"s{k}") for s in seqs])
    got = gather(h.records).audit
    assert got == audit_from_history(h)
    assert [r.seq for r in got] == sorted({s for seqs in notes for s in seqs})


def test_equal_audit_images_without_numbers_are_one_dict() -> None:
    h = History(seed=1, clock=lambda: 1.0, wall_clock=lambda: WALL0)
    image = {"status": "running", "error": None}
    record_audit(h, [AuditRow(i, "runs", "insert", f"r{i}", None, image, 1.0) for i in (1, 2)])
    record_audit(h, [AuditRow(3, "runs", "update", "r1", image, {"at": 2.0}, 2.0)])
    first, second, third = gather(h.records).audit
    assert first.new is second.new and third.old is first.new
    assert third.new == {"at": 2.0}


def test_an_excerpt_quotes_at_most_its_limit_and_never_more_than_the_index_keeps() -> None:
    h = History(seed=1, clock=lambda: 1.0, wall_clock=lambda: WALL0)
    for i in range(EXCERPT_MAX + 3):
        h.note("x", key="k", i=i)
    facts = gather(h.records)
    assert [r.data["i"] for r in facts.excerpt_records("k", EXCERPT_MAX)] == list(
        range(EXCERPT_MAX)
    )
    assert len(facts.excerpt_records("k", 4)) == 4
    with pytest.raises(ValueError, match="at most 12 lines, not 13"):
        facts.excerpt_records("k", EXCERPT_MAX + 1)


def test_a_split_record_that_is_no_snapshot_or_audit_is_whole_again(tmp_path: Path) -> None:
    """A note with a long ``rows`` list (not an audit) is split like any other and must
    reach the fold whole: here a live probe's run id survives."""
    h = History(seed=1, clock=lambda: 1.0, wall_clock=lambda: WALL0)
    h.note("live_probe", key="t1-a", run_id="r_1", rows=list(range(7)), live=True)
    h.snapshot("other", [{"a": i} for i in range(7)])
    path = _write(h, tmp_path / "h.jsonl", part_size=2)
    fold = FactsFold()
    with path.open("rb") as fp:
        for item in iter_lines(fp, Header()):
            fold.add_item(item)
    facts = fold.finish()
    (probe,) = facts.live_probes["r_1"]
    assert probe.data["rows"] == list(range(7))
    assert facts.snapshots == []


# -- errors -------------------------------------------------------------------------------
def test_a_malformed_snapshot_is_malformed_facts_and_a_format_error_after_it_wins(
    tmp_path: Path,
) -> None:
    s = HistoryBench()
    s.history.snapshot("db", [{"run_id": "r_a"}], at_mono=1.0, at_wall=1.0)
    path = s.history.save(tmp_path / "h.jsonl")
    with pytest.raises(MalformedFacts):
        context_from_path(path)
    with path.open("a", encoding="utf-8") as fp:
        fp.write("{not json\n")
    with pytest.raises(HistoryError, match="line 3: not JSON"):
        context_from_path(path)


def test_an_override_never_reads_the_recorded_params(tmp_path: Path) -> None:
    s = HistoryBench()
    s.history.note("check_params", terminal=[])  # terminal words must be a mapping
    path = s.history.save(tmp_path / "h.jsonl")
    with pytest.raises(SetupError, match="malformed"):
        check_path(path)
    assert context_from_path(path, CheckParams()).params == CheckParams()


def test_an_excerpt_re_reads_its_lines_from_the_file(tmp_path: Path) -> None:
    s = HistoryBench()
    s.run("t1-a", start=0.0, end=None)  # never completed: a zombie candidate
    s.snapshot(5.0, [s.row("t1-a", "r_0001", status="running")])
    ctx = s.context()
    assert ctx.history is not None
    path = ctx.history.save(tmp_path / "h.jsonl")
    streamed = context_from_path(path)
    assert streamed.excerpt("t1-a") == ctx.excerpt("t1-a") != []


# -- the synthetic writer the benchmark uses ---------------------------------------------------
def test_writing_a_world_straight_to_a_file_is_saving_its_rendered_history(
    tmp_path: Path,
) -> None:
    world = plan_world(30, seed=5, ensure_fates=True)
    count = render_to_path(world, tmp_path / "a.jsonl")
    rendered = render(world)
    rendered.save(tmp_path / "b.jsonl")
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert count == len(rendered)


def test_an_audit_log_over_several_notes_checks_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(synthetic, "AUDIT_NOTE_ROWS", 7)
    world = plan_world(30, seed=5, ensure_fates=True)
    render_to_path(world, tmp_path / "h.jsonl")
    notes = [
        line
        for line in (tmp_path / "h.jsonl").read_text(encoding="utf-8").splitlines()
        if '"op":"audit"' in line
    ]
    assert len(notes) > 1
    assert run_checks(context_from_path(tmp_path / "h.jsonl")) == run_checks(
        CheckContext.from_history(render(world))
    )


def test_a_history_that_keeps_nothing_refuses_to_be_read_in_memory(tmp_path: Path) -> None:
    h = History(seed=1, retain=False)
    h.stream_to_path(tmp_path / "h.jsonl")
    h.note("a")
    h.close_stream()
    assert len(h) == 1
    with pytest.raises(HistoryError, match="keeps no records"):
        _ = h.records
    assert [r.op for r in History.read(tmp_path / "h.jsonl").records] == ["a"]
    late = History(seed=1, retain=False)
    late.note("lost")
    with pytest.raises(HistoryError, match="must stream from its start"):
        late.stream_to_path(tmp_path / "late.jsonl")


# -- the property ---------------------------------------------------------------------------
CHECKS = settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _zombie(world: World, pick: int) -> None:
    run = world.runs[pick % len(world.runs)]
    run.client_outcome, run.client_events, run.client_stop_reason = "info", ["agent"], None
    run.db_end, run.hold_end = None, math.inf


def _quota_leak(world: World, pick: int) -> None:
    world.final_quota_bump[world.runs[pick % len(world.runs)].user_id] = 1


def _lost(world: World, pick: int) -> None:
    world.runs[pick % len(world.runs)].in_db = False


def _phantom(world: World, pick: int) -> None:
    world.extra_rows.append(
        RunRow(f"r_ph{pick}", f"{PREFIX}-ph{pick}", f"{PREFIX}-u0", "r1", "completed",
               "end_turn", None, WALL0 + 1.0, WALL0 + 2.0)
    )  # fmt: skip


def _terminal_changed(world: World, pick: int) -> None:
    run = world.runs[pick % len(world.runs)]
    world.extra_audit.append(
        AuditRow(0, "runs", "update", run.run_id, {"status": "completed"},
                 {"status": "failed"}, WALL0 + world.end_time)
    )  # fmt: skip


def _wrong_stop_reason(world: World, pick: int) -> None:
    world.runs[pick % len(world.runs)].db_stop_reason = "max_iterations"


def _unknown_cancel(world: World, pick: int) -> None:
    cancelled = [r for r in world.runs if r.cancel is not None]
    if cancelled:
        cancel = cancelled[pick % len(cancelled)].cancel
        assert cancel is not None
        cancel.classification = "unknown"


def _slow_reap(world: World, pick: int) -> None:
    p = world.params
    for replica, killed_at in world.kills.items():
        late = killed_at + p.reap_bound_s + p.reap_margin_s + 5.0 + pick % 7
        world.reaps[replica] = late
        for run in world.runs:
            if run.fate == "killed" and run.replica == replica:
                run.db_end = run.hold_end = late
    if world.reaps:
        world.snapshot_times[-1] = max(world.snapshot_times[-1], max(world.reaps.values()) + 5)


def _slow_ack(world: World, pick: int) -> None:
    cancelled = [r for r in world.runs if r.cancel is not None]
    if cancelled:
        cancel = cancelled[pick % len(cancelled)].cancel
        assert cancel is not None
        cancel.end = cancel.start + world.params.cancel_ack_timeout_s + 2.0


VIOLATIONS = {
    "slow_reap": _slow_reap,
    "slow_ack": _slow_ack,
    "zombie": _zombie,
    "quota_leak": _quota_leak,
    "lost": _lost,
    "phantom": _phantom,
    "terminal_changed": _terminal_changed,
    "wrong_stop_reason": _wrong_stop_reason,
    "unknown_cancel": _unknown_cancel,
}


@st.composite
def histories(draw: st.DrawFn) -> History:
    """A synthetic scenario, some violations injected, then a few records appended the
    way a messy driver might: repeated completions, a completion ahead of its invoke,
    live probes, done events and circuit outputs."""
    world = plan_world(
        draw(st.integers(min_value=6, max_value=40)),
        seed=draw(st.integers(min_value=0, max_value=2**32 - 1)),
        replicas=draw(st.integers(min_value=2, max_value=4)),
        kill=draw(st.booleans()),
        cancel_share=draw(st.floats(min_value=0.0, max_value=0.4)),
        cut_share=draw(st.floats(min_value=0.0, max_value=0.3)),
        concurrency=draw(st.floats(min_value=2.0, max_value=30.0)),
        ensure_fates=draw(st.booleans()),
    )
    world.include_audit = draw(st.booleans())
    for name in draw(st.lists(st.sampled_from(sorted(VIOLATIONS)), max_size=3)):
        VIOLATIONS[name](world, draw(st.integers(0, 1000)))
    history = render(world)
    invokes = [r for r in history.records if r.type == "invoke"]
    for _ in range(draw(st.integers(0, 4))):
        inv = invokes[draw(st.integers(0, len(invokes) - 1))]
        outcome = draw(st.sampled_from(["ok", "fail", "info"]))
        history.complete(inv, outcome, run_id=f"r_{draw(st.integers(0, 50)):x}", end="done")
    if draw(st.booleans()):
        ahead = Record(len(history) + 1, "invoke", 0.0, 0.0, "start_run", key=f"{PREFIX}-late")
        history.complete(ahead, "ok", run_id="r_late", stop_reason="end_turn")
        history.invoke("start_run", "w9", f"{PREFIX}-late", user_id=f"{PREFIX}-u0")
    for run in world.runs[: draw(st.integers(0, 3))]:
        history.note("live_probe", key=run.agent_id, run_id=run.run_id, replica_id=run.replica,
                     live=draw(st.booleans()), status="running")  # fmt: skip
    if draw(st.booleans()):
        history.note("done_events", run_ids=[r.run_id for r in world.runs[::2]])
    if draw(st.booleans()):
        history.note("circuit_outputs", key="c1", user_id=None, outputs={"c1-research": "x"})
    return history


@CHECKS
@given(history=histories(), part_size=st.sampled_from([1, 4, 64, 5000]), override=st.booleans())
def test_streamed_and_in_memory_checkers_return_identical_verdicts(
    history: History, part_size: int, override: bool, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = _write(history, tmp_path_factory.mktemp("h") / "h.jsonl", part_size)
    # an override with tighter bounds: a small evidence cap, and a load share every
    # history breaches (load_spread fails too, with its evidence)
    params = (
        replace(CheckParams(), test_prefix=PREFIX, evidence_limit=3, max_replica_share=0.2)
        if override
        else None
    )
    _assert_same(history, path, params)


def test_the_history_loads_back_whole_from_split_lines() -> None:
    world = plan_world(20, seed=2)
    history = render(world)
    buf = io.StringIO()
    buf.write(json.dumps(history.header()) + "\n")
    write_records(buf, history.records, part_size=2)
    assert History.load(buf.getvalue().splitlines()).records == history.records
