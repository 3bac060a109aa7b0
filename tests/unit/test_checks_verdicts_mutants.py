"""Every checker's whole verdict (status, summary, evidence, fault windows) on fixed histories.

A verdict is what a reader of a failure gets: its summary and evidence (offending rows,
counts, history excerpts, the fault windows) must say the right thing, not only its
status.  These tests pin the complete ``Verdict.to_dict()`` of all ten checkers on eight
hand-written histories (a calm one, one breaking every invariant, one with too little
evidence, one past the evidence limit, one without a snapshot, one judged from the audit
log, one of cancels to a healthy owner, one of changed terminal rows) against
``data/checks_verdicts.json``.  They kill
the mutants of message text, evidence keys, counts and caps that a status-only test
lets through (docs/mutation/checks.md).

After an intended change of a verdict's wording or evidence, rewrite the file with
``LOOMCHAOS_WRITE_VERDICTS=1 pytest tests/unit/test_checks_verdicts_mutants.py`` and
review its diff like code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from chaos.checks import run_checks
from chaos.record.vocabulary import AuditRow, ReplicaRow
from chaos.testing.bench import HistoryBench

GOLDEN = Path(__file__).parent / "data" / "checks_verdicts.json"

GOOD_OUTPUTS = {
    "c1-research": "notes",
    "c1-research-edited": "better notes",
    "c1-research-scored": '{"score": 0.8, "rationale": "ok"}',
}


def _calm() -> HistoryBench:
    """Everything within bounds: a reaped kill, acked cancels, a live running run, a
    circuit with its outputs, quota samples inside their bounds."""
    s = HistoryBench()
    a = s.run("t1-a", start=0.0, end=2.0, user_id="t1-u1")
    b = s.run("t1-b", start=0.0, end=5.0, outcome="info", error="eof", replica_id="r2")
    s.fault("kill", "r2", start=5.0, end=6.0)
    s.audit(
        [
            AuditRow(1, "replicas", "delete", "r2", {"replica_id": "r2"}, None, s.wall(66.0)),
            AuditRow(
                2,
                "runs",
                "update",
                b or "",
                {"status": "running", "completed_at": None},
                {"status": "failed", "completed_at": s.wall(65.0)},
                s.wall(65.0),
            ),
        ]
    )
    c = s.run("t1-c", start=70.0, end=73.0, events=["session", "agent", "error"], stop_reason=None)
    s.cancel("t1-c", start=71.0, end=71.4, via="r2")
    s.cancel(
        "t1-c", start=72.0, end=72.1, via="r1", classification="already_terminal", cancelled=False
    )
    rows = [s.row(f"t1-{role}-c1", None, completed=80.0) for role in ("x", "y", "z")]
    for row in rows:
        s.run(row.agent_id, start=75.0, end=80.0, circuit="c1", run_id=row.run_id, replica_id="r3")
    s.run("t1-long", start=80.0, end=None, run_id="r_long", user_id="t1-u1")
    long_row = s.row(
        "t1-long", "r_long", status="running", replica_id="r3", user_id="t1-u1", started=80.0
    )
    s.snapshot(1.0, [s.row("t1-a", a, user_id="t1-u1", status="running")], quotas={"t1-u1": 1})
    final = [
        s.row("t1-a", a, user_id="t1-u1", completed=2.0),
        s.row(
            "t1-b",
            b,
            replica_id="r2",
            status="failed",
            stop_reason="replica_died",
            error="owner replica died",
            completed=65.0,
        ),
        s.row("t1-c", c, status="cancelled", stop_reason="chaos", completed=71.2),
        *[replace(r, replica_id="r3", started_at=s.wall(75.0)) for r in rows],
        long_row,
    ]
    s.snapshot(90.0, final, replicas=("r1", "r3"), quotas={"t1-u1": 1})
    s.live_probe(90.5, long_row, live=True)
    s.circuit_outputs("c1", GOOD_OUTPUTS)
    s.snapshot(
        91.0,
        final,
        replicas=("r1", ReplicaRow("r2", s.wall(70.0), s.wall(91.0)), "r3"),
        quotas={"t1-u1": 1},
    )
    s.live_probe(91.5, long_row, live=True)
    return s


def _broken() -> HistoryBench:
    """One or more violations of every invariant."""
    s = HistoryBench()
    s.params = replace(
        s.params,
        per_user_cap=1,
        max_replica_share=0.5,
        min_cross_replica_cancel_share=0.9,
        min_cross_replica_circuit_share=0.9,
        ack_p99_bound_s=0.1,
        min_p99_samples=2,
    )
    a = s.run("t1-a", start=0.0, end=2.0, user_id="t1-u1")
    b = s.run("t1-b", start=0.0, end=5.0, outcome="info", error="eof", user_id="t1-u1")
    s.fault("kill", "r1", start=5.0)
    s.fault("pause", "r2", start=6.0, end=7.0)
    s.fault("restart", "postgres", start=8.0, end=9.0)
    s.run("t1-lost", start=1.0, end=3.0, replica_id="r2")
    z = s.run("t1-z", start=1.0, end=None, run_id="r_z")
    for i in range(4):  # slow acks to a healthy owner, and an unreachable one
        s.cancel("t1-a", start=100.0 + i, end=100.5 + i * 2, via="r1")
    s.cancel(
        "t1-a",
        start=110.0,
        end=110.2,
        via="r3",
        classification="owner_unreachable",
        cancelled=False,
    )
    s.cancel("t1-a", start=111.0, end=111.2, via="r3", classification="unknown")
    s.cancel(
        "t1-a", start=112.0, end=112.2, via="r3", classification="acknowledged", cancelled=False
    )
    s.cancel("t1-a", start=113.0, end=113.2, via="r3", classification="weird")
    s.cancel("t1-a", start=114.0, end=114.2, via="r3", classification=None)
    s.cancel("t1-a", start=115.0, end=115.2, via="r3", outcome="fail", classification="unknown")
    s.cancel("t1-a", start=116.0, end=None, via="r3")
    for role in ("x", "y", "z"):
        s.run(f"t1-{role}-c1", start=20.0, end=25.0, circuit="c1", run_id=f"r_{role}c1")
        s.run(f"t1-{role}-c2", start=20.0, end=25.0, circuit="c2", run_id=f"r_{role}c2")
    s.circuit_outputs("c2", {**GOOD_OUTPUTS, "c2-research": "", "c2-research-scored": "{}"})
    s.snapshot(
        3.0,
        [s.row("t1-a", a, user_id="t1-u1", status="cancelled", stop_reason="x", completed=2.0)],
        quotas={"t1-u1": 3},
    )
    final = [
        s.row("t1-a", a, user_id="t1-u1", status="failed", error="boom", completed=2.0),
        s.row("t1-b", b, user_id="t1-u1", status="running"),
        s.row("t1-ghost", "r_ghost", replica_id="r2", completed=4.0),
        s.row("t1-z", z, status="running", replica_id="r3"),
        s.row(
            "t1-bad",
            "r_bad",
            status="failed",
            stop_reason="replica_died",
            error="nope",
            replica_id="r3",
            completed=4.0,
        ),
        *[s.row(f"t1-{r}-c1", f"r_{r}c1", completed=25.0) for r in ("x", "y", "z")],
        *[s.row(f"t1-{r}-c2", f"r_{r}c2", completed=25.0) for r in ("x", "y", "z")],
    ]
    s.snapshot(200.0, final, replicas=("r1", "r2"), quotas={"t1-u1": 2})
    s.live_probe(200.5, final[3], live=False, error="not here")
    s.done_events(["r_xc1"])
    return s


def _empty() -> HistoryBench:
    """Too little evidence for any checker: one refused run, one unanswered cancel."""
    s = HistoryBench()
    s.run("t1-a", start=0.0, end=0.1, outcome="fail", status=429, code="backpressure")
    s.cancel("t1-a", start=0.2, end=None)
    s.snapshot(1.0, [s.row("zz-other", "r_o", completed=0.5)], quotas={"zz-u": 3})
    return s


def _crowded() -> HistoryBench:
    """Many offenders of one kind, past the evidence limit, and a long history excerpt."""
    s = HistoryBench()
    s.params = replace(s.params, evidence_limit=2)
    rows = []
    for i in range(4):
        rid = s.run(f"t1-{i}", start=float(i), end=float(i) + 1.0, outcome="info", error="eof")
        rows.append(s.row(f"t1-{i}", rid, status="running", replica_id="r2"))
    for i in range(14):
        s.cancel("t1-0", start=10.0 + i, end=10.1 + i, via="r3", classification="unknown")
    for i in range(3):  # completed without done, circuits without outputs, lost runs
        done = s.run(f"t1-d{i}", start=1.0, end=2.0, events=["session", "agent"], stop_reason=None)
        rows.append(s.row(f"t1-d{i}", done, completed=2.0))
        for role in ("x", "y", "z"):
            cr = s.run(f"t1-{role}-c{i}", start=1.0, end=2.0, circuit=f"c{i}")
            rows.append(s.row(f"t1-{role}-c{i}", cr, completed=2.0))
        s.run(f"t1-l{i}", start=1.0, end=2.0)
    s.run("t1-n", start=1.0, end=1.5, outcome="fail", status=429, code="backpressure")
    for i in range(6):
        s.cancel("t1-d0", start=3.0 + i, end=3.1 + i, via="r1")
        s.circuit_outputs("c1", {})
    s.snapshot(5.12345, [], quotas={"t1-0": 1, "t1-q1": 9, "t1-q2": 9})
    s.snapshot(6.0, [], quotas={"t1-q1": 9})
    s.snapshot(20.0, rows, replicas=("r1",), quotas={"t1-0": 1, "t1-q1": 1, "t1-q2": 2})
    return s


def _bare() -> HistoryBench:
    """Operations and faults but no database snapshot: what can be judged without one."""
    s = HistoryBench()
    s.run("t1-a", start=0.0, end=2.0)
    s.cancel("t1-a", start=1.0, end=1.2, via="r2")
    s.fault("kill", "r3", start=3.0)
    return s


def _audited() -> HistoryBench:
    """Audit-log evidence: changed terminal rows, late reaps and row deletions, a reap of
    a live owner, and a row that fits none of a long list of causes."""
    s = HistoryBench()
    s.params = replace(
        s.params,
        provider_errors_injected=True,
        ack_p99_bound_s=1.0,
        min_p99_samples=1,
        evidence_limit=3,
    )
    a = s.run("t1-a", start=0.0, end=5.12345, outcome="info", error="eof", replica_id="r2")
    b = s.run("t1-b", start=0.0, end=5.0, outcome="info", error="eof", replica_id="r2")
    s.fault("kill", "r2", start=5.0)
    s.fault("stop", "r1", start=6.0, end=7.0)
    s.fault("link:reset_cut", "lb-r1", start=6.0, end=7.0, link="lb:r1", replica="r1")
    s.fault("link:reset_cut", "pg-r1", start=6.0, end=7.0, link="pg:r1", replica="r1")
    s.fault("restart", "postgres", start=8.0, end=9.0)
    s.audit(
        [
            AuditRow(1, "replicas", "delete", "r2", {"replica_id": "r2"}, None, s.wall(95.4321)),
            AuditRow(
                2,
                "runs",
                "update",
                a or "",
                {"status": "running", "completed_at": None},
                {"status": "failed", "completed_at": s.wall(90.0)},
                s.wall(90.98765),
            ),
            AuditRow(
                3,
                "runs",
                "update",
                a or "",
                {"status": "failed", "stop_reason": "replica_died", "completed_at": 1.0},
                {"status": "cancelled", "stop_reason": "x", "completed_at": 1.0},
                s.wall(91.0),
            ),
            AuditRow(
                4,
                "runs",
                "insert",
                b or "",
                None,
                {"status": "running", "completed_at": 2.0},
                s.wall(1.0),
            ),
        ]
    )
    c = s.run("t1-c", start=10.0, end=12.0, cut=True, replica_id="r1")
    s.run("t1-c", start=10.5, end=10.6, outcome="fail", status=409, code="agent_id_in_use")
    s.cancel("t1-c", start=11.0, end=11.1, via="r3", classification="owner_dead")
    s.cancel(
        "t1-c",
        start=11.2,
        end=11.3,
        via="r3",
        classification="running_elsewhere",
        cancelled=False,
        reason=None,
    )
    d = s.run("t1-d", start=20.0, end=25.0, outcome="info", error="eof", replica_id="r3")
    s.fault("pause", "r3", start=30.0, end=31.0)
    h = s.run("t1-h", start=150.0, end=190.0, replica_id="r1")
    for i in range(4):  # slow acks and an unreachable answer from a healthy owner
        s.cancel("t1-h", start=160.0 + i, end=163.12345 + i * 1.1, via="r1")
    s.cancel(
        "t1-h",
        start=170.0,
        end=170.2,
        via="r1",
        classification="owner_unreachable",
        cancelled=False,
    )
    e = s.run("t1-e", start=20.0, end=25.0, outcome="info", error="eof", replica_id="r1")
    final = [
        s.row(
            "t1-a",
            a,
            replica_id="r2",
            status="failed",
            stop_reason="replica_died",
            error="owner replica died",
            completed=90.0,
        ),
        s.row("t1-b", b, replica_id="r2", status="running", completed=2.0),
        s.row(
            "t1-c",
            c,
            replica_id="r1",
            status="cancelled",
            stop_reason="zzz",
            started=5.0,
            completed=300.0,
            heartbeat=6.0,
        ),
        s.row(
            "t1-d",
            d,
            replica_id="r3",
            status="failed",
            stop_reason="owner_replica_dead",
            error="owner replica heartbeat stale",
            started=20.0,
            completed=80.0,
        ),
        s.row(
            "t1-e",
            e,
            replica_id="r1",
            status="failed",
            stop_reason="replica_died",
            error="owner replica died",
            started=20.0,
            completed=80.0,
        ),
        s.row("t1-h", h, replica_id="r1", started=150.0, completed=190.0),
    ]
    s.snapshot(200.0, final, replicas=("r1", "r3"))
    return s


def _acks() -> HistoryBench:
    """Cancels to a healthy owner (slow, unreachable, a p99 above its bound), a lost run
    after a refused one, client/database mismatches with long histories."""
    s = HistoryBench()
    s.params = replace(s.params, ack_p99_bound_s=1.0, min_p99_samples=1)
    s.run("t1-n", start=1.0, end=1.5, outcome="fail", status=429, code="backpressure")
    lost = s.run("t1-l", start=2.0, end=3.0, outcome="info", error="eof")
    h = s.run("t1-h", start=150.0, end=190.0)
    e = s.run("t1-e", start=150.0, end=190.0, events=["session", "agent", "error"], error="x")
    for agent in ("t1-l", "t1-h", "t1-e"):
        for i in range(4):
            s.cancel(agent, start=160.0 + i, end=163.12345 + i * 1.1, via="r1")
    s.cancel(
        "t1-h",
        start=170.0,
        end=170.23456,
        via="r2",
        classification="owner_unreachable",
        cancelled=False,
    )
    rows = [
        s.row("t1-h", h, status="failed", error="boom", completed=190.0),
        s.row("t1-e", e, completed=190.0),
    ]
    s.snapshot(200.0, rows)
    assert lost is not None
    return s


def _changed() -> HistoryBench:
    """Terminal rows that change between snapshots, past the evidence limit, behind a row
    of another test."""
    s = HistoryBench()
    s.params = replace(s.params, evidence_limit=2)
    rows = [s.row("zz-other", "r_z", completed=1.0)]
    for i in range(7):
        rid = s.run(f"t1-{i}", start=0.0, end=1.0)
        rows.append(s.row(f"t1-{i}", rid, completed=1.0))
    s.snapshot(2.0, rows)
    s.snapshot(3.0, [replace(r, status="failed", error="x", stop_reason=None) for r in rows])
    return s


SCENARIOS: dict[str, Callable[[], HistoryBench]] = {
    "acks": _acks,
    "changed": _changed,
    "bare": _bare,
    "audited": _audited,
    "calm": _calm,
    "broken": _broken,
    "empty": _empty,
    "crowded": _crowded,
}


def _verdicts(name: str) -> list[dict[str, Any]]:
    bench = SCENARIOS[name]()
    # Through JSON, as a report stores them: tuples become lists, keys strings.
    raw = [v.to_dict() for v in run_checks(bench.context())]
    loaded: list[dict[str, Any]] = json.loads(json.dumps(raw, default=str, sort_keys=True))
    return loaded


def test_the_golden_file_covers_every_scenario() -> None:
    if os.environ.get("LOOMCHAOS_WRITE_VERDICTS"):
        GOLDEN.write_text(
            json.dumps({n: _verdicts(n) for n in SCENARIOS}, indent=1, sort_keys=True) + "\n",
            encoding="utf-8",
        )
    assert sorted(json.loads(GOLDEN.read_text(encoding="utf-8"))) == sorted(SCENARIOS)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_verdict_matches_the_golden_file(name: str) -> None:
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))[name]
    got = _verdicts(name)
    for want, have in zip(expected, got, strict=True):
        assert have == want, f"{name}: {want['invariant']} changed"
