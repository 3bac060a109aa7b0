"""Measure provisioning: a cold run, then a warm one, time per step.

Cold means the local images (``<namespace>/*``) and the debootstrap root are
removed first; the Go caches and binaries stay (pass ``--cold-go`` to drop
them too, as on a fresh machine).  The warm run right after must rebuild
nothing and take seconds.

    python scripts/bench_setup.py                 # cold then warm
    python scripts/bench_setup.py --warm-only     # just time a run as things are

To measure without disturbing images others are using, point it at a private
namespace and cache:  LOOMCHAOS_IMAGE_NAMESPACE=lcbench LOOMCHAOS_CACHE=/tmp/lcbench ...
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time

import docker
import docker.errors

from chaos.errors import SetupError
from chaos.provision import Provisioned, format_summary, provision
from chaos.provision.common import cache_dir
from chaos.provision.images import base_tag, local_tag
from chaos.provision.localbuild import prune_replaced


def make_cold(drop_go: bool) -> list[str]:
    """Remove the local images and the rootfs; return what could not be removed."""
    kept: list[str] = []
    client = docker.from_env(timeout=120)
    try:
        # Children before the base: an image with dependants cannot be removed.
        roles = ("loomcycle", "toxiproxy", "nginx", "postgres")
        for tag in [*(local_tag(role) for role in roles), base_tag()]:
            try:
                client.images.remove(tag)
            except docker.errors.ImageNotFound:
                pass
            except docker.errors.APIError as exc:
                kept.append(f"{tag}: {exc.explanation}")
        prune_replaced(client)
    finally:
        client.close()
    cache = cache_dir()
    shutil.rmtree(cache / "rootfs", ignore_errors=True)
    if drop_go:
        for sub in ("go", "bin"):
            shutil.rmtree(cache / sub, ignore_errors=True)
    return kept


def timed_run() -> tuple[Provisioned, float]:
    started = time.monotonic()
    result = provision("local", progress=lambda line: print(f"  .. {line}", flush=True))
    return result, time.monotonic() - started


def table(runs: list[tuple[str, Provisioned, float]]) -> str:
    steps: list[str] = []
    for _, result, _ in runs:
        steps += [s for s in result.timings if s not in steps]
    header = f"{'step':<20}" + "".join(f"{name:>10}" for name, _, _ in runs)
    lines = [header, "-" * len(header)]
    for step in steps:
        cells = "".join(
            f"{result.timings[step]:>9.1f}s" if step in result.timings else f"{'-':>10}"
            for _, result, _ in runs
        )
        lines.append(f"{step:<20}{cells}")
    lines.append(f"{'total (wall)':<20}" + "".join(f"{wall:>9.1f}s" for _, _, wall in runs))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--warm-only", action="store_true", help="skip the cold run")
    parser.add_argument("--cold-go", action="store_true", help="also drop Go caches and binaries")
    args = parser.parse_args()
    runs: list[tuple[str, Provisioned, float]] = []
    try:
        if not args.warm_only:
            kept = make_cold(args.cold_go)
            for line in kept:
                print(f"not removed (so not fully cold): {line}")
            print("cold run:")
            result, wall = timed_run()
            runs.append(("cold", result, wall))
        print("warm run:")
        result, wall = timed_run()
        runs.append(("warm", result, wall))
    except SetupError as exc:
        print(f"loomchaos setup: {exc}", file=sys.stderr)
        return 2
    print(format_summary(runs[-1][1]))
    print()
    print(table(runs))
    for name, result, _ in runs:
        print(f"{name} rebuilt: {', '.join(result.rebuilt) or 'nothing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
