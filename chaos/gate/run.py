"""The repetitions: every build runs the gate scenarios once per seed, builds interleaved.

Repetition ``i`` runs the candidate and then the baseline with seed ``i``
(the first seed is the one given, so ``--reps 1 --seed S`` is the pytest run
``--chaos-seed=S``).  Interleaving spreads a machine's slow minutes over both
builds instead of charging them to one.  A build whose run has no test that
passed is started on its own (:mod:`chaos.mutants.probe`): one that never
gets healthy is an environment failure, not a finding.

``jobs`` > 1 runs that many sessions side by side (each its own clusters,
sweeps and artifacts: nothing is shared but the engine), in the same order.
Most of a scenario's wall time is the target's own clock (a reap waits out the
stale threshold and a sweep) with the CPU idle, so sessions overlap well; the
Docker lock is then taken once around all of them (an flock held by one thread
would block the others).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from chaos.errors import SetupError
from chaos.gate.builds import Build
from chaos.mutants.probe import Start, StartResult
from chaos.mutants.scenarios import ScenarioRun, ScenarioRunner, run_from_dict, run_to_dict
from chaos.seeds import stream_seed


class Prober(Protocol):
    def probe(self, image: str) -> StartResult: ...


def rep_seeds(seed: int, reps: int) -> list[int]:
    """``reps`` seeds derived from one: the first is ``seed`` itself."""
    if reps < 1:
        raise SetupError("--reps must be at least 1")
    return [seed] + [stream_seed(seed, f"gate-rep-{i}") for i in range(2, reps + 1)]


@dataclass
class Repetitions:
    runner: ScenarioRunner
    prober: Prober
    seeds: Sequence[int]
    out_dir: Path
    #: What a saved run depends on besides build and seed: the scenarios and the suite's config.
    context: str
    reuse: bool = False
    lock: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext
    progress: Callable[[str], None] = print
    #: Called with each run's folder once it is written (the gate redacts secrets there).
    after_run: Callable[[Path], object] = lambda folder: None
    #: Sessions run side by side.
    jobs: int = 1
    runs: dict[str, list[ScenarioRun]] = field(default_factory=dict)

    def _key(self, build: Build, seed: int) -> str:
        text = "\0".join((build.image_id, str(seed), self.context))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _folder(self, build: Build, rep: int) -> Path:
        return self.out_dir / build.slug / f"rep-{rep}"

    def _reused(self, build: Build, rep: int, seed: int) -> ScenarioRun | None:
        if not self.reuse:
            return None
        try:
            meta = json.loads((self._folder(build, rep) / "meta.json").read_text())
        except (OSError, ValueError):
            return None
        return run_from_dict(meta["run"]) if meta.get("key") == self._key(build, seed) else None

    def _healthy_or_raise(self, build: Build, run: ScenarioRun, folder: Path) -> None:
        if not run.tests:
            raise SetupError(
                f"{build.label}: pytest wrote no results (exit {run.returncode}); "
                f"see {folder / 'pytest.log'}"
            )
        if any(t.outcome == "passed" for t in run.tests.values()):
            return
        start = self.prober.probe(build.image)
        if start.start is not Start.HEALTHY:
            raise SetupError(f"{build.label} never got healthy: {start.detail}")

    def one(self, build: Build, rep: int, seed: int, *, locked: bool = False) -> ScenarioRun:
        """One session of ``build`` (``locked``: the caller holds the Docker lock)."""
        run = self._reused(build, rep, seed)
        if run is not None:
            self.progress(f"{build.label} rep {rep}: reused ({len(run.tests)} tests)")
            return run
        folder = self._folder(build, rep)
        with contextlib.nullcontext() if locked else self.lock():
            self.progress(f"{build.label} rep {rep}: scenarios (seed {seed})")
            run = self.runner.run(build.image, seed, folder)
            self._healthy_or_raise(build, run, folder)
        meta = {"key": self._key(build, seed), "seed": seed, "run": run_to_dict(run)}
        (folder / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
        self.after_run(folder)
        failing = sum(t.outcome in ("failed", "error") for t in run.tests.values())
        self.progress(f"{build.label} rep {rep}: {failing} failing in {run.seconds:.0f}s")
        return run

    def run(self, builds: Sequence[Build]) -> dict[str, list[ScenarioRun]]:
        """Every build's runs by label, in seed order."""
        order = [
            (build, rep, seed) for rep, seed in enumerate(self.seeds, start=1) for build in builds
        ]
        if self.jobs <= 1:
            done = [self.one(build, rep, seed) for build, rep, seed in order]
        else:
            with self.lock():
                done = self._side_by_side(order)
        self.runs = {b.label: [] for b in builds}
        for (build, _, _), run in zip(order, done, strict=True):
            self.runs[build.label].append(run)
        return self.runs

    def _side_by_side(self, order: Sequence[tuple[Build, int, int]]) -> list[ScenarioRun]:
        """``order``'s sessions, ``jobs`` at a time; the first error stops starting more
        (sessions already running finish: their subprocess cleans up after itself)."""
        with ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="gate-run") as pool:
            futures = [pool.submit(self.one, b, rep, seed, locked=True) for b, rep, seed in order]
            try:
                return [f.result() for f in futures]
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
