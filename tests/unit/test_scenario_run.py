"""ScenarioRun against fake ports: what it records, when it converges, what the checkers see."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import pytest

from chaos.checks.params import CheckParams
from chaos.record.history import History
from chaos.record.vocabulary import (
    NOTE_AUDIT,
    NOTE_CONVERGE,
    NOTE_DONE_EVENTS,
    NOTE_LIVE_PROBE,
    NOTE_PARAMS,
    NOTE_SAMPLE_ERROR,
    AuditRow,
    QuotaRow,
    ReplicaRow,
    RunRow,
    Snapshot,
)
from chaos.scenario import OwnerAnswer, ScenarioRun
from chaos.sut.base import RunRequest
from chaos.verdict import Status
from chaos.wait import eventually
from chaos.workload.driver import Driver
from chaos.workload.scripted import Script, ScriptedRunClient

PREFIX = "t1"
PARAMS = CheckParams(test_prefix=PREFIX, replica_ids=("r1", "r2"), per_user_cap=4)


def _running(agent: str, owner: str = "r1", user: str = "t1-u0") -> RunRow:
    now = time.time()
    return RunRow(f"r_{agent}", agent, user, owner, "running", None, None, now - 1, None, now)


def _ended(row: RunRow, status: str, stop_reason: str | None, error: str | None = None) -> RunRow:
    return replace(
        row, status=status, stop_reason=stop_reason, error=error, completed_at=time.time()
    )


@dataclass
class FakePorts:
    """A scripted world: rows, replicas, quotas, owners' answers; ``evolve`` changes it."""

    runs: dict[str, RunRow] = field(default_factory=dict)
    replicas: list[str] = field(default_factory=lambda: ["r1", "r2"])
    quotas: dict[str, int] = field(default_factory=dict)
    audit: list[AuditRow] = field(default_factory=list)
    done: set[str] = field(default_factory=set)
    live: dict[str, OwnerAnswer] = field(default_factory=dict)
    evolve: Callable[[FakePorts, int], None] | None = None
    fail_snapshots: bool = False
    served: int = 0
    asked: list[tuple[str, str]] = field(default_factory=list)

    async def snapshot(self) -> Snapshot:
        if self.fail_snapshots:
            raise ConnectionError("database gone")
        self.served += 1
        if self.evolve is not None:
            self.evolve(self, self.served)
        return Snapshot(
            mono=time.monotonic(),
            wall=time.time(),
            runs=tuple(self.runs.values()),
            replicas=tuple(ReplicaRow(r, 0.0, time.time()) for r in self.replicas),
            quotas=tuple(QuotaRow(u, n) for u, n in self.quotas.items()),
        )

    async def audit_after(self, seq: int) -> Sequence[AuditRow]:
        return [r for r in self.audit if r.seq > seq]

    async def done_run_ids(self, run_ids: Sequence[str]) -> set[str]:
        return {r for r in run_ids if r in self.done}

    async def ask_owner(self, replica_id: str, agent_id: str) -> OwnerAnswer:
        self.asked.append((replica_id, agent_id))
        return self.live.get(agent_id, OwnerAnswer(live=False, error="connection refused"))


def _run(history: History, ports: FakePorts, **kw: float) -> ScenarioRun:
    kw.setdefault("sample_interval_s", 0.01)
    kw.setdefault("probe_interval_s", 0.01)
    kw.setdefault("lag_interval_s", 0.05)
    return ScenarioRun(history, PARAMS, ports, **kw)  # type: ignore[arg-type]


def _notes(history: History, op: str) -> list[dict[str, object]]:
    return [r.data for r in history.records if r.type == "note" and r.op == op]


async def test_entry_records_params_and_samples_in_the_background() -> None:
    history = History()
    ports = FakePorts()
    async with _run(history, ports) as run:
        await eventually(lambda: _async(run.samples_taken >= 3), what="three samples", timeout=5)
    assert history.records[0].op == NOTE_PARAMS
    assert CheckParams.from_dict(history.records[0].data) == PARAMS
    count = len(history.snapshots())
    assert count >= 3
    assert len(history.snapshots()) == count, "the sampler stopped at exit"


async def _async(value: bool) -> bool:
    return value


async def test_sampler_is_bounded_and_notes_errors() -> None:
    history = History()
    async with _run(history, FakePorts(), max_samples=2) as run:
        await eventually(lambda: _async(run.samples_taken == 2), what="two samples", timeout=5)
    assert len(history.snapshots()) == 2
    history = History()
    async with _run(history, FakePorts(fail_snapshots=True)) as run:
        await eventually(lambda: _async(run.sample_errors >= 25), what="failed samples", timeout=5)
    assert len(_notes(history, NOTE_SAMPLE_ERROR)) == 20  # capped


async def test_converge_waits_for_the_reap_then_records_the_end_state() -> None:
    victim = _running("t1-a0", owner="r9")  # r9 has no replicas row: killed

    def reap(world: FakePorts, served: int) -> None:
        if served == 4:
            world.runs[victim.run_id] = _ended(
                victim, "failed", "replica_died", "owner replica died"
            )
            world.quotas["t1-u0"] = 0
            world.audit.append(AuditRow(2, "runs", "update", victim.run_id, {}, {}, time.time()))

    ports = FakePorts(
        runs={victim.run_id: victim},
        quotas={"t1-u0": 1},
        audit=[AuditRow(1, "replicas", "update", "r1", {}, {}, 0.0)],  # before the scenario
        evolve=reap,
    )
    history = History()
    async with _run(history, ports) as run:
        result = await run.converge(timeout=5)
    assert result.converged and result.unsettled == ()
    assert result.final.runs[0].status == "failed"
    last_snapshot = history.snapshots()[-1]
    assert last_snapshot.data["rows"][0]["status"] == "failed", "the final snapshot is the last"
    after = [r for r in history.records if r.index > last_snapshot.index]
    assert [r.op for r in after] == [NOTE_DONE_EVENTS, NOTE_AUDIT, NOTE_CONVERGE]
    audit_rows = next(r.data for r in history.records if r.op == NOTE_AUDIT)["rows"]
    assert [r["seq"] for r in audit_rows] == [2], "only rows written since entry"
    assert ports.asked == [], "a dead owner is not asked"


async def test_not_converging_is_evidence_for_the_checkers_not_an_error() -> None:
    zombie = _running("t1-a0", owner="r9")
    ports = FakePorts(runs={zombie.run_id: zombie}, quotas={"t1-u0": 1})
    history = History()
    async with _run(history, ports) as run:
        result = await run.converge(timeout=0.2)
    assert not result.converged
    assert any("no replicas row" in why for why in result.unsettled)
    probes = [r for r in history.records if r.op == NOTE_LIVE_PROBE]
    assert len(probes) == 1 and probes[0].data["live"] is False
    assert probes[0].mono >= history.snapshots()[-1].mono
    verdicts = {v.invariant: v for v in run.verdicts()}
    assert verdicts["no_zombies"].status is Status.FAIL
    assert verdicts["no_quota_leaks"].status is Status.FAIL
    assert _notes(history, NOTE_CONVERGE)[0]["converged"] is False


async def test_a_run_live_on_its_owner_is_settled_and_probed_after_the_final_snapshot() -> None:
    row = _running("t1-a0", owner="r1")
    ports = FakePorts(
        runs={row.run_id: row},
        quotas={"t1-u0": 1},
        live={"t1-a0": OwnerAnswer(live=True, run_id=row.run_id, status="running")},
    )
    history = History()
    async with _run(history, ports) as run:
        result = await run.converge(timeout=5)
    assert result.converged
    (probe,) = [r for r in history.records if r.op == NOTE_LIVE_PROBE]
    assert probe.data["live"] is True and probe.data["replica_id"] == "r1"
    assert {v.invariant: v for v in run.verdicts()}["no_zombies"].status is Status.PASS


async def test_an_owner_serving_another_run_under_the_agent_id_is_not_live() -> None:
    row = _running("t1-a0", owner="r1")
    ports = FakePorts(
        runs={row.run_id: row}, live={"t1-a0": OwnerAnswer(live=True, run_id="r_other")}
    )
    history = History()
    async with _run(history, ports) as run:
        result = await run.converge(timeout=0.2)
    assert not result.converged
    (probe,) = [r for r in history.records if r.op == NOTE_LIVE_PROBE]
    assert probe.data["live"] is False


async def test_misuse_is_refused() -> None:
    history = History()
    async with _run(history, FakePorts()) as run:
        with pytest.raises(RuntimeError, match="converge"):
            run.verdicts()
        await run.converge(timeout=1)
        with pytest.raises(RuntimeError):
            await run.converge()
        with pytest.raises(RuntimeError):
            await run.sample()
        with pytest.raises(KeyError):
            run.verdicts(allow_vacuous=["no_such_invariant"])


async def test_wait_for_records_the_snapshot_that_matched() -> None:
    row = _running("t1-a0")

    def start(world: FakePorts, served: int) -> None:
        if served == 3:
            world.runs[row.run_id] = row

    history = History()
    ports = FakePorts(evolve=start)
    async with _run(history, ports, sample_interval_s=60) as run:
        snap = await run.wait_for(lambda s: s.runs, what="a run", timeout=5, interval=0.01)
    assert snap.runs == (row,)
    # The unrecorded polls that did not match left no trace; the match is the last snapshot.
    with_row = [r for r in history.snapshots() if r.data["rows"]]
    assert len(with_row) == 1 and with_row[0] is history.snapshots()[-1]
    assert ports.served > len(history.snapshots())


async def test_the_whole_frame_with_the_driver_passes_a_clean_scenario() -> None:
    """Runs through the real driver (scripted client); the database agrees: every verdict
    that has evidence passes, and the ones with none are vacuous until allowed."""
    history = History()
    ports = FakePorts()
    client = ScriptedRunClient(
        lambda req, attempt: Script.done(
            f"r_{req.agent_id}", replica_id="r1" if req.agent_id[-1] in "02" else "r2"
        )
    )
    driver = Driver(client, history, via="lb")
    async with _run(history, ports) as run:
        for n in range(4):
            agent = f"{PREFIX}-a{n}"
            started = time.time()
            result = await driver.run(RunRequest("chaos", agent, "hi", user_id=f"{PREFIX}-u0"))
            assert result.completed
            rid = f"r_{agent}"
            ports.runs[rid] = RunRow(
                rid,
                agent,
                f"{PREFIX}-u0",
                result.replica_id,
                "completed",
                "end_turn",
                None,
                started,
                time.time(),
                time.time(),
            )
            ports.done.add(rid)
        await run.converge(timeout=5)
    verdicts = {v.invariant: v for v in run.verdicts()}
    for name in (
        "no_zombies",
        "nothing_lost",
        "one_truth",
        "stop_reason_fits_cause",
        "no_silent_regressions",
        "terminal_is_final",
        "load_spread",
    ):
        assert verdicts[name].status is Status.PASS, verdicts[name]
    # No kill, no cancel, quota never sampled non-zero: nothing to judge for these.
    unjudged = ("bounded_recovery", "cancel_classification", "no_quota_leaks")
    assert all(verdicts[n].status is Status.VACUOUS and not verdicts[n].ok for n in unjudged)
    allowed = run.verdicts(allow_vacuous=unjudged)
    assert all(v.ok for v in allowed)


async def test_the_whole_frame_fails_a_run_the_database_lost() -> None:
    history = History()
    ports = FakePorts()
    driver = Driver(ScriptedRunClient(lambda req, attempt: Script.done("r_x")), history)
    async with _run(history, ports) as run:
        await driver.run(RunRequest("chaos", f"{PREFIX}-a0", "hi", user_id=f"{PREFIX}-u0"))
        other = _ended(_running(f"{PREFIX}-a1"), "completed", "end_turn")
        ports.runs[other.run_id] = other  # the database holds a run the driver never saw
        await run.converge(timeout=5)
    verdicts = {v.invariant: v for v in run.verdicts()}
    assert verdicts["nothing_lost"].status is Status.FAIL
