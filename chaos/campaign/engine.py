"""Running a campaign: legs one after another, each on its own cluster, data written as it comes.

One leg is one cluster lifetime: start and verify the cluster, apply replica
limits, then inside the scenario frame (``scenario_run``: bounds recorded,
database sampled, audit triggers) run the leg's phases with the phase engine
and the single-agent workload through the load balancer, with the resource
sampler beside it and, for ``faults``, the injectors; then converge and run
every checker.  The cluster is torn down whatever happens (the ``async with``
and the cluster's own exit hook).  A leg that errors is recorded as a failed
``campaign`` verdict of that leg and the next leg still runs.

A leg without cluster mode (the baseline, write-up experiment 1) starts the same
cluster with one node launched as a single binary (:class:`SingleBinaryAdapter`:
no replica id, so no coord), has no backplane to verify, drives the process at
its own port instead of through nginx (the write-up drove the binary directly),
and reports the cluster-only checkers as not applicable (:mod:`chaos.campaign.modes`).
"""

from __future__ import annotations

import asyncio
import math
import time
import traceback
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.campaign.data import OutputFolder
from chaos.campaign.faults import kill_one, reap_rows, send_cancels
from chaos.campaign.measures import (
    cancel_samples,
    completed_circuits,
    load_split,
    merge_split,
    wave_row,
)
from chaos.campaign.modes import judged_checks, with_not_applicable
from chaos.campaign.options import CampaignOptions, PhaseSpec
from chaos.campaign.plan import Leg, segments
from chaos.campaign.progress import CampaignProgress
from chaos.campaign.replicas import ResourceSampler, apply_limits
from chaos.checks import ALL_CHECKS
from chaos.cluster.cluster import Cluster
from chaos.cluster.spec import ResolvedImages
from chaos.cluster.view import client_for
from chaos.errors import SetupError
from chaos.record.history import History
from chaos.record.vocabulary import FAULT_KILL
from chaos.seeds import FAULTS, stream
from chaos.sut.base import RunClient
from chaos.sut.loomcycle import LoomcycleAdapter
from chaos.sut.loomcycle.campaign import (
    GaugeReader,
    SingleBinaryAdapter,
    campaign_spec,
    read_circuit_outputs,
    sabotage_completed_run,
)
from chaos.sut.loomcycle.hooks import verify_backplane, wait_idle
from chaos.sut.loomcycle.ports import gated_policy, replica_clients, scenario_run
from chaos.sut.loomcycle.settings import settings_of
from chaos.verdict import Verdict
from chaos.workload import (
    CircuitPool,
    CircuitWorkload,
    DrainResult,
    Driver,
    Phase,
    PhaseEngine,
    SingleAgentWorkload,
    WaveSummary,
    Workload,
)

#: Invariants a leg cannot give evidence for, and why (allowed vacuous only then).
NO_CANCEL = "cancel_classification"  # no cancel sent: no answer to classify
NO_RECOVERY = "bounded_recovery"  # no kill and no cancel: nothing to time


@dataclass
class LegResult:
    leg: Leg
    waves: list[dict[str, Any]] = field(default_factory=list)
    #: (segment name, verdict): the leg's name unless the leg is judged in segments.
    verdicts: list[tuple[str, Verdict]] = field(default_factory=list)
    split: dict[str, int] = field(default_factory=dict)
    #: Circuits whose runs landed on more than one replica (load_spread's evidence).
    cross_circuit_share: float | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    histories: list[Path] = field(default_factory=list)


def engine_phases(phases: tuple[PhaseSpec, ...]) -> list[Phase]:
    """The phase engine's phases: a burst is one wave, a timed phase repeats waves."""
    return [
        Phase(p.scale, math.inf, name=p.name, max_waves=1)
        if p.duration_s is None
        else Phase(p.scale, p.duration_s, name=p.name)
        for p in phases
    ]


def allowed_vacuous(leg: Leg, *, faults: bool = True) -> list[str]:
    """What the leg (or a later segment of it, ``faults=False``: the faults ran in the
    first) cannot give evidence for."""
    allowed = []
    if leg.cancels == 0 or not faults:
        allowed.append(NO_CANCEL)
        if not leg.kill or not faults:
            allowed.append(NO_RECOVERY)
    return allowed


def entry_url(cluster: Cluster, leg: Leg) -> str:
    """Where the leg's load goes: the load balancer, or the single binary's own port."""
    if leg.cluster_mode:
        return cluster.lb_url
    (only,) = cluster.replica_ids
    return cluster.replica_url(only)


@asynccontextmanager
async def entry_client(cluster: Cluster, leg: Leg) -> AsyncIterator[RunClient]:
    client = client_for(cluster, entry_url(cluster, leg))
    try:
        yield client
    finally:
        await client.aclose()


def _cross_share(verdicts: list[Verdict]) -> float | None:
    for v in verdicts:
        share = v.evidence.get("cross_replica_circuit_share")
        if v.invariant == "load_spread" and isinstance(share, int | float):
            return float(share)
    return None


class LegRunner:
    """Runs one leg; ``t()`` is seconds since the campaign started (the CSVs' clock)."""

    def __init__(
        self,
        opts: CampaignOptions,
        leg: Leg,
        images: ResolvedImages,
        out: OutputFolder,
        progress: CampaignProgress,
        *,
        session_id: str,
        mono0: float,
        wall0: float,
    ) -> None:
        self.opts = opts
        self.leg = leg
        self.images = images
        self.out = out
        self.progress = progress
        self.session_id = session_id
        self.mono0 = mono0
        self.wall0 = wall0
        self.result = LegResult(leg)
        self.prefix = f"k{session_id[:6]}l{leg.index}"
        self._wave_no = 0
        self._cursor = 0

    def t(self) -> float:
        return time.monotonic() - self.mono0

    def _spec(self) -> Any:
        o = self.opts
        return campaign_spec(
            replicas=self.leg.replicas,
            latency_ms=o.latency_ms,
            jitter_ms=o.jitter_ms,
            per_user_cap=o.per_user_cap,
            max_concurrent_runs=o.max_concurrent_runs,
            pg_settings=dict(o.pg_settings),
            replica_env=dict(o.replica_env),
            circuits=self._circuit_ids(),
        )

    def _circuit_ids(self) -> int:
        """Circuit ids to declare at boot: one per circuit of the leg, never reused."""
        if self.opts.workload != "circuit":
            return 0
        return sum(p.scale for p in self.leg.phases)

    def _workload(self, history: History) -> Workload:
        prompt = f"loomchaos campaign {self.opts.campaign}"
        if self.opts.workload != "circuit":
            return SingleAgentWorkload(prompt=prompt)

        async def no_drain(circuit: int) -> DrainResult:
            # Every id is declared at boot for this leg and leased once: none is reused.
            raise SetupError(f"circuit c{circuit} would be reused; a campaign never reuses one")

        pool = CircuitPool(range(1, self._circuit_ids() + 1), no_drain, history, fresh=True)
        return CircuitWorkload(pool, circuits_per_user=self.opts.per_user_cap // 3)

    def _sample(self, row: dict[str, Any]) -> None:
        self.out.samples.add({"campaign": self.opts.campaign, "build": self.leg.build, **row})

    def _on_wave(self, history: History) -> Callable[[WaveSummary], None]:
        def on_wave(summary: WaveSummary) -> None:
            records = history.records[self._cursor :]
            self._cursor += len(records)
            self._wave_no += 1
            row = wave_row(
                summary,
                records,
                campaign=self.opts.campaign,
                build=self.leg.build,
                replicas=self.leg.replicas,
                started_at=self.t() - summary.wall_s,
            )
            row["wave"] = self._wave_no
            self.out.waves.add(row)
            self.result.waves.append(row)
            p99 = row["p99_ms"]
            self.progress.status(
                f"{self.leg.name} {summary.phase} wave {self._wave_no} x{summary.scale}: "
                f"{summary.completed}/{summary.launched} completed in {summary.wall_s:.1f}s"
                + ("" if p99 is None else f", p99 {p99 / 1000:.2f}s")
                + (" (TIMED OUT)" if summary.timed_out else "")
            )
            self.progress.done_until(self.t())

        return on_wave

    async def run(self, stop: asyncio.Event) -> LegResult:
        leg = self.leg
        self.progress.note(
            f"leg {leg.name}: build {leg.build}, {leg.replicas} replica(s), phases "
            + ", ".join(
                f"{p.name} x{p.scale}" + ("" if p.duration_s is None else f" for {p.duration_s:g}s")
                for p in leg.phases
            )
        )
        spec = self._spec()
        single = not leg.cluster_mode
        cluster = Cluster(
            spec,
            self.images,
            session_id=self.session_id,
            adapter=(SingleBinaryAdapter if single else LoomcycleAdapter).for_spec(spec),
            # Without cluster mode there is no backplane to prove.
            verify_backplane=None if single else verify_backplane,
            wait_idle=wait_idle,
        )
        try:
            async with cluster:
                await cluster.start()
                self.progress.note(
                    f"leg {leg.name}: cluster {cluster.id} ready"
                    + ("" if leg.cluster_mode else " (single binary, no cluster mode)")
                )
                await apply_limits(
                    cluster, [(r, lim) for r, lim in self.opts.limits if r in cluster.replica_ids]
                )
                await self._load(cluster, stop)
        except Exception as exc:
            self.result.error = f"{type(exc).__name__}: {exc}"[:500]
            self.progress.note(f"leg {leg.name} failed: {self.result.error}")
            self.result.notes.append(traceback.format_exc(limit=8))
        return self.result

    async def _load(self, cluster: Cluster, stop: asyncio.Event) -> None:
        parts = segments(self.leg.phases, self.leg.segment_s)
        for k, phases in enumerate(parts):
            if stop.is_set():
                break
            name = self.leg.name if len(parts) == 1 else f"{self.leg.name}-s{k + 1}"
            prefix = self.prefix if len(parts) == 1 else f"{self.prefix}s{k + 1}"
            await self._segment(cluster, stop, name, prefix, phases, faults=k == 0)

    async def _segment(
        self,
        cluster: Cluster,
        stop: asyncio.Event,
        name: str,
        prefix: str,
        phases: tuple[PhaseSpec, ...],
        *,
        faults: bool,
    ) -> None:
        """One scenario frame: load (and faults), convergence, every checker's verdict."""
        leg, opts = self.leg, self.opts
        history = History(
            seed=opts.seed,
            meta={"campaign": opts.campaign, "leg": name, "build": leg.build},
        )
        self._cursor = 0
        rng = stream(opts.seed + leg.index, FAULTS)
        gauges = GaugeReader(settings_of(cluster.spec).auth_token)
        try:
            async with (
                scenario_run(cluster, history, prefix, sample_interval_s=opts.db_sample_s) as run,
                ResourceSampler(
                    cluster,
                    gauges,
                    self._sample,
                    campaign_t=self.t,
                    interval_s=opts.sample_interval_s,
                ),
                entry_client(cluster, leg) as lb,
            ):
                workload = self._workload(history)
                largest = max(p.scale for p in phases) * workload.runs_per_unit
                driver = Driver(
                    lb,
                    history,
                    policy=gated_policy(opts.per_user_cap),
                    launch_slots=largest,
                    run_timeout_s=opts.run_timeout_s,
                    name=f"campaign-{name}",
                )
                engine = PhaseEngine(
                    driver,
                    workload,
                    prefix=prefix,
                    stop=stop,
                    lag_interval_s=None,  # the scenario frame samples the loop's lag
                    on_wave=self._on_wave(history),
                )
                load = asyncio.create_task(engine.run(engine_phases(phases)))
                try:
                    if faults:
                        await self._faults(run, cluster, history, rng)
                    await load
                finally:
                    if not load.done():
                        load.cancel()
                    await asyncio.gather(load, return_exceptions=True)
                done = completed_circuits(history.records)
                if done:
                    token = settings_of(cluster.spec).auth_token
                    await read_circuit_outputs(entry_url(cluster, leg), token, history, done)
                if opts.sabotage:
                    sabotaged = await sabotage_completed_run(cluster.pg_dsn, prefix)
                    self.result.notes.append(f"sabotage: run {sabotaged} rewritten to failed")
                self.progress.status(f"{name}: converging")
                convergence = await run.converge()
                self.progress.note(
                    f"{name}: converged={convergence.converged} in {convergence.waited_s:.1f}s"
                )
            checks = list(ALL_CHECKS)
            verdicts = with_not_applicable(
                run.verdicts(
                    judged_checks(checks, leg.cluster_mode),
                    allow_vacuous=allowed_vacuous(leg, faults=faults),
                ),
                checks,
                leg.cluster_mode,
            )
            self.result.verdicts.extend((name, v) for v in verdicts)
            self.result.split = merge_split([self.result.split, load_split(convergence.final.runs)])
            share = _cross_share(verdicts)
            if share is not None:
                self.result.cross_circuit_share = share
            self._fault_rows(history, convergence.final.runs)
        finally:
            await gauges.aclose()
            saved = self._save(history, name)
            if saved is not None:
                self.result.histories.append(saved)

    async def _faults(self, run: Any, cluster: Cluster, history: History, rng: Any) -> None:
        leg = self.leg
        if leg.cancels:
            async with replica_clients(cluster) as clients:
                sent = await send_cancels(run, history, clients, rng, leg.cancels)
            self.progress.note(f"leg {leg.name}: {sent} cancel(s) sent through non-owners")
        if leg.kill:
            self.progress.status(f"{leg.name}: killing a replica, waiting for the reap")
            victim, owned, not_proven = await kill_one(run, cluster, history, rng)
            self.progress.note(
                f"leg {leg.name}: killed {victim} owning {len(owned)} running run(s); "
                + ("reap proven, rejoined" if not_proven is None else f"NOT proven: {not_proven}")
            )
            if not_proven is not None:
                self.result.notes.append(f"kill of {victim} not proven: {not_proven}")

    def _fault_rows(self, history: History, final_runs: Any) -> None:
        for sample in cancel_samples(history.records):
            self.out.cancels.add(
                {
                    "t": sample.mono - self.mono0,
                    "replica": sample.replica,
                    "ack_ms": None if sample.ack_s is None else sample.ack_s * 1000.0,
                    "outcome": sample.outcome,
                }
            )
        for window in history.fault_windows():
            if window.name == FAULT_KILL:
                for row in reap_rows(window, final_runs, self.wall0):
                    self.out.reap.add(row)

    def _save(self, history: History, name: str) -> Path | None:
        folder = self.out.root / "histories"
        folder.mkdir(exist_ok=True)
        try:
            return history.save(folder / f"{name}.jsonl")
        except OSError as exc:
            self.result.notes.append(f"history not saved: {exc}")
            return None
