#!/usr/bin/env python3
"""Measure the requests an nginx load balancer loses with a low open-files limit.

Reproduces the loss in loomcycle's write-up (nginx 500s under the default
``nofile=1024``) with real nginx: a front nginx under a low and then a high
file limit proxies ``--n`` concurrent slow requests to an upstream nginx (see
chaos/faults/nofile_rig.py), and a table shows how each request ended and
how many "Too many open files" lines the front logged.

The high setting defaults to 16384 because these machines cap every process
at 20000 open files; on a machine whose engine allows it, pass ``--high 65536``
(the write-up's value).  If the engine refuses the limit the script says so
in one line and exits 3.

Usage: ``python scripts/bench_nofile.py [--n 600] [--low 256] [--high 16384]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys

from chaos.bench.nofile_rig import (
    EMFILE_MARK,
    NGINX_IMAGE,
    NofileSetting,
    Outcome,
    nofile_rig,
    raise_own_nofile_limit,
)
from chaos.cluster.docker_ops import docker_client, remove_labelled
from chaos.cluster.spec import DEFAULT_NOFILE
from chaos.errors import SetupError
from chaos.labels import LABEL_SESSION, new_session_id

#: Bounds on what the command line may ask for: every loop here is bounded.
MAX_N = 5_000


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=600, help="concurrent requests per setting")
    parser.add_argument("--low", type=int, default=256, help="low nofile (the fault)")
    parser.add_argument("--low-worker-connections", type=int, default=1024)
    parser.add_argument(
        "--high", type=int, default=DEFAULT_NOFILE, help="high nofile (the fix; 65536 if allowed)"
    )
    parser.add_argument("--high-worker-connections", type=int, default=4096)
    parser.add_argument("--request-timeout", type=float, default=30.0, help="seconds per request")
    parser.add_argument("--deadline", type=float, default=45.0, help="seconds per setting")
    parser.add_argument("--image", default=os.environ.get("LOOMCHAOS_NGINX_IMAGE", NGINX_IMAGE))
    args = parser.parse_args(argv)
    if not 1 <= args.n <= MAX_N:
        parser.error(f"--n must be in 1..{MAX_N}")
    return args


def _table(outcomes: list[Outcome]) -> str:
    header = (
        f"{'setting':<8}{'nofile':>8}{'w_conn':>8}{'N':>6}{'ok':>6}{'5xx':>14}"
        f"{'refused/reset':>15}{'timeouts':>10}{'other':>7}{'loss %':>8}"
        f"{'EMFILE lines':>14}{'secs':>7}"
    )
    rows = [header, "-" * len(header)]
    for o in outcomes:
        codes = ",".join(f"{c}x{k}" for c, k in sorted(o.status_5xx.items())) or "0"
        rows.append(
            f"{o.setting.name:<8}{o.setting.nofile:>8}{o.setting.worker_connections:>8}"
            f"{o.n:>6}{o.ok:>6}{codes:>14}{o.refused_reset:>15}{o.timeouts:>10}"
            f"{sum(o.other.values()):>7}{o.loss_pct:>8.1f}{o.emfile_lines:>14}{o.seconds:>7.1f}"
        )
    return "\n".join(rows)


async def _run(args: argparse.Namespace, session: str) -> list[Outcome]:
    settings = [
        NofileSetting("low", args.low, args.low_worker_connections),
        NofileSetting("high", args.high, args.high_worker_connections),
    ]
    outcomes: list[Outcome] = []
    async with nofile_rig(session, args.image) as rig:
        for setting in settings:
            outcome = await rig.measure(
                setting, args.n, request_timeout=args.request_timeout, deadline=args.deadline
            )
            print(outcome.summary(), flush=True)
            outcomes.append(outcome)
    return outcomes


def main(argv: list[str]) -> int:
    args = _parse(argv)
    own = raise_own_nofile_limit()
    if own < args.n + 64:
        print(
            f"bench_nofile: this process may open only {own} files, fewer than --n {args.n} "
            "sockets: the driver would fail before nginx. Raise `ulimit -Hn` or lower --n",
            file=sys.stderr,
        )
        return 3
    session = new_session_id()
    try:
        outcomes = asyncio.run(_run(args, session))
    except SetupError as exc:
        print(f"bench_nofile: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("bench_nofile: interrupted; containers removed", file=sys.stderr)
        return 130
    finally:
        # Belt and braces: the rig removes its objects itself, even when cancelled; this
        # sweep (outside the event loop, so blocking is fine) catches a second Ctrl-C.
        with contextlib.suppress(SetupError):
            remove_labelled(docker_client(), {LABEL_SESSION: session, "io.loomchaos.rig": "nofile"})
    print(f"\nnginx load balancer open-files limit: {args.n} concurrent slow requests per setting")
    print("(each proxied request holds 2 descriptors in the front: client and upstream socket)\n")
    print(_table(outcomes))
    print(f"\nEMFILE lines: front log lines containing {EMFILE_MARK!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
