"""Issue #10, scenario 14: the cluster-wide controls, while a replica dies or is cut off.

loomcycle's operator documentation (docs/MULTI-REPLICA.md) names one set of
admin endpoints that change the state of the whole cluster: the pause
(``POST /v1/_pause``, ``POST /v1/_resume``, ``GET /v1/_state``; "Cluster-wide
pause state: runtime_state singleton table + 1s cache + LISTEN/NOTIFY
invalidation", MULTI-REPLICA.md:37; "any replica accepts this; both replicas
converge to paused within 1s", :98; "Worst case 1s lag between a pause request
and a remote replica refusing new runs", :172).  The other ``/v1/_*`` routes
(server.go:2759-3124) act on one object (a user, a channel, a schedule, a
snapshot, a limit row) or only read; per-schedule pause/resume is a schedule's
state, not the cluster's, and the snapshot restore's cluster-safe path is a
pause client (MULTI-REPLICA.md:52).  So the pause is the control this covers.

What must hold, from loomcycle v1.59.0's source:

* a pause issued through one replica writes ``runtime_state`` = pausing and
  NOTIFYs ``loomcycle.pause`` (pause/manager.go:579-598); every live replica
  then refuses new runs with 503 ``runtime_paused`` (pause_gate.go:121-135,
  checked before any slot is taken, server.go:3810-3815) within the cache TTL
  (manager.go:193-229);
* a run already running is not cut: it parks at its next iteration boundary
  (loop.go:1511-1520, pause_gate.go:54-87) and goes on after the resume; a run
  inside a provider call finishes it.  So once the in-flight calls are over,
  nothing completes until the resume, and afterwards every run the cluster
  took ends ``completed`` (the killed replica's are reaped, ``replica_died``);
* ``POST /v1/_pause`` answers 200 ``paused`` once its own replica's runs are
  parked (manager.go:620-666); ``POST /v1/_resume`` flips the row back and
  NOTIFYs (manager.go:795-810), and every replica admits runs again;
* a replica that was dead (or cut from Postgres) while the pause was issued
  agrees with the cluster once it is back: it reads ``runtime_state`` on its
  first ``State()`` (manager.go:215-228), so it refuses new runs and reports
  ``paused``, and a resume through it works.

A refused start is classified as the target's coded refusal (``fail`` with
code ``runtime_paused``): no row, no quota slot, not a lost run
(``chaos.checks.facts.ClientRun.maybe_admitted`` is False for a coded answer).
Every invariant is judged by the checkers.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest
from test_scenario_crash import MIN_OWNED, NO_CANCELS, assert_lc003_signature, victim_owning_runs

from chaos.faults import Kill, injected
from chaos.faults.replica import (
    answers_healthz,
    container_target,
    reap_wait_s,
    rejoin,
    stop_replica,
    survivors_list,
)
from chaos.record.history import History
from chaos.record.vocabulary import FAULT_KILL
from chaos.scenario.evidence import final_rows, only_window
from chaos.scenario.run import ScenarioRun
from chaos.scenario.steps import load_requests
from chaos.sut.base import RunRequest
from chaos.sut.loomcycle.ports import DB_SETUP_TIMEOUT_S, scenario_run, started_runs
from chaos.sut.loomcycle.settings import settings_of
from chaos.sut.loomcycle.specs import CONTROLS_CUT_SPEC, CONTROLS_SPEC
from chaos.sut.postgres import like_prefix
from chaos.testing.outside_sabotage import link_cut
from chaos.verdict import Verdict
from chaos.wait import eventually
from chaos.workload import Driver, RunResult
from chaos.workload.gates import CapPolicy

pytestmark = [pytest.mark.chaos, pytest.mark.asyncio(loop_scope="session")]

#: The code a paused replica answers a new run with (pause_gate.go:132).
PAUSED_CODE = "runtime_paused"
#: How much later than the cache TTL a replica may still admit (HTTP round trip, the
#: pause's own database write before its NOTIFY, our 0.1 s polling).
PROPAGATION_SLACK_S = 1.0
#: Our poll interval for a replica's state.
STATE_POLL_S = 0.1
#: The pause's own drain bound (POST /v1/_pause timeout_ms): runs of ~4 s park within one.
PAUSE_TIMEOUT_MS = 20_000
#: Longest provider call of CONTROLS_SPEC (latency + jitter) and a margin for the run's own
#: writes: a run inside one when the pause lands finishes it; after that nothing may
#: complete until the resume.
CALL_MAX_S = (
    settings_of(CONTROLS_SPEC).mock.latency_ms + settings_of(CONTROLS_SPEC).mock.jitter_ms
) / 1000 + 2.0
#: A start that is refused answers at once; one still open after this was admitted.
REFUSAL_S = 5.0
#: The load: 6 users x cap 4 open at once, 2 slots per replica, so starts queue inside
#: the replicas; the driver waits for a run through the whole pause (reap included).
RUNS, USERS = 48, 6
LOAD_RUN_TIMEOUT_S = 400.0
#: bounded_recovery has no kill to time in the cut variant.
NO_KILL = "bounded_recovery"

PAUSED_RUNS_SQL = """
SELECT id, NULLIF(replica_id, '') AS replica_id FROM runs
WHERE pause_state = 'paused' AND agent_id LIKE $1 ESCAPE '\\'
ORDER BY id
"""
DONE_EVENTS_SQL = """
SELECT r.id, NULLIF(r.replica_id, '') AS replica_id, count(e.seq)::int AS done
FROM runs r LEFT JOIN events e ON e.run_id = r.id AND e.type = 'done'
WHERE r.agent_id LIKE $1 ESCAPE '\\'
GROUP BY r.id, r.replica_id
"""


async def query(dsn: str, sql: str, *args: Any) -> list[Any]:
    async with asyncio.timeout(DB_SETUP_TIMEOUT_S):
        conn = await asyncpg.connect(dsn)
    try:
        async with asyncio.timeout(DB_SETUP_TIMEOUT_S):
            return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


@dataclass
class ControlCall:
    """One admin call as sent and answered (monotonic and wall times)."""

    replica: str
    method: str
    path: str
    status: int | None
    body: Any
    sent: float
    answered: float
    sent_wall: float


class Controls:
    """The cluster's admin endpoints on one replica's own port, every call recorded.

    The port is read at each call: a restarted replica answers on a new one.
    """

    def __init__(self, cluster: Any, history: History) -> None:
        self.cluster = cluster
        self.history = history
        self.token = settings_of(cluster.spec).auth_token
        self.calls: list[ControlCall] = []

    async def call(
        self, replica: str, method: str, path: str, body: Any = None, timeout_s: float = 10.0
    ) -> ControlCall:
        sent, sent_wall = time.monotonic(), time.time()
        status: int | None = None
        answer: Any = None
        try:
            async with httpx.AsyncClient(
                base_url=self.cluster.replica_url(replica),
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=timeout_s,
            ) as http:
                resp = await http.request(method, path, json=body)
            status = resp.status_code
            try:
                answer = resp.json()
            except ValueError:
                answer = resp.text[:500]
        except httpx.HTTPError as exc:
            answer = f"{type(exc).__name__}: {exc}"[:500]
        done = ControlCall(replica, method, path, status, answer, sent, time.monotonic(), sent_wall)
        self.calls.append(done)
        self.history.note(
            "control",
            replica=replica,
            method=method,
            path=path,
            status=status,
            body=answer,
            elapsed=round(done.answered - sent, 3),
        )
        return done

    async def state(self, replica: str) -> str | None:
        answer = await self.call(replica, "GET", "/v1/_state", timeout_s=5.0)
        return answer.body.get("state") if isinstance(answer.body, dict) else None

    async def pause(self, replica: str) -> ControlCall:
        return await self.call(
            replica,
            "POST",
            "/v1/_pause",
            {"timeout_ms": PAUSE_TIMEOUT_MS},
            timeout_s=PAUSE_TIMEOUT_MS / 1000 + 10,
        )

    async def resume(self, replica: str) -> ControlCall:
        return await self.call(replica, "POST", "/v1/_resume", timeout_s=15.0)

    async def seen(self, replica: str, wanted: Callable[[str | None], bool], t0: float) -> float:
        """Seconds from ``t0`` until ``replica``'s ``GET /v1/_state`` satisfies ``wanted``."""
        ttl = pause_ttl_s(self.cluster)

        async def reached() -> bool:
            return wanted(await self.state(replica))

        await eventually(
            reached,
            what=f"{replica}'s /v1/_state to change",
            timeout=ttl + PROPAGATION_SLACK_S + 10.0,
            interval=STATE_POLL_S,
        )
        return time.monotonic() - t0


def pause_ttl_s(cluster: Any) -> float:
    """The pause-state cache TTL the replicas run with (LOOMCYCLE_PAUSE_CACHE_TTL_MS)."""
    return settings_of(cluster.spec).timers.pause_cache_ttl_ms / 1000


def paused(state: str | None) -> bool:
    return state in ("pausing", "paused")


def running(state: str | None) -> bool:
    return state == "running"


@dataclass
class Probes:
    """One-off starts sent straight to one replica (no gate, no retry), each under its own
    user so the per-user cap never answers for the pause."""

    cluster: Any
    history: History
    prefix: str
    tasks: dict[str, asyncio.Task[RunResult]] = field(default_factory=dict)

    async def start(self, replica: str, label: str) -> asyncio.Task[RunResult]:
        """Send one start; returns once it was answered or has been open ``REFUSAL_S``
        (admitted: its task keeps streaming and is awaited at the end)."""
        agent_id = f"{self.prefix}-probe-{label}-{replica}"
        req = RunRequest(
            agent="chaos",
            agent_id=agent_id,
            prompt="loomchaos control probe",
            user_id=f"{self.prefix}-probe-u-{label}-{replica}",
        )

        async def one() -> RunResult:
            client = self.cluster.adapter.client(self.cluster.replica_url(replica))
            try:
                driver = Driver(
                    client, self.history, via=replica, policy=CapPolicy(), run_timeout_s=300
                )
                return await driver.run(req)
            finally:
                await client.aclose()

        task = asyncio.create_task(one(), name=agent_id)
        self.tasks[agent_id] = task
        await asyncio.wait({task}, timeout=REFUSAL_S)
        return task

    async def results(self) -> dict[str, RunResult]:
        done = await asyncio.gather(*self.tasks.values())
        return dict(zip(self.tasks, done, strict=True))


def refused_paused(task: asyncio.Task[RunResult]) -> bool:
    if not task.done():
        return False
    result = task.result()
    return result.end == "rejected" and result.http_status == 503 and result.code == PAUSED_CODE


def load(
    cluster: Any, history: History, reqs: Sequence[RunRequest], via: str = "lb"
) -> AbstractAsyncContextManager[asyncio.Task[list[RunResult]]]:
    """Background load under the per-user gate; its runs may wait out a whole pause."""
    return started_runs(
        cluster, history, reqs, via=via, poll_timeout_s=15.0, run_timeout_s=LOAD_RUN_TIMEOUT_S
    )


@dataclass
class PauseEvidence:
    """What the pause and the resume did, for the assertions after convergence."""

    issued_wall: float = 0.0
    resumed_wall: float = 0.0
    pause: ControlCall | None = None
    resume: ControlCall | None = None
    to_paused: dict[str, float] = field(default_factory=dict)
    to_running: dict[str, float] = field(default_factory=dict)
    refused: dict[str, bool] = field(default_factory=dict)
    parked: list[Any] = field(default_factory=list)
    parked_at_heal: list[Any] = field(default_factory=list)
    healed_wall: float = 0.0

    def note(self, history: History, **extra: Any) -> None:
        history.note(
            "controls",
            to_paused=self.to_paused,
            to_running=self.to_running,
            parked=[dict(r) for r in self.parked],
            **extra,
        )


async def pause_cluster(
    controls: Controls, probes: Probes, issuer: str, live: Sequence[str], ev: PauseEvidence
) -> None:
    """Pause through ``issuer``; time every live replica's switch; probe each with a start."""
    t0 = time.monotonic()
    ev.issued_wall = time.time()
    pause = asyncio.create_task(controls.pause(issuer))
    seen = await asyncio.gather(*(controls.seen(r, paused, t0) for r in live))
    ev.to_paused.update(zip(live, seen, strict=True))
    for r in live:
        ev.refused[f"paused:{r}"] = refused_paused(await probes.start(r, "paused"))
    ev.pause = await pause


async def resume_cluster(
    controls: Controls, probes: Probes, via: str, everyone: Sequence[str], ev: PauseEvidence
) -> None:
    t0 = time.monotonic()
    ev.resumed_wall = time.time()
    ev.resume = await controls.resume(via)
    await resumed_everywhere(controls, probes, everyone, ev, t0)


async def resumed_everywhere(
    controls: Controls, probes: Probes, everyone: Sequence[str], ev: PauseEvidence, t0: float
) -> None:
    """Time every replica's switch back to ``running`` from ``t0``; probe each with a start."""
    seen = await asyncio.gather(*(controls.seen(r, running, t0) for r in everyone))
    ev.to_running.update(zip(everyone, seen, strict=True))
    for r in everyone:
        await probes.start(r, "resumed")


def assert_pause_and_resume(
    controls: Controls, ev: PauseEvidence, probe_results: dict[str, RunResult], prefix: str
) -> None:
    bound = pause_ttl_s(controls.cluster) + PROPAGATION_SLACK_S
    assert ev.pause is not None and ev.pause.status == 200, ev.pause
    assert ev.pause.body.get("state") == "paused", ev.pause
    late = {r: round(s, 2) for r, s in ev.to_paused.items() if s > bound}
    assert not late, f"replicas still admitting {bound}s after the pause: {late}"
    assert all(ev.refused.values()), {
        k: v for k, v in ev.refused.items() if not v
    } or "every paused probe refused"
    assert ev.resume is not None and ev.resume.status == 200, ev.resume
    assert ev.resume.body.get("state") == "running", ev.resume
    late = {r: round(s, 2) for r, s in ev.to_running.items() if s > bound}
    assert not late, f"replicas still paused {bound}s after the resume: {late}"
    resumed = {a: r for a, r in probe_results.items() if "-probe-resumed-" in a}
    assert resumed and all(r.completed for r in resumed.values()), resumed
    refused = {a: r for a, r in probe_results.items() if "-probe-resumed-" not in a}
    wrong = {a: (r.end, r.http_status, r.code) for a, r in refused.items() if r.code != PAUSED_CODE}
    assert not wrong, f"starts during the pause not refused as {PAUSED_CODE}: {wrong}"


def completed_while_paused(ctx: Any, ev: PauseEvidence, ttl: float) -> list[Any]:
    """Runs that completed after the in-flight provider calls were over and before the
    resume: a paused cluster must not make progress."""
    quiet_from = ev.issued_wall + ttl + PROPAGATION_SLACK_S + CALL_MAX_S
    return [
        r
        for r in final_rows(ctx)
        if r.status == "completed"
        and r.completed_at is not None
        and quiet_from < r.completed_at < ev.resumed_wall - ctx.params.clock_slack_s
    ]


def plan(
    cluster: Any, history: History, prefix: str, rng: random.Random
) -> tuple[str, list[str], str, Controls, Probes, PauseEvidence]:
    """The seeded victim, the survivors, the survivor that issues the pause, and the
    scenario's recorders."""
    victim = rng.choice(cluster.replica_ids)
    survivors = [r for r in cluster.replica_ids if r != victim]
    issuer = rng.choice(survivors)
    history.note("controls_plan", victim=victim, issuer=issuer)
    controls = Controls(cluster, history)
    return victim, survivors, issuer, controls, Probes(cluster, history, prefix), PauseEvidence()


async def back_then_resume(
    controls: Controls, probes: Probes, victim: str, label: str, ev: PauseEvidence
) -> None:
    """The victim is back in a paused cluster: it must refuse a start; then resume through
    it, and every replica admits runs again."""
    ev.refused[f"{label}:{victim}"] = refused_paused(await probes.start(victim, label))
    await resume_cluster(controls, probes, victim, controls.cluster.replica_ids, ev)


async def finish(run: ScenarioRun, probes: Probes) -> dict[str, RunResult]:
    """Every probe's end, then convergence (the final snapshot the checkers read)."""
    results = await probes.results()
    await run.converge()
    return results


#: What a replica (re)booting during a pause does to the runs parked on the others (see
#: assert_reboot_resurrection_signature); a check of this scenario, not a checker's.
EXECUTED_ONCE = "run_executed_once"


async def executed_once(dsn: str, prefix: str) -> tuple[Verdict, list[Any]]:
    """Each run's transcript holds at most one ``done``: one loop carried it."""
    rows = await query(dsn, DONE_EVENTS_SQL, like_prefix(prefix))
    twice = [dict(r) for r in rows if r["done"] > 1]
    if twice:
        return Verdict.failed(
            EXECUTED_ONCE,
            f"{len(twice)} runs finished twice (two done events)",
            runs=twice[:20],
            count=len(twice),
        ), twice
    return Verdict.passed(EXECUTED_ONCE, f"{len(rows)} runs, one done each"), []


async def test_pause_while_a_replica_is_killed_then_resume_through_it(
    chaos_cluster_for: Callable[..., Awaitable[Any]],
    chaos_history: History,
    chaos_prefix: str,
    chaos_rng: random.Random,
    chaos_verdicts: Callable[..., None],
) -> None:
    """Kill a replica owning runs; while it is dead, pause through a survivor; wait for
    the reap (the sweeper works on while paused); restart it; it must say ``paused`` and
    refuse a start; resume through it; every replica admits again; every invariant."""
    cluster = await chaos_cluster_for(CONTROLS_SPEC)
    victim, survivors, issuer, controls, probes, ev = plan(
        cluster, chaos_history, chaos_prefix, chaos_rng
    )
    reqs = load_requests(chaos_prefix, "pause", RUNS, USERS)
    async with scenario_run(cluster, chaos_history, chaos_prefix) as run:
        try:
            async with load(cluster, chaos_history, reqs):
                await victim_owning_runs(run, victim)
                kill = Kill(await container_target(cluster, victim, own_healthz(cluster, victim)))
                async with injected(kill, chaos_history):
                    await pause_cluster(controls, probes, issuer, survivors, ev)
                    ev.parked = await query(
                        cluster.pg_dsn, PAUSED_RUNS_SQL, like_prefix(chaos_prefix)
                    )
                    await reaped(cluster, victim, run)
                    await run.sample()
                    ev.parked_at_heal = await query(
                        cluster.pg_dsn, PAUSED_RUNS_SQL, like_prefix(chaos_prefix)
                    )
                    ev.healed_wall = time.time()
                await rejoin(cluster, victim)
                agreed = await controls.state(victim)
                boot_log = await cluster.log_tail(victim, lines=BOOT_LOG_LINES)
                await back_then_resume(controls, probes, victim, "rejoined", ev)
        finally:
            await ensure_resumed(controls, cluster.replica_ids)
        probe_results = await finish(run, probes)

    ev.note(chaos_history, victim_said=agreed)
    print(
        f"pause with {victim} killed: to paused {ev.to_paused}, to running {ev.to_running}; "
        f"parked {len(ev.parked)} after the pause, {len(ev.parked_at_heal)} at the reboot; "
        f"{victim} said {agreed!r} after rejoining"
    )
    assert agreed == "paused", f"{victim} rejoined a paused cluster and said {agreed!r}"
    assert_pause_and_resume(controls, ev, probe_results, chaos_prefix)
    ctx = run.context()
    assert only_window(chaos_history, FAULT_KILL, victim).heal_proven
    progressed = completed_while_paused(ctx, ev, pause_ttl_s(cluster))
    assert not progressed, f"runs completed while the cluster was paused: {progressed[:5]}"
    # A live parked run the reboot's re-dispatch marked failed is judged below, by its
    # signature (assert_marked_by_the_reboot); every other survivor's run completed.
    parked_ids = {r["id"] for r in ev.parked_at_heal}
    others = [
        r
        for r in final_rows(ctx)
        if r.replica_id != victim
        and not (r.run_id in parked_ids and str(r.error or "").startswith("resume"))
    ]
    assert others and all(r.status == "completed" for r in others), [
        r for r in others if r.status != "completed"
    ][:5]
    once, twice = await executed_once(cluster.pg_dsn, chaos_prefix)
    verdicts = [*run.verdicts(allow_vacuous=[NO_CANCELS]), once]
    window = only_window(chaos_history, FAULT_KILL, victim)
    # LC-003 (the killed replica's queued starts keep their quota slots): no_quota_leaks
    # may fail only with its signature.  The reboot's re-dispatch of the survivors'
    # parked runs (see assert_reboot_resurrection_signature) may fail run_executed_once
    # only with its own.
    known = [v for v in verdicts if v.invariant == "no_quota_leaks" and not v.ok]
    for v in known:
        assert_lc003_signature(v, ctx, window)
    if twice:
        assert_reboot_resurrection_signature(twice, ev, victim, boot_log)
        known.append(once)
    # The same re-dispatch marks a live parked run failed when its copy cannot take a slot
    # (resume.go:427-432, server.go:7301): the client then sees done for a failed row.
    for v in verdicts:
        if v.invariant in REDISPATCH_MARKS and not v.ok:
            assert_marked_by_the_reboot(v, ev)
            known.append(v)
    print(f"finished twice: {len(twice)}; known: {[v.invariant for v in known]}")
    chaos_verdicts([v for v in verdicts if v not in known], known=known)


#: The rejoined victim's log lines read for its boot's re-dispatch line.
BOOT_LOG_LINES = 3000
REDISPATCHED = re.compile(r"resume\(boot\): re-dispatched (\d+) paused run")


def assert_reboot_resurrection_signature(
    twice: Sequence[Any], ev: PauseEvidence, victim: str, boot_log: str
) -> None:
    """Runs finished twice only as the rebooted victim's re-dispatch explains.

    At boot every replica re-dispatches, under the advisory lock ``resume_paused_runs``,
    every run whose row says ``pause_state='paused'`` (main.go:2875-2897 ->
    resume.go:56-76) and ``ListPausedRuns`` has no replica filter
    (store/postgres/postgres.go:1797-1808).  Its only guard against a live copy is its
    own process's cancel registry (resume.go:224-236), so a replica that boots while the
    cluster is paused starts a second loop for every run parked on a live survivor
    (resume.go:331-442): both park, both go on at the resume, both reach ``done``.

    Signature: each run that finished twice was parked on a survivor (not the victim)
    when the victim was restarted, and the victim's log since its restart says it
    re-dispatched at least that many paused runs."""
    parked = {r["id"]: r["replica_id"] for r in ev.parked_at_heal}
    for run in twice:
        assert run["id"] in parked, f"{run} finished twice but was not parked at the reboot"
        assert parked[run["id"]] != victim, f"{run} was the rebooted victim's own run"
    # Go's log prefix, in the container's zone (UTC): "2026/12/02 06:18:14 ...".
    since = time.strftime("%Y/%m/%d %H:%M:%S", time.gmtime(ev.healed_wall - 1))
    lines = [ln for ln in boot_log.splitlines() if ln[:19] >= since]
    counts = [int(m.group(1)) for ln in lines if (m := REDISPATCHED.search(ln))]
    assert counts and max(counts) >= len(twice), (
        f"{len(twice)} runs finished twice, but {victim}'s log since its restart "
        f"re-dispatched {counts}: not the reboot's re-dispatch"
    )


#: What a copy that fails to take a slot breaks: a live parked run's row marked failed.
REDISPATCH_MARKS = ("one_truth", "stop_reason_fits_cause")


def assert_marked_by_the_reboot(verdict: Verdict, ev: PauseEvidence) -> None:
    """Every row the verdict names was parked on a survivor at the reboot and was marked
    failed by the re-dispatch (``resume failed: ...`` / ``resume: acquire ...``,
    resume.go:427-432 and 447-456), and nothing else is wrong."""
    e = verdict.evidence
    assert not e.get("reaped_live_owner"), f"{verdict.invariant}: {e['reaped_live_owner']}"
    offenders = e.get("client_db_mismatch") or e.get("offenders") or []
    count = e.get("mismatch_count", e.get("offender_count", len(offenders)))
    parked = {r["id"] for r in ev.parked_at_heal}
    assert offenders and count <= len(parked), f"{verdict.invariant} failed: {verdict.summary}"
    for item in offenders:
        assert item.get("run_id") in parked and str(item.get("error") or "").startswith("resume"), (
            f"{verdict.invariant} offender not marked by the reboot's re-dispatch: {item}"
        )


def own_healthz(cluster: Any, replica: str) -> Callable[[], Awaitable[bool]]:
    """Probe: the replica answers its own ``/healthz``, on the port it has now (a restart
    publishes a new one).  The kill's effect is the process gone, proven at once; the reap
    is waited for separately, while the cluster is paused."""
    answers = answers_healthz(cluster, replica)

    async def probe() -> bool:
        await cluster.refresh_endpoints()
        return await answers()

    return probe


async def reaped(cluster: Any, victim: str, run: ScenarioRun) -> None:
    """The survivors reap the dead victim while the cluster is paused (bounded)."""
    listed = survivors_list(cluster, victim)

    async def gone() -> bool:
        return not await listed()

    await eventually(
        gone,
        what=f"the survivors to reap killed {victim} during the pause",
        timeout=reap_wait_s(run.params),
        interval=1.0,
    )


async def ensure_resumed(controls: Controls, replicas: Sequence[str]) -> None:
    """Leave the cluster running whatever happened (the next test shares it): a resume
    through the first replica that takes one; a 409 means it already runs."""
    for r in replicas:
        answer = await controls.resume(r)
        if answer.status in (200, 409) and await controls.state(r) == "running":
            return


async def test_pause_while_a_replica_is_cut_from_postgres(
    chaos_cluster_for: Callable[..., Awaitable[Any]],
    chaos_history: History,
    chaos_prefix: str,
    chaos_rng: random.Random,
    chaos_verdicts: Callable[..., None],
) -> None:
    """Cut a replica from Postgres; pause through a survivor: the survivors refuse
    within the TTL, the cut replica admits nothing (its writes fail); heal: it agrees
    (``paused``, refuses a start) within the TTL plus its own failed read; resume
    through it; every replica admits again; every invariant."""
    cluster = await chaos_cluster_for(CONTROLS_CUT_SPEC)
    victim, survivors, issuer, controls, probes, ev = plan(
        cluster, chaos_history, chaos_prefix, chaos_rng
    )
    # The load goes to the survivors only: what a cut replica does to its own runs is
    # scenario 4's; here it owns none, so every run is the pause's to judge.
    loads = [load_requests(chaos_prefix, f"pause-{r}", RUNS // 2, USERS // 2) for r in survivors]
    async with scenario_run(cluster, chaos_history, chaos_prefix) as run:
        try:
            async with (
                load(cluster, chaos_history, loads[0], via=survivors[0]),
                load(cluster, chaos_history, loads[1], via=survivors[1]),
            ):
                await run.wait_for(
                    lambda s: sum(1 for r in s.runs if r.status == "running") >= MIN_OWNED,
                    what=f"{MIN_OWNED} runs running on the survivors",
                    timeout=60,
                )
                async with injected(link_cut(cluster, "pg", victim), chaos_history):
                    await pause_cluster(controls, probes, issuer, survivors, ev)
                    ev.parked = await query(
                        cluster.pg_dsn, PAUSED_RUNS_SQL, like_prefix(chaos_prefix)
                    )
                    cut_said = await controls.state(victim)
                    cut_probe = await probes.start(victim, "cut")
                    await run.sample()
                t_heal = time.monotonic()
                healed_after = await controls.seen(victim, paused, t_heal)
                await back_then_resume(controls, probes, victim, "healed", ev)
        finally:
            await ensure_resumed(controls, cluster.replica_ids)
        probe_results = await finish(run, probes)

    ev.note(chaos_history, cut_said=cut_said, healed_after=healed_after)
    cut = cut_probe.result()
    print(
        f"{victim} cut from Postgres: said {cut_said!r}, start {cut.end}/{cut.http_status}/"
        f"{cut.code}; healed, paused after {healed_after:.2f}s; to paused {ev.to_paused}, "
        f"to running {ev.to_running}; parked {len(ev.parked)}"
    )
    assert cut.run_id is None and not cut.completed, f"{victim} admitted a run while cut: {cut}"
    probe_results.pop(f"{chaos_prefix}-probe-cut-{victim}")
    ttl = pause_ttl_s(cluster)
    # Healed, its first State() reads the row (one failed 2 s read may be in flight:
    # manager.go:215-220) and it pauses too.
    assert healed_after <= ttl + 2.0 + PROPAGATION_SLACK_S, healed_after
    assert_pause_and_resume(controls, ev, probe_results, chaos_prefix)
    ctx = run.context()
    progressed = completed_while_paused(ctx, ev, ttl)
    assert not progressed, f"runs completed while the cluster was paused: {progressed[:5]}"
    rows = final_rows(ctx)
    assert rows and all(r.status == "completed" for r in rows), [
        r for r in rows if r.status != "completed"
    ][:5]
    once, twice = await executed_once(cluster.pg_dsn, chaos_prefix)
    chaos_verdicts([*run.verdicts(allow_vacuous=[NO_CANCELS, NO_KILL]), once])
    assert not twice, twice


#: The known-verdict name for a resume refused by a replica booted during the pause.
RESUME_ANY_REPLICA = "resume_through_any_replica"


async def test_resume_through_a_replica_restarted_while_paused(
    chaos_cluster_for: Callable[..., Awaitable[Any]],
    chaos_history: History,
    chaos_prefix: str,
    chaos_rng: random.Random,
    chaos_verdicts: Callable[..., None],
) -> None:
    """The runbook's rolling upgrade (MULTI-REPLICA.md:95-110): pause, restart a replica,
    resume through it before anything asked it for the state.  The documented answer is
    200 ``running``; every replica admits runs again afterwards.

    loomcycle v1.59.0 may answer 409 ``not_paused`` instead: ``Resume`` reads the
    replica's in-process state (manager.go:753, 775), a fresh process starts at
    ``running`` (manager.go:172-186) and learns the cluster's state only on its first
    ``State()`` (manager.go:193-229: a run admission, a ``GET /v1/_state``, a loop
    boundary), which a replica that only booted has not made.  That answer is accepted
    only with its signature (:func:`assert_stale_resume_signature`) and recorded as a
    known verdict; the resume is then repeated through the same replica, and must work.
    """
    cluster = await chaos_cluster_for(CONTROLS_SPEC)
    victim, _, issuer, controls, probes, ev = plan(cluster, chaos_history, chaos_prefix, chaos_rng)
    async with scenario_run(cluster, chaos_history, chaos_prefix) as run:
        try:
            await pause_cluster(controls, probes, issuer, cluster.replica_ids, ev)
            async with injected(await stop_replica(cluster, victim), chaos_history):
                pass
            await rejoin(cluster, victim)
            t0, ev.resumed_wall = time.monotonic(), time.time()
            first = await controls.resume(victim)
            said = await controls.state(victim)
            known: list[Verdict] = []
            if first.status == 200:
                ev.resume = first
                await resumed_everywhere(controls, probes, cluster.replica_ids, ev, t0)
            else:
                known.append(assert_stale_resume_signature(first, said, victim))
                await resume_cluster(controls, probes, victim, cluster.replica_ids, ev)
        finally:
            await ensure_resumed(controls, cluster.replica_ids)
        probe_results = await finish(run, probes)

    ev.note(chaos_history)
    print(
        f"resume through {victim} restarted while paused: {first.status} {first.body}; "
        f"its state then {said!r}; known: {[v.invariant for v in known]}"
    )
    assert_pause_and_resume(controls, ev, probe_results, chaos_prefix)
    verdicts = run.verdicts(allow_vacuous=[NO_CANCELS, NO_KILL])
    chaos_verdicts(verdicts, known=known)


def assert_stale_resume_signature(first: ControlCall, said: str | None, victim: str) -> Verdict:
    """The refusal is the stale in-process state's: 409 ``not_paused`` from the replica
    restarted during the pause, while its own ``GET /v1/_state`` right after says
    ``paused`` (the cluster's row).  Returns it as a failed verdict for the record."""
    code = first.body.get("code") if isinstance(first.body, dict) else None
    assert first.status == 409 and code == "not_paused", (
        f"the resume through {victim} failed, but not as a stale in-process state: {first}"
    )
    assert said == "paused", f"{victim} refused the resume, then said {said!r}: not stale"
    return Verdict.failed(
        RESUME_ANY_REPLICA,
        f"{victim}, restarted while the cluster was paused, refused POST /v1/_resume with "
        f"409 not_paused while its GET /v1/_state said paused",
        replica=victim,
        status=first.status,
        body=first.body,
        state_after=said,
    )
