"""no_zombies and no_quota_leaks on hand-written histories."""

from __future__ import annotations

import pytest

from chaos.checks import no_quota_leaks, no_zombies
from chaos.checks.params import CheckParams
from chaos.testing.bench import DEFAULT_REPLICAS, HistoryBench
from chaos.verdict import Status

# -- no_zombies ------------------------------------------------------------------------


def _with_running_run(probe: str | None) -> HistoryBench:
    s = HistoryBench()
    done = s.run("t1-done", start=0.0, end=1.0)
    s.run("t1-long", start=0.0, end=None, run_id="r_long")
    running = s.row("t1-long", "r_long", status="running", replica_id="r2")
    s.snapshot(10.0, [s.row("t1-done", done, completed=1.0), running])
    if probe == "live":
        s.live_probe(10.5, running, live=True)
    elif probe == "dead":
        s.live_probe(10.5, running, live=False, error="connection refused")
    elif probe == "wrong_replica":
        s.live_probe(10.5, running, live=True, replica_id="r3")
    elif probe == "before_snapshot":
        s.live_probe(9.0, running, live=True)
    return s


def test_no_zombies_passes_when_every_running_run_is_live_on_its_owner() -> None:
    v = no_zombies.check(_with_running_run("live").context())
    assert v.status is Status.PASS, v
    assert v.evidence["running_and_live"] == ["r_long"]


@pytest.mark.parametrize(
    ("probe", "why"),
    [
        (None, "no live probe"),
        ("dead", "connection refused"),
        ("wrong_replica", "not the owner"),
        ("before_snapshot", "no live probe"),
    ],
)
def test_no_zombies_fails_on_a_running_run_nobody_serves(probe: str | None, why: str) -> None:
    v = no_zombies.check(_with_running_run(probe).context())
    assert v.status is Status.FAIL
    zombie = v.evidence["zombies"][0]
    assert zombie["run_id"] == "r_long" and zombie["replica_id"] == "r2"
    assert why in zombie["why"]
    assert zombie["history"][0]["op"] == "start_run"


def test_no_zombies_fails_when_the_owner_row_is_gone_and_cites_its_kill() -> None:
    s = _with_running_run("live")
    s.fault("kill", "r2", start=5.0)
    s.snapshot(
        11.0, [s.row("t1-long", "r_long", status="running", replica_id="r2")], replicas=("r1", "r3")
    )
    s.live_probe(11.5, s.row("t1-long", "r_long", status="running", replica_id="r2"))
    v = no_zombies.check(s.context())
    assert v.status is Status.FAIL
    assert "no replicas row" in v.evidence["zombies"][0]["why"]
    assert [w.name for w in v.fault_windows] == ["kill"]


def test_no_zombies_is_vacuous_without_a_snapshot_or_runs() -> None:
    s = HistoryBench()
    s.run("t1-a", start=0.0, end=1.0)
    assert no_zombies.check(s.context()).status is Status.VACUOUS
    s.snapshot(2.0, [s.row("other-prefix", "r_x", completed=1.0)])
    assert no_zombies.check(s.context()).status is Status.VACUOUS


# -- no_quota_leaks --------------------------------------------------------------------
# slack 0.5 s around a sample; give-back grace 5 s; cap 2.
PARAMS = CheckParams(per_user_cap=2, test_prefix="t1", replica_ids=DEFAULT_REPLICAS)


def _two_runs(a_end: float, b_end: float = 20.0) -> HistoryBench:
    s = HistoryBench(PARAMS)
    for agent, end in (("t1-a", a_end), ("t1-b", b_end)):
        s.run(agent, start=0.0, end=end, user_id="t1-u", run_id=f"r_{agent}")
    return s


def _final(s: HistoryBench, a_end: float, b_end: float = 20.0, quota: int = 0) -> None:
    rows = [
        s.row(agent, f"r_{agent}", user_id="t1-u", completed=end)
        for agent, end in (("t1-a", a_end), ("t1-b", b_end))
    ]
    s.snapshot(60.0, rows, quotas={"t1-u": quota} if quota else {})


def test_quota_passes_when_counts_match_open_runs() -> None:
    s = _two_runs(20.0)
    s.snapshot(10.0, quotas={"t1-u": 2})
    _final(s, 20.0)
    v = no_quota_leaks.check(s.context())
    assert v.status is Status.PASS, v
    assert v.evidence["peak"] == 2


@pytest.mark.parametrize(("a_end", "status"), [(10.6, Status.FAIL), (10.4, Status.PASS)])
def test_quota_lower_bound_edge(a_end: float, status: Status) -> None:
    """Run a is surely open over [9.5, 10.5] only if it ended after 10.5."""
    s = _two_runs(a_end)
    s.snapshot(10.0, quotas={"t1-u": 1})
    _final(s, a_end)
    v = no_quota_leaks.check(s.context())
    assert v.status is status, v
    if status is Status.FAIL:
        bad = v.evidence["out_of_bounds"][0]
        assert (bad["user_id"], bad["active_count"], bad["lower"]) == ("t1-u", 1, 2)
        assert set(bad["runs_near"]) == {"t1-a", "t1-b"}


@pytest.mark.parametrize(("admitted", "status"), [(9.4, Status.FAIL), (9.6, Status.PASS)])
def test_quota_lower_bound_starts_at_admission_not_at_the_post(
    admitted: float, status: Status
) -> None:
    """A POST stuck in transit (nginx waiting on a killed replica) holds no slot yet.

    Run b's first frame arrives at ``admitted``: it is surely holding a slot over
    [9.5, 10.5] only if it was admitted by 9.5.
    """
    s = HistoryBench(PARAMS)
    s.run("t1-a", start=0.0, end=20.0, user_id="t1-u", run_id="r_t1-a")
    s.run("t1-b", start=0.0, end=20.0, user_id="t1-u", run_id="r_t1-b", admitted=admitted)
    s.snapshot(10.0, quotas={"t1-u": 1})
    _final(s, 20.0)
    v = no_quota_leaks.check(s.context())
    assert v.status is status, v


@pytest.mark.parametrize(("sample", "status"), [(15.1, Status.FAIL), (14.9, Status.PASS)])
def test_quota_upper_bound_edge(sample: float, status: Status) -> None:
    """Both runs ended at 10; a slot may be held until 10 + 5 s grace, not later."""
    s = _two_runs(10.0, 10.0)
    s.snapshot(sample, quotas={"t1-u": 1})
    _final(s, 10.0, 10.0)
    v = no_quota_leaks.check(s.context())
    assert v.status is status, v
    if status is Status.FAIL:
        assert v.evidence["out_of_bounds"][0]["upper"] == 0
        assert "leak" in v.evidence["out_of_bounds"][0]["why"]


def test_quota_never_above_the_cap_even_if_runs_explain_it() -> None:
    s = HistoryBench(PARAMS)
    for agent in ("t1-a", "t1-b", "t1-c"):
        s.run(agent, start=0.0, end=20.0, user_id="t1-u", run_id=f"r_{agent}")
    s.snapshot(10.0, quotas={"t1-u": 3})
    s.snapshot(
        60.0, [s.row(a, f"r_{a}", user_id="t1-u", completed=20.0) for a in ("t1-a", "t1-b", "t1-c")]
    )
    v = no_quota_leaks.check(s.context())
    assert v.status is Status.FAIL
    assert "cap 2" in v.evidence["out_of_bounds"][0]["why"]


def test_quota_left_over_at_quiescence_fails() -> None:
    s = _two_runs(20.0)
    s.snapshot(10.0, quotas={"t1-u": 2})
    _final(s, 20.0, quota=1)
    v = no_quota_leaks.check(s.context())
    assert v.status is Status.FAIL
    assert v.evidence["quiescence"] == [
        {"user_id": "t1-u", "active_count": 1, "running_runs": 0, "final_snapshot_mono": 60.0}
    ]


def test_quota_of_a_killed_owner_is_held_until_the_reap() -> None:
    s = HistoryBench(PARAMS)
    s.run(
        "t1-a",
        start=0.0,
        end=5.0,
        outcome="info",
        user_id="t1-u",
        run_id="r_a",
        error="stream broke",
    )
    s.fault("kill", "r1", start=5.0)
    s.snapshot(40.0, quotas={"t1-u": 1})
    s.snapshot(
        100.0,
        [
            s.row(
                "t1-a",
                "r_a",
                status="failed",
                user_id="t1-u",
                stop_reason="replica_died",
                error="owner replica died",
                completed=70.0,
            )
        ],
    )
    assert no_quota_leaks.check(s.context()).status is Status.PASS


def test_quota_is_vacuous_when_no_non_zero_row_was_seen() -> None:
    s = _two_runs(20.0)
    s.snapshot(10.0)
    _final(s, 20.0)
    assert no_quota_leaks.check(s.context()).status is Status.VACUOUS


@pytest.mark.parametrize(("live", "status"), [(True, Status.PASS), (False, Status.FAIL)])
def test_a_run_status_poll_after_the_final_snapshot_counts_as_a_probe(
    live: bool, status: Status
) -> None:
    s = _with_running_run(None)
    inv = s.at(10.2).history.invoke("run_status", "poller", "t1-long", reason="final")
    s.at(10.3).history.complete(
        inv, "ok", found=True, status="running", run_id="r_long", replica_id="r2", live=live
    )
    assert no_zombies.check(s.context()).status is status
