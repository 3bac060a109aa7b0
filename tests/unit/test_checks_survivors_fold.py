"""The fold's survivors of the typed-row and streamed-path mutation run: how a run's
stream frames are read (frames the driver could not make whole, times written as
integers) and the audit images a streamed check shares.
"""

from __future__ import annotations

from pathlib import Path

from chaos.checks.facts import gather
from chaos.checks.streamed import context_from_path
from chaos.record.history import History
from chaos.record.jsonl import write_records
from chaos.record.readers import record_audit
from chaos.record.vocabulary import AuditRow
from chaos.testing.bench import WALL0


def _history() -> History:
    return History(seed=1, clock=lambda: 5.0, wall_clock=lambda: WALL0 + 5.0)


def test_frames_without_a_shape_or_a_time_are_skipped_and_the_rest_still_count() -> None:
    """The first frame's time is when the target admitted the run (no_quota_leaks' lower
    bound) and a ``done`` frame is the run's done (one_truth): a frame that is no object,
    or has no time, is passed over, not the end of the walk; an integer time is a time."""
    h = _history()
    inv = h.invoke("start_run", "w0", "t1-a", user_id="t1-u", agent="chaos", via="lb")
    frames: list[object] = [
        {"type": "session", "mono": 6.5},
        "not a frame",
        {"type": "agent"},  # no time
        {"type": "agent", "mono": 6},  # an integer time, the earliest
        {"type": "agent", "mono": "later"},  # a time that is no number
        {"type": "done", "mono": 7.0},
    ]
    h.complete(inv, "ok", run_id="r_1", replica_id="r1", events=frames)
    (run,) = gather(h.records).client_runs
    assert run.admitted == 6.0
    assert run.got_done and not run.got_error


def test_a_run_whose_frames_are_all_unreadable_was_never_seen_admitted() -> None:
    h = _history()
    inv = h.invoke("start_run", "w0", "t1-a", user_id="t1-u", agent="chaos", via="lb")
    h.complete(inv, "ok", run_id="r_1", replica_id="r1", events=["x", {"type": "agent"}])
    (run,) = gather(h.records).client_runs
    assert run.admitted is None and not run.got_done


def _audit(seq: int, run_id: str) -> AuditRow:
    running = {"status": "running", "error": None}
    return AuditRow(seq, "runs", "update", run_id, running, {"status": "cancelled"}, 9.0)


def test_a_streamed_check_shares_equal_audit_images_read_typed(tmp_path: Path) -> None:
    """A soak's audit log repeats a few images millions of times: the streamed check reads
    audit part lines typed and must still keep each equal image once."""
    h = _history()
    record_audit(h, [_audit(1, "r_1"), _audit(2, "r_2"), _audit(3, "r_3")])
    path = tmp_path / "history.jsonl"
    with path.open("w", encoding="utf-8") as fp:
        write_records(fp, h.records, 1)  # one audit row per part line
    one, two, three = context_from_path(path).audit
    assert [r.key for r in (one, two, three)] == ["r_1", "r_2", "r_3"]
    assert one.old == {"status": "running", "error": None}
    assert one.old is two.old is three.old
