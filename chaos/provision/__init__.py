"""Make this machine able to start clusters: engine, Go binaries, images.

:func:`provision` is one idempotent call.  On a fresh machine (CI: root, no
engine) it installs and starts everything, a few minutes; on a second run it
finds everything current and returns in seconds, rebuilding nothing.  It
blocks: call it from set-up code, or through ``asyncio.to_thread``.

The target itself may be unobtainable here (its module is refused by the Go
proxy): that is reported in ``Provisioned.loomcycle_error`` with the exact
error, not raised, so the infrastructure can still be used and tests that need
the target can skip with that reason.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import docker

from chaos.cluster.spec import Images, ResolvedImages
from chaos.errors import SetupError
from chaos.provision.binaries import ensure_loomcycle, ensure_toxiproxy
from chaos.provision.common import Progress, cache_dir, provision_lock
from chaos.provision.engine import EngineInfo, ensure_engine
from chaos.provision.images import (
    ENV_LOOMCYCLE_IMAGE,
    base_tag,
    choose_source,
    ensure_present,
    image_names,
    resolve_images,
)
from chaos.provision.localbuild import Recipe, ensure_base, ensure_recipe, prune_replaced

__all__ = [
    "EngineInfo",
    "Provisioned",
    "format_summary",
    "loomcycle_unavailable_reason",
    "provision",
    "resolve_images",
]

_LOOMCYCLE_ERROR_FILE = "loomcycle-unavailable.txt"


@dataclass(frozen=True)
class Provisioned:
    """What :func:`provision` found or made.

    ``images.loomcycle`` is None exactly when ``loomcycle_error`` says why.
    ``rebuilt`` names what this run installed or built (empty on a warm run).
    """

    engine: EngineInfo
    images: ResolvedImages
    loomcycle_error: str | None
    timings: dict[str, float] = field(default_factory=dict)
    source: str = "local"
    rebuilt: tuple[str, ...] = ()
    toxiproxy_bin: Path | None = None
    loomcycle_bin: Path | None = None


@contextlib.contextmanager
def _timed(timings: dict[str, float], step: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        timings[step] = round(time.monotonic() - started, 3)


@dataclass
class _Run:
    """Mutable state of one provisioning run, frozen into :class:`Provisioned` at the end."""

    cache: Path
    progress: Progress
    client: docker.DockerClient
    timings: dict[str, float] = field(default_factory=dict)
    rebuilt: list[str] = field(default_factory=list)
    toxiproxy_bin: Path | None = None
    loomcycle_bin: Path | None = None
    loomcycle_error: str | None = None


def _provision_local(run: _Run, names: ResolvedImages, env: Mapping[str, str]) -> ResolvedImages:
    with _timed(run.timings, "toxiproxy binary"):
        run.toxiproxy_bin, built = ensure_toxiproxy(run.cache, run.progress)
        if built:
            run.rebuilt.append("toxiproxy-server binary")
    target_override = env.get(ENV_LOOMCYCLE_IMAGE)
    if not target_override:
        with _timed(run.timings, "loomcycle binary"):
            binary = ensure_loomcycle(run.cache, run.progress, env)
            run.loomcycle_bin, run.loomcycle_error = binary.path, binary.error
            if binary.rebuilt:
                run.rebuilt.append("loomcycle binary")
    base = base_tag(env)
    with _timed(run.timings, "base image"):
        base_id, built = ensure_base(run.client, base, run.cache, run.progress)
        if built:
            run.rebuilt.append(base)
    recipes = [
        Recipe("postgres", names.postgres),
        Recipe("nginx", names.nginx),
        Recipe("toxiproxy", names.toxiproxy, (("toxiproxy-server", run.toxiproxy_bin),)),
    ]
    if run.loomcycle_bin is not None and names.loomcycle is not None:
        recipes.append(Recipe("loomcycle", names.loomcycle, (("loomcycle", run.loomcycle_bin),)))
    for recipe in recipes:
        with _timed(run.timings, f"{recipe.name} image"):
            if ensure_recipe(run.client, recipe, base, base_id, run.cache, run.progress):
                run.rebuilt.append(recipe.tag)
    if run.rebuilt:
        prune_replaced(run.client)
    if target_override:
        _use_target_image(run, target_override)
        return names
    has_target = run.loomcycle_bin is not None
    return names if has_target else _without_target(names)


def _provision_public(run: _Run, names: ResolvedImages) -> ResolvedImages:
    for role, ref in (
        ("postgres", names.postgres),
        ("nginx", names.nginx),
        ("toxiproxy", names.toxiproxy),
    ):
        with _timed(run.timings, f"{role} image"):
            if ensure_present(run.client, ref, run.progress):
                run.rebuilt.append(ref)
    assert names.loomcycle is not None  # image_names always names one
    _use_target_image(run, names.loomcycle)
    return names if run.loomcycle_error is None else _without_target(names)


def _use_target_image(run: _Run, ref: str) -> None:
    """Check the target image is there (pull if not); a failure is reported, not raised."""
    with _timed(run.timings, "loomcycle image"):
        try:
            if ensure_present(run.client, ref, run.progress):
                run.rebuilt.append(ref)
        except SetupError as exc:
            run.loomcycle_error = str(exc)


def _without_target(names: ResolvedImages) -> ResolvedImages:
    return ResolvedImages(names.postgres, names.nginx, names.toxiproxy, loomcycle=None)


def _record_loomcycle_error(cache: Path, error: str | None) -> None:
    path = cache / _LOOMCYCLE_ERROR_FILE
    if error is None:
        path.unlink(missing_ok=True)
    else:
        path.write_text(error + "\n")


def loomcycle_unavailable_reason(env: Mapping[str, str] | None = None) -> str | None:
    """Why the last provisioning on this machine had no loomcycle, or None if it had one.

    Lets code that needs the target (and finds no image) say the real reason
    in its ``TargetUnavailable``/skip line without re-running provisioning.
    """
    path = cache_dir(env) / _LOOMCYCLE_ERROR_FILE
    return path.read_text().strip() if path.is_file() else None


def provision(source: str | None = None, *, progress: Progress = print) -> Provisioned:
    """Install, start, build or reuse everything a cluster needs; idempotent.

    ``source`` is ``local`` or ``public`` (default: ``$LOOMCHAOS_IMAGE_SOURCE``,
    else ``local``).  Raises :class:`SetupError` (one line, naming a log file)
    when something the infrastructure needs cannot be had.
    """
    env = dict(os.environ)
    chosen = choose_source(source, env)
    names = image_names(chosen, Images(source=chosen), env)
    cache = cache_dir(env)
    timings: dict[str, float] = {}
    with _timed(timings, "engine"):
        engine = ensure_engine(progress)
    waiting_since = time.monotonic()
    with provision_lock(cache):
        timings["waiting for lock"] = round(time.monotonic() - waiting_since, 3)
        client = docker.from_env(timeout=1800)  # builds can be silent for minutes
        try:
            run = _Run(cache=cache, progress=progress, client=client, timings=timings)
            if chosen == "local":
                images = _provision_local(run, names, env)
            else:
                images = _provision_public(run, names)
        finally:
            client.close()
        _record_loomcycle_error(cache, run.loomcycle_error)
    return Provisioned(
        engine=engine,
        images=images,
        loomcycle_error=run.loomcycle_error,
        timings=timings,
        source=chosen,
        rebuilt=tuple(run.rebuilt),
        toxiproxy_bin=run.toxiproxy_bin,
        loomcycle_bin=run.loomcycle_bin,
    )


def format_summary(p: Provisioned) -> str:
    """A few human lines: engine, images, the target's status, what was rebuilt, step times."""
    if p.engine.started_by_us:
        engine = f"started by loomchaos (pid {p.engine.pid}, log {p.engine.log_path})"
    else:
        engine = "already running"
    lines = [
        f"engine:    Docker {p.engine.server_version} at {p.engine.docker_host}, {engine}",
        f"images:    ({p.source}) postgres={p.images.postgres} nginx={p.images.nginx} "
        f"toxiproxy={p.images.toxiproxy}",
    ]
    if p.images.loomcycle is not None:
        lines.append(f"loomcycle: {p.images.loomcycle}")
    else:
        lines.append(f"loomcycle unavailable: {p.loomcycle_error or 'no image'}")
    lines.append("rebuilt:   " + (", ".join(p.rebuilt) if p.rebuilt else "nothing (all reused)"))
    steps = ", ".join(f"{name} {secs:.1f}s" for name, secs in p.timings.items())
    lines.append(f"timings:   {steps} (total {sum(p.timings.values()):.1f}s)")
    return "\n".join(lines)
