"""The campaign loop: controls first, then each patch; every Docker and Go step injected.

For each patch: copy the pinned source, apply the patch, build (outside the
Docker lock: it only needs CPU), then, holding the lock for this one build,
make its image, run the scenarios (and, if none passed, probe whether the
build starts at all) and remove the image.
The unpatched control goes through the same steps ``controls`` times, so the
comparison sees the scenarios' own run-to-run range.

With ``reuse``, a result already in the output folder for the same patch
text, seed, scenarios and target version is read back instead of re-run (a
campaign can be resumed after an interruption); reused rows say so.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from chaos.errors import SetupError
from chaos.mutants.build import Builder, BuildResult
from chaos.mutants.classify import Classification, Fate, classify
from chaos.mutants.patches import Patch
from chaos.mutants.probe import Start, StartResult
from chaos.mutants.report import ControlSummary, MutantResult
from chaos.mutants.scenarios import ScenarioRun, ScenarioRunner, run_from_dict, run_to_dict
from chaos.mutants.workspace import PatchFailed, Workspace, apply_patch

CONTROL = "control"


class Prober(Protocol):
    def probe(self, image: str) -> StartResult: ...


class Images(Protocol):
    def make(self, binary: Path, name: str) -> str: ...

    def remove(self, tag: str) -> None: ...


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (the same lock ``flock(1)`` takes)."""
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Exercise:
    """One lock hold: the start probe (if it ran), the scenarios' run, and where the time went."""

    start: StartResult | None = None
    run: ScenarioRun | None = None
    probe_s: float = 0.0
    scenarios_s: float = 0.0
    lock_wait_s: float = 0.0


@dataclass
class Campaign:
    source: Path
    workspace: Workspace
    builder: Builder
    images: Images
    prober: Prober
    runner: ScenarioRunner
    seed: int
    out_dir: Path
    #: What the results depend on besides the patch: scenarios, target version.
    context: str
    controls: int = 2
    #: Mutants stop at their first failing test (controls never do: they are the baseline).
    #: One invariant failing where the controls pass is enough to kill; a result is
    #: reused whichever way it was run.
    stop_early: bool = True
    reuse: bool = False
    lock: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext
    progress: Callable[[str], None] = print
    control_runs: list[ScenarioRun] = field(default_factory=list)

    # -- one build, one lock hold ---------------------------------------------------------
    def _build(self, name: str, patch: Patch | None) -> tuple[BuildResult | None, str, float]:
        """Copy, patch and build; (result, why it could not be built, seconds)."""
        started = time.monotonic()
        tree = self.workspace.copy_source(self.source, name)
        if patch is not None:
            try:
                apply_patch(tree, patch)
            except PatchFailed as exc:
                return None, f"patch does not apply: {exc.output}", time.monotonic() - started
        result = self.builder.build(tree, self.workspace.binary_path(name))
        why = "" if result.ok else f"build failed: {result.error}"
        return result, why, time.monotonic() - started

    def _exercise(self, binary: Path, name: str, out: Path, stop_early: bool) -> Exercise:
        """Under the Docker lock: image, scenarios, a start probe if nothing passed, image removed.

        The probe costs a Postgres and a replica, so it runs only when no
        scenario passed: that is when "exited at start" (broken) and "never
        healthy" (detected) need telling apart.
        """
        waited = time.monotonic()
        with self.lock():
            lock_wait_s = time.monotonic() - waited
            tag = self.images.make(binary, name)
            try:
                self.progress(f"{name}: scenarios (seed {self.seed})")
                run = self.runner.run(tag, self.seed, out, stop_early)
                if any(t.outcome == "passed" for t in run.tests.values()):
                    return Exercise(None, run, 0.0, run.seconds, lock_wait_s)
                started = time.monotonic()
                start = self.prober.probe(tag)
                probe_s = time.monotonic() - started
                healthy = start.start is Start.HEALTHY
                return Exercise(start, run if healthy else None, probe_s, run.seconds, lock_wait_s)
            finally:
                self.images.remove(tag)

    # -- controls ---------------------------------------------------------------------------
    def _control_key(self, i: int) -> str:
        return _digest(CONTROL, str(i), str(self.seed), self.context)

    def _reused_control(self, i: int) -> ScenarioRun | None:
        out = self.out_dir / f"{CONTROL}-{i}"
        try:
            meta = json.loads((out / "meta.json").read_text())
        except (OSError, ValueError):
            return None
        if not self.reuse or meta.get("key") != self._control_key(i):
            return None
        return run_from_dict(meta["run"])

    def run_controls(self) -> list[ControlSummary]:
        binary: Path | None = None
        for i in range(1, self.controls + 1):
            run = self._reused_control(i)
            if run is None:
                if binary is None:
                    self.progress("control: building the unpatched source")
                    built, why, _ = self._build(CONTROL, None)
                    if built is None or built.binary is None:
                        raise SetupError(f"the unpatched control does not build: {why}")
                    binary = built.binary
                out = self.out_dir / f"{CONTROL}-{i}"
                done = self._exercise(binary, CONTROL, out, stop_early=False)
                if done.run is None:
                    detail = done.start.detail if done.start else ""
                    raise SetupError(f"the unpatched control does not start: {detail}")
                run = done.run
                out.mkdir(parents=True, exist_ok=True)
                meta = {"key": self._control_key(i), "run": run_to_dict(run)}
                (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
            if not run.tests:
                raise SetupError(f"control run {i} wrote no JUnit results (see its pytest.log)")
            self.progress(f"control {i}: {len(run.tests)} tests in {run.seconds:.0f}s")
            self.control_runs.append(run)
        return [summarize_control(r) for r in self.control_runs]

    # -- mutants ----------------------------------------------------------------------------
    def _mutant_key(self, patch: Patch) -> str:
        return _digest(patch.text, str(self.seed), self.context, str(self.controls))

    def _reused_mutant(self, patch: Patch) -> MutantResult | None:
        path = self.out_dir / patch.name / "result.json"
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if not self.reuse or data.pop("key", None) != self._mutant_key(patch):
            return None
        data["reused"] = True
        return MutantResult.from_dict(data)

    def judge(self, patch: Patch) -> MutantResult:
        if not self.control_runs:
            raise SetupError("run the controls before judging a mutant")
        reused = self._reused_mutant(patch)
        if reused is not None:
            self.progress(f"{patch.name}: reused {reused.fate.value} from {self.out_dir}")
            return reused
        started = time.monotonic()
        self.progress(f"{patch.name}: building")
        built, why, build_s = self._build(patch.name, patch)
        done = Exercise()
        if built is None or built.binary is None:
            verdict = Classification(Fate.BROKEN, (why,))
        else:
            done = self._exercise(
                built.binary, patch.name, self.out_dir / patch.name, self.stop_early
            )
            run = done.run
            verdict = _judge_start(done.start) if run is None else classify(run, self.control_runs)
        result = MutantResult(
            name=patch.name,
            description=patch.description,
            area=patch.area,
            changed_lines=patch.changed_lines,
            fate=verdict.fate,
            reasons=verdict.reasons,
            build_s=round(build_s, 1),
            lock_wait_s=round(done.lock_wait_s, 1),
            probe_s=round(done.probe_s, 1),
            scenarios_s=round(done.scenarios_s, 1),
            wall_s=round(time.monotonic() - started, 1),
            start=done.start.start.value if done.start else "",
            replay=done.run.command if done.run is not None else "",
        )
        folder = self.out_dir / patch.name
        folder.mkdir(parents=True, exist_ok=True)
        data = {"key": self._mutant_key(patch), **result.to_dict()}
        (folder / "result.json").write_text(json.dumps(data, indent=1) + "\n")
        self.progress(f"{patch.name}: {result.fate.value} in {result.wall_s:.0f}s")
        return result

    def run(self, patches: Sequence[Patch]) -> tuple[list[MutantResult], list[ControlSummary]]:
        controls = self.run_controls()
        return [self.judge(p) for p in patches], controls


def _judge_start(start: StartResult | None) -> Classification:
    if start is not None and start.start is Start.EXITED:
        return Classification(Fate.BROKEN, (f"exited before /healthz answered: {start.detail}",))
    detail = start.detail if start else "no scenario run"
    return Classification(Fate.KILLED, (f"never got healthy: {detail}",))


def summarize_control(run: ScenarioRun) -> ControlSummary:
    failing = [
        f"{test} {inv}"
        for test, obs in sorted(run.tests.items())
        for inv, v in obs.verdicts.items()
        if v.status == "fail"
    ]
    outcomes = {test: obs.outcome for test, obs in sorted(run.tests.items())}
    return ControlSummary(round(run.seconds, 1), run.returncode, outcomes, failing)
