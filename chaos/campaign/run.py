"""``run_campaign(opts)``: provision, resolve builds, run every leg, write the folder, judge.

Whatever happens (a leg error, Ctrl-C), the output folder keeps every row
written so far, ``summary.json`` is written with the exit code, the report
is rendered when the report package is there, and the verdict table is
printed last.  Returns the exit code (see :mod:`chaos.campaign.classify`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from chaos.campaign.builds import images_for
from chaos.campaign.classify import (
    Judged,
    exit_code,
    findings_by_invariant,
    judge,
    known_and_new,
    open_findings,
)
from chaos.campaign.data import OutputFolder, write_summary
from chaos.campaign.engine import LegResult, LegRunner
from chaos.campaign.measures import compare_intervals, merge_split
from chaos.campaign.options import CampaignOptions
from chaos.campaign.plan import Leg, estimate_s, plan_legs
from chaos.campaign.progress import CampaignProgress, verdict_table
from chaos.cluster.spec import ResolvedImages
from chaos.containers.settings import use_suite_settings
from chaos.labels import new_session_id

#: Where campaign folders go by default, relative to the working directory.
REPORTS = Path("reports")


def default_out_dir(campaign: str, now: dt.datetime | None = None) -> Path:
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    return REPORTS / "campaigns" / f"{campaign}-{stamp}"


def point_latest(out_dir: Path, reports: Path = REPORTS) -> str:
    """``reports/latest`` -> ``out_dir`` (replacing an older link, never a real folder)."""
    latest = reports / "latest"
    if latest.exists() and not latest.is_symlink():
        return f"{latest} is a folder, not a link: left alone"
    with contextlib.suppress(FileNotFoundError):
        latest.unlink()
    latest.symlink_to(os.path.relpath(out_dir.resolve(), latest.parent.resolve()))
    return f"{latest} -> {out_dir}"


def build_label(opts: CampaignOptions) -> str:
    if opts.campaign == "compare":
        return f"{opts.baseline_build} vs {opts.candidate_build}"
    return opts.build


def render(out_dir: Path) -> str:
    """Render the report if the report package is installed; never fails the campaign."""
    try:
        from chaos.campaign.report import render_report
    except ImportError as exc:
        return f"report not rendered: {exc}"
    try:
        html: Path = render_report(out_dir)
    except Exception as exc:
        return f"report not rendered: {type(exc).__name__}: {exc}"
    return f"report: {html}"


class CampaignRun:
    def __init__(self, opts: CampaignOptions, out_dir: Path, progress: CampaignProgress) -> None:
        self.opts = opts
        self.out_dir = out_dir
        self.progress = progress
        self.legs = plan_legs(opts)
        self.session_id = new_session_id()
        self.mono0 = time.monotonic()
        self.wall0 = time.time()
        self.results: list[LegResult] = []
        self.stop = asyncio.Event()

    async def _images(self) -> dict[str, ResolvedImages]:
        from chaos.provision import provision

        provisioned = await asyncio.to_thread(provision, progress=self.progress.note)
        images: dict[str, ResolvedImages] = {}
        for build in dict.fromkeys(leg.build for leg in self.legs):
            self.progress.status(f"build {build}: resolving its image")
            images[build] = await asyncio.to_thread(
                images_for, build, provisioned, self.progress.note
            )
            self.progress.note(f"build {build}: {images[build].loomcycle}")
        return images

    async def run(self, out: OutputFolder) -> None:
        # The cluster's nodes are testcontainers objects: outside pytest nothing else
        # turns Ryuk off (it would pull its image) or pins the host and connection mode.
        use_suite_settings()
        images = await self._images()
        for leg in self.legs:
            runner = LegRunner(
                self.opts,
                leg,
                images[leg.build],
                out,
                self.progress,
                session_id=self.session_id,
                mono0=self.mono0,
                wall0=self.wall0,
            )
            self.results.append(runner.result)
            await runner.run(self.stop)

    def judged(self) -> list[Judged]:
        known = findings_by_invariant(open_findings())
        out: list[Judged] = []
        for result in self.results:
            for name in dict.fromkeys(n for n, _ in result.verdicts):
                mine = [v.to_dict() for n, v in result.verdicts if n == name]
                out.extend(judge(name, mine, known))
            if result.error is not None:
                out.append(Judged(result.leg.name, "campaign", False, "error", result.error))
        return out

    def summary(self, judged: Sequence[Judged], code: int, interrupted: bool) -> dict[str, Any]:
        known, new = known_and_new(judged)
        verdicts = [{"leg": name, **v.to_dict()} for r in self.results for name, v in r.verdicts]
        summary: dict[str, Any] = {
            "campaign": self.opts.campaign,
            "build": build_label(self.opts),
            "seed": self.opts.seed,
            "options": self.opts.as_dict(),
            "started_at_utc": dt.datetime.fromtimestamp(self.wall0, dt.UTC).isoformat(),
            "wall_s": round(time.monotonic() - self.mono0, 3),
            "load_split": merge_split(r.split for r in self.results),
            "load_split_by_leg": {r.leg.name: r.split for r in self.results},
            "cross_replica_circuit_share": _mean_share(self.results),
            "verdicts": verdicts,
            "known": known,
            "new": new,
            "exit_code": code,
            "interrupted": interrupted,
            "legs": [_leg_summary(r, self.out_dir) for r in self.results],
        }
        if self.opts.campaign == "compare":
            summary["comparison"] = [i.to_dict() for i in self._intervals()]
        return summary

    def _intervals(self) -> list[Any]:
        rows = {r.leg.name: r.waves for r in self.results if r.error is None}
        sides = {r.leg.name: r.leg.side for r in self.results}
        return compare_intervals(rows, sides)


def _mean_share(results: Sequence[LegResult]) -> float | None:
    """The legs' cross-replica circuit share, averaged; None without circuits."""
    shares = [r.cross_circuit_share for r in results if r.cross_circuit_share is not None]
    return sum(shares) / len(shares) if shares else None


def _leg_summary(result: LegResult, out_dir: Path) -> dict[str, Any]:
    leg: Leg = result.leg
    return {
        "name": leg.name,
        "build": leg.build,
        "side": leg.side,
        "replicas": leg.replicas,
        "waves": len(result.waves),
        "cross_replica_circuit_share": result.cross_circuit_share,
        "error": result.error,
        "notes": result.notes[-5:],
        # Relative, so the folder can be moved or committed (histories/ is left out then).
        "histories": [os.path.relpath(h, out_dir) for h in result.histories],
    }


def run_campaign(opts: CampaignOptions, *, stream: Any = None) -> int:
    """Run the campaign in ``opts``; print progress, the report path and the verdicts."""
    out_dir = opts.out or default_out_dir(opts.campaign)
    console_stream = stream if stream is not None else sys.stdout
    legs = plan_legs(opts)
    planned = estimate_s(legs, opts.latency_ms / 1000.0)
    title = f"{opts.campaign} ({build_label(opts)})"
    interrupted = False
    with CampaignProgress(title, planned, stream=console_stream) as progress:
        progress.note(f"campaign {title}: {len(legs)} leg(s), seed {opts.seed}, out {out_dir}")
        campaign = CampaignRun(opts, out_dir, progress)
        with OutputFolder(out_dir) as out:
            try:
                asyncio.run(campaign.run(out))
            except KeyboardInterrupt:
                interrupted = True
                progress.note("interrupted: clusters torn down; writing what was collected")
    judged = campaign.judged()
    code = exit_code(judged, strict=opts.strict, interrupted=interrupted)
    write_summary(out_dir, campaign.summary(judged, code, interrupted))
    console = Console(file=console_stream)
    for interval in campaign._intervals() if opts.campaign == "compare" else []:
        console.print(
            f"compare {interval.metric}: candidate - baseline = {interval.diff:.3f} "
            f"[{interval.low:.3f}, {interval.high:.3f}] ({interval.confidence:.0%} CI, "
            f"n={interval.n_baseline}+{interval.n_candidate})",
            markup=False,
            highlight=False,
        )
    console.print(render(out_dir), markup=False, highlight=False)
    if opts.out is None:
        console.print(point_latest(out_dir), markup=False, highlight=False)
    console.print(f"data: {out_dir}", markup=False, highlight=False)
    verdict_table(judged, console)
    known, new = known_and_new(judged)
    console.print(
        f"exit {code}: {len(new)} new breach(es)"
        + (f", known findings {', '.join(known)}" if known else "")
        + (" (strict)" if opts.strict else ""),
        markup=False,
        highlight=False,
    )
    return code
