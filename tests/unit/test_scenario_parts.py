"""chaos.scenario's pure parts: params, specs, convergence, cancels, replica probes, evidence."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from chaos.cluster.spec import ClusterSpec
from chaos.faults.replica import (
    answers_healthz,
    listed_by_survivors,
    reap_wait_s,
    survivors_list,
)
from chaos.record.history import FaultWindow, History
from chaos.record.vocabulary import AuditRow, QuotaRow, ReplicaRow, RunRow, Snapshot
from chaos.scenario import (
    OwnerAnswer,
    ProbeInconclusive,
    StormCanceller,
    convergence_budget,
    non_owner,
    recorded_cancel,
    unsettled,
)
from chaos.scenario.cancels import newest_running
from chaos.scenario.evidence import only_window, owned_running, replica_row_deleted_after
from chaos.sut.base import CancelResult, Health
from chaos.sut.loomcycle.params import params_for
from chaos.sut.loomcycle.settings import OUTAGE_TIMERS, MockProvider, loomcycle_spec, settings_of
from chaos.sut.loomcycle.specs import CANCEL_SPEC, CRASH_SPEC, SMOKE_SPEC
from chaos.testing.bench import HistoryBench

# -- params and specs ------------------------------------------------------------------------


def test_params_follow_the_spec() -> None:
    spec = loomcycle_spec(timers=OUTAGE_TIMERS, max_runs_per_user=3)
    p = params_for(spec, ("r1", "r2", "r3"), "tabc")
    assert p.per_user_cap == 3
    assert p.replica_stale_s == 120.0 and p.replica_sweep_s == 5.0
    assert p.heartbeat_stale_s == 240.0
    assert p.cancel_ack_timeout_s == 2.0
    assert p.reap_bound_s == settings_of(spec).timers.reap_bound_s
    assert p.replica_ids == ("r1", "r2", "r3") and p.test_prefix == "tabc"
    assert p.provider_errors_injected is False


def test_params_overrides_and_provider_errors() -> None:
    spec = loomcycle_spec(mock=MockProvider(rate_429=0.15))
    p = params_for(spec, ("r1",), "t", ack_p99_bound_s=2.0)
    assert p.ack_p99_bound_s == 2.0
    assert p.provider_errors_injected is True
    with pytest.raises(TypeError):
        params_for(spec, ("r1",), "t", no_such_bound=1)


def test_specs_give_runs_time_to_be_caught_running() -> None:
    # Cancels must land while runs run: run length well above the ack timeout.
    for spec in (SMOKE_SPEC, CANCEL_SPEC, CRASH_SPEC):
        assert spec.replicas == 3 and settings_of(spec).max_runs_per_user > 0
        assert (
            settings_of(spec).mock.latency_ms - settings_of(spec).mock.jitter_ms
            > settings_of(spec).timers.cancel_ack_timeout_ms / 2
        )
    assert (
        settings_of(SMOKE_SPEC).mock.latency_ms
        < settings_of(CANCEL_SPEC).mock.latency_ms
        < settings_of(CRASH_SPEC).mock.latency_ms
    )
    # The heartbeat sweeper must never beat the replica sweeper to a dead replica's runs.
    t = settings_of(CRASH_SPEC).timers
    assert t.heartbeat_stale_ms > t.replica_stale_ms + t.replica_sweep_ms
    assert not CRASH_SPEC.destructive  # a reset revives a killed replica


# -- convergence -----------------------------------------------------------------------------


def _row(run_id: str, status: str = "running", owner: str = "r1", user: str = "t-u0") -> RunRow:
    return RunRow(run_id, f"t-{run_id}", user, owner, status, None, None, 1.0, None)


def _snap(
    runs: tuple[RunRow, ...], replicas: tuple[str, ...] = ("r1", "r2"), **quotas: int
) -> Snapshot:
    return Snapshot(
        mono=1.0,
        wall=1.0,
        runs=runs,
        replicas=tuple(ReplicaRow(r, 0.0, 1.0) for r in replicas),
        quotas=tuple(QuotaRow(u.replace("_", "-"), n) for u, n in quotas.items()),
    )


def test_converged_when_nothing_runs_and_quotas_are_back() -> None:
    snap = _snap((_row("a", "completed"), _row("b", "failed")), t_u0=0)
    assert unsettled(snap, {}) == []


def test_a_live_run_on_a_live_owner_is_settled() -> None:
    snap = _snap((_row("a"),), t_u0=1)
    assert unsettled(snap, {"a": OwnerAnswer(live=True, run_id="a", status="running")}) == []


@pytest.mark.parametrize(
    ("answers", "replicas", "why"),
    [
        ({}, ("r2",), "no replicas row"),
        ({}, ("r1", "r2"), "not asked"),
        ({"a": OwnerAnswer(live=False, error="timeout")}, ("r1",), "not live (timeout)"),
        ({"a": OwnerAnswer(live=True, run_id="zz")}, ("r1",), "serves zz"),
    ],
)
def test_a_running_run_nobody_serves_is_unsettled(
    answers: Mapping[str, OwnerAnswer], replicas: tuple[str, ...], why: str
) -> None:
    reasons = unsettled(_snap((_row("a"),), replicas), answers)
    assert len(reasons) == 1 and why in reasons[0]


def test_a_held_quota_slot_without_a_running_run_is_unsettled() -> None:
    reasons = unsettled(_snap((_row("a", "completed"),), t_u0=1), {})
    assert reasons == ["user t-u0 holds 1 quota slots for 0 running runs"]


def _window(start: float, name: str = "kill") -> FaultWindow:
    return FaultWindow(name, "r1", start, start + 1, start, start + 1, True, True)


def test_convergence_budget_covers_the_reap_bound_after_a_fault() -> None:
    p = params_for(SMOKE_SPEC, ("r1", "r2", "r3"), "t")
    assert convergence_budget([], p, now_mono=100.0, settle_s=30.0) == 30.0
    # Killed 10 s ago: wait out stale 60 + sweep 5 + margin 10 from the kill, then settle.
    assert convergence_budget([_window(90.0)], p, 100.0, 30.0) == pytest.approx(65 + 10 - 10 + 30)
    # Long past the bound: settling is enough.
    assert convergence_budget([_window(0.0)], p, 1_000.0, 30.0) == 30.0


# -- cancels ---------------------------------------------------------------------------------


@dataclass
class FakeCanceller:
    """A RunClient whose cancel answers a fixed result (or raises)."""

    result: CancelResult | Exception
    base_url: str = "fake://"
    calls: list[tuple[str, str | None]] = field(default_factory=list)

    async def cancel(self, agent_id: str, reason: str | None = None) -> CancelResult:
        self.calls.append((agent_id, reason))
        if isinstance(self.result, Exception):
            raise self.result
        return self.result

    def start_run(self, req: Any) -> Any:
        raise NotImplementedError

    async def status(self, agent_id: str) -> Mapping[str, Any] | None:
        return None

    async def health(self) -> Health:
        return Health(True, None, None, None)

    async def aclose(self) -> None:
        return None


ACKED = CancelResult(
    200, {"cancelled": True, "agent_id": "t-a", "reason": "why"}, "acknowledged", 0.05
)


async def test_recorded_cancel_writes_invoke_and_answer() -> None:
    history = History()
    result = await recorded_cancel(history, FakeCanceller(ACKED), "t-a", via="r2", reason="why")
    assert result is ACKED
    inv, done = history.records
    assert (inv.type, inv.op, inv.key, inv.data) == (
        "invoke",
        "cancel",
        "t-a",
        {"via": "r2", "reason": "why"},
    )
    assert done.type == "ok" and done.ref == inv.index
    assert done.data["cancelled"] is True and done.data["classification"] == "acknowledged"
    assert done.data["http_status"] == 200


async def test_recorded_cancel_http_error_is_fail_and_no_answer_is_info() -> None:
    history = History()
    odd = CancelResult(404, {"code": "unknown_agent_id", "outcome": "x"}, "unknown", 0.01)
    await recorded_cancel(history, FakeCanceller(odd), "t-a", via="r1", reason=None)
    assert (
        await recorded_cancel(
            history, FakeCanceller(ConnectionResetError("reset")), "t-b", via="r1", reason=None
        )
        is None
    )
    types = [(r.type, r.key) for r in history.records if r.type != "invoke"]
    assert types == [("fail", "t-a"), ("info", "t-b")]
    assert "ConnectionResetError" in history.records[-1].data["error"]


def test_non_owner_never_picks_the_owner() -> None:
    rng = random.Random(3)
    picks = {non_owner(("r1", "r2", "r3"), "r2", rng) for _ in range(50)}
    assert picks == {"r1", "r3"}
    with pytest.raises(ValueError):
        non_owner(("r1",), "r1", rng)


async def test_storm_canceller_cancels_newest_running_once_through_a_non_owner() -> None:
    old = RunRow("r_old", "t-old", "t-u", "r1", "running", None, None, 10.0, None)
    new = RunRow("r_new", "t-new", "t-u", "r2", "running", None, None, 20.0, None)
    done = RunRow("r_done", "t-done", "t-u", "r3", "completed", "end_turn", None, 30.0, 31.0)
    snap = Snapshot(1.0, 1.0, runs=(old, new, done))

    async def peek() -> Snapshot:
        return snap

    clients = {rid: FakeCanceller(ACKED) for rid in ("r1", "r2", "r3")}
    history = History()
    storm = StormCanceller(history, peek, clients, random.Random(1))
    assert await storm() == "acknowledged"
    assert await storm() == "acknowledged"
    assert await storm() is None  # both running runs already targeted
    sent = [(rid, call) for rid, c in clients.items() for call in c.calls]
    assert {call[0] for _, call in sent} == {"t-new", "t-old"}
    assert all(rid != {"t-new": "r2", "t-old": "r1"}[call[0]] for rid, call in sent)
    assert newest_running(snap, set()) == new


# -- replica probes --------------------------------------------------------------------------


def _health(*ids: str) -> Health:
    return Health(True, None, "v", ids)


def test_listed_by_survivors() -> None:
    assert listed_by_survivors({"r2": _health("r1", "r2"), "r3": _health("r1", "r3")}, "r1")
    assert not listed_by_survivors({"r2": _health("r2", "r3"), "r3": _health("r2", "r3")}, "r1")
    # A survivor that does not answer is ignored; the one that does decides.
    assert not listed_by_survivors({"r2": _health("r2"), "r3": TimeoutError()}, "r1")


@pytest.mark.parametrize(
    "answers",
    [
        {"r2": TimeoutError(), "r3": ConnectionRefusedError()},
        {"r2": Health(True, "r2", "v", None)},  # ok, but could not read its table
        {"r2": _health("r1", "r2"), "r3": _health("r3")},  # one sweep apart
    ],
)
def test_survivor_probe_is_inconclusive_without_agreement(
    answers: Mapping[str, Health | BaseException],
) -> None:
    with pytest.raises(ProbeInconclusive):
        listed_by_survivors(answers, "r1")


@dataclass
class HealthClient:
    answer: Health | None  # None: hang (a frozen replica)
    base_url: str = "fake://"

    async def health(self) -> Health:
        if self.answer is None:
            await asyncio.Event().wait()
        assert self.answer is not None
        return self.answer

    async def aclose(self) -> None:
        return None


@dataclass
class FakeAdapter:
    by_url: dict[str, HealthClient]
    name: str = "fake"
    version: str = "0"

    def client(self, base_url: str) -> Any:
        return self.by_url[base_url]

    def replica_launch(self, spec: Any, replica_id: str, pg_dsn: str) -> Any:
        raise NotImplementedError


@dataclass
class FakeCluster:
    answers: dict[str, Health | None]
    spec: ClusterSpec = SMOKE_SPEC
    pg_dsn: str = "postgres://x"
    lb_url: str = "http://lb"

    @property
    def replica_ids(self) -> tuple[str, ...]:
        return tuple(self.answers)

    @property
    def adapter(self) -> Any:
        return FakeAdapter({f"http://{r}": HealthClient(a) for r, a in self.answers.items()})

    def replica_url(self, replica_id: str) -> str:
        return f"http://{replica_id}"

    async def container(self, node: str) -> Any:
        raise NotImplementedError

    async def refresh_endpoints(self) -> None:
        return None


async def test_survivors_probe_asks_only_the_survivors() -> None:
    # r1's own health would hang: the probe must not ask it.
    cluster = FakeCluster({"r1": None, "r2": _health("r2", "r3"), "r3": _health("r2", "r3")})
    assert await survivors_list(cluster, "r1")() is False
    cluster = FakeCluster({"r1": None, "r2": _health("r1", "r2"), "r3": _health("r1", "r3")})
    assert await survivors_list(cluster, "r1")() is True


async def test_healthz_probe_says_false_for_a_replica_that_hangs() -> None:
    cluster = FakeCluster({"r1": None, "r2": _health("r1", "r2")})
    began = time.monotonic()
    assert await answers_healthz(cluster, "r1", timeout_s=0.2)() is False
    assert time.monotonic() - began < 2.0
    assert await answers_healthz(cluster, "r2")() is True


def test_kill_waits_out_the_reap() -> None:
    p = params_for(CRASH_SPEC, ("r1", "r2", "r3"), "t")
    assert reap_wait_s(p) > p.reap_bound_s + p.reap_margin_s


# -- evidence --------------------------------------------------------------------------------


def test_replica_row_deletion_from_audit_then_snapshots() -> None:
    s = HistoryBench()
    s.fault("stop", "r1", start=100.0, end=120.0)
    s.snapshot(101.0, replicas=("r1", "r2", "r3"))
    s.snapshot(104.0, replicas=("r2", "r3"))
    ctx = s.context()
    since = only_window(s.history, "stop", "r1").start_wall
    assert replica_row_deleted_after(ctx, "r1", since) == pytest.approx(4.0)
    s.audit([AuditRow(1, "replicas", "delete", "r1", {"id": "r1"}, None, s.wall(102.5))])
    assert replica_row_deleted_after(s.context(), "r1", since) == pytest.approx(2.5)
    assert replica_row_deleted_after(s.context(), "r2", since) is None
    with pytest.raises(AssertionError):
        only_window(s.history, "kill", "r1")


def test_owned_running() -> None:
    snap = _snap((_row("a"), _row("b", owner="r2"), _row("c", "completed")))
    assert [r.run_id for r in owned_running(snap, "r1")] == ["a"]


# -- the loomcycle ports' owner probe ----------------------------------------------------------


@dataclass
class StatusClient:
    answer: Mapping[str, Any] | str | None  # "hang" never answers
    base_url: str = "fake://"

    async def status(self, agent_id: str) -> Mapping[str, Any] | None:
        if self.answer == "hang":
            await asyncio.Event().wait()
        assert not isinstance(self.answer, str)
        return self.answer

    async def aclose(self) -> None:
        return None


@dataclass
class StatusCluster(FakeCluster):
    status: Mapping[str, Any] | str | None = None

    @property
    def adapter(self) -> Any:
        client = StatusClient(self.status)

        class _Adapter:
            def client(self, base_url: str) -> StatusClient:
                return client

        return _Adapter()

    def replica_url(self, replica_id: str) -> str:
        if replica_id == "gone":
            raise LookupError("gone has no published port")
        return f"http://{replica_id}"


@pytest.mark.parametrize(
    ("status", "owner", "live", "error"),
    [
        ({"live": True, "run_id": "r_1", "status": "running"}, "r1", True, None),
        ({"live": False, "run_id": "r_1", "status": "running"}, "r1", False, None),
        (None, "r1", False, "404"),
        ("hang", "r1", False, "TimeoutError"),
        ({"live": True}, "gone", False, "no address"),
    ],
)
async def test_owner_probe_maps_every_answer(
    status: Mapping[str, Any] | str | None, owner: str, live: bool, error: str | None
) -> None:
    from chaos.sut.loomcycle.ports import LoomcyclePorts

    ports = LoomcyclePorts(
        StatusCluster({}, status=status), pool=None, prefix="t", owner_timeout_s=0.2
    )
    answer = await ports.ask_owner(owner, "t-a")
    assert answer.live is live
    assert (answer.error is None) if error is None else (error in (answer.error or ""))
