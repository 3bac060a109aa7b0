#!/usr/bin/env python3
"""Time an infrastructure cluster's life: start-up, reset, teardown.

Starts Postgres + Toxiproxy + nginx (no replicas: the target cannot be had on
every machine) from images already on the engine, then measures

* ``start``: create network, volume and containers, and verify readiness;
* ``reset (clean)``: reset of a healthy cluster (what every reused test pays);
* ``reset (after faults)``: reset after Postgres was stopped, nginx paused and
  a proxy disabled (what a test that broke things pays);
* ``teardown``: removal of everything labelled with the cluster.

Usage: ``python scripts/bench_cluster.py [--rounds 3] [--replicas 3] [--nofile 16384]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time

from chaos.cluster import Cluster
from chaos.cluster.spec import ClusterSpec, NginxSpec, ResolvedImages
from chaos.errors import SetupError
from chaos.labels import new_session_id


def _images() -> ResolvedImages:
    ns = os.environ.get("LOOMCHAOS_IMAGE_NAMESPACE", "loomchaos")
    return ResolvedImages(
        f"{ns}/postgres:local", f"{ns}/nginx:local", f"{ns}/toxiproxy:local", None
    )


async def _round(spec: ClusterSpec, session: str) -> dict[str, float]:
    cluster = Cluster(spec, _images(), session_id=session)
    times: dict[str, float] = {}
    try:
        began = time.monotonic()
        await cluster.start(with_replicas=False)
        times["start"] = time.monotonic() - began
        times["reset (clean)"] = await cluster.reset()
        await cluster.stop_node("postgres")
        await cluster.pause_node("nginx")
        await cluster.toxiproxy.set_enabled("pg_r1", False)
        times["reset (after faults)"] = await cluster.reset()
    finally:
        began = time.monotonic()
        await cluster.teardown()
        times["teardown"] = time.monotonic() - began
    return times


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--replicas", type=int, default=3, help="sets the number of proxies")
    parser.add_argument(
        "--nofile", type=int, default=16384, help="nginx file limit (engine must allow it)"
    )
    args = parser.parse_args(argv)
    spec = ClusterSpec(
        replicas=args.replicas,
        nginx=NginxSpec(nofile=args.nofile, worker_rlimit_nofile=args.nofile),
    )
    session = new_session_id()
    results: list[dict[str, float]] = []
    for i in range(max(1, min(args.rounds, 20))):
        try:
            results.append(await _round(spec, session))
        except SetupError as exc:
            print(f"bench_cluster: {exc}", file=sys.stderr)
            return 3
        print(f"round {i + 1}: " + ", ".join(f"{k} {v:.2f}s" for k, v in results[-1].items()))
    print(f"\ninfrastructure cluster, {args.replicas} replica slots, {len(results)} rounds")
    print(f"{'phase':<22}{'median':>9}{'min':>9}{'max':>9}")
    for phase in results[0]:
        values = [r[phase] for r in results]
        print(
            f"{phase:<22}{statistics.median(values):>8.2f}s{min(values):>8.2f}s{max(values):>8.2f}s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(sys.argv[1:])))
