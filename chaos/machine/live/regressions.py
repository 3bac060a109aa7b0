"""Failing live-machine programs as readable JSON files that replay.

A file under ``tests/regressions/live_machine/`` holds the printed program
(``state.start_runs(user=1, via='r2', count=2)`` ...: the lines Hypothesis
printed, literal keyword arguments only), the machine that ran it, the seed,
what failed, and, once a write-up explains it, ``finding``: the finding's id,
which makes its replay a strict xfail through :func:`chaos.findings.known_finding`
(the test goes red when the target is fixed, so the file is then retired).  ``ci`` replays at most
``LiveProfile.max_regressions`` of them, the oldest first.

Example::

    {"machine": "LiveClusterMachine", "seed": 123, "created": "2026-12-02T03:40:00Z",
     "error": "AssertionError: ...", "finding": null,
     "program": ["state = LiveClusterMachine()", "state.kill(replica='r2')", ...]}
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaos.machine.run import _STEP as STEP_LINE
from chaos.machine.run import _kwargs as literal_kwargs

#: Where the repository keeps them (relative to its root).
REGRESSIONS_DIR = Path("tests") / "regressions" / "live_machine"
SCHEMA = 1


@dataclass(frozen=True)
class Regression:
    path: Path
    machine: str
    seed: int | None
    program: tuple[str, ...]
    error: str
    #: The id of the finding that explains it (LC-NNN), or None.
    finding: str | None
    created: str

    @property
    def name(self) -> str:
        return self.path.stem


def validate_program(program: Sequence[str]) -> list[str]:
    """The rule calls of ``program``; raises ValueError on a call that cannot replay."""
    calls = []
    for line in program:
        match = STEP_LINE.match(line.strip())
        if match is None:
            continue
        literal_kwargs(match["args"])  # raises on anything but literal keyword arguments
        calls.append(line.strip())
    return calls


def save_regression(
    directory: Path,
    *,
    machine: str,
    seed: int | None,
    program: Sequence[str],
    error: str,
    now: float | None = None,
) -> Path:
    """Write the program as ``<machine>-<hash>.json`` in ``directory``; same program, same file."""
    if not validate_program(program):
        raise ValueError("a regression needs at least one state.<rule>(...) line")
    digest = hashlib.sha256("\n".join(program).encode()).hexdigest()[:10]
    path = directory / f"{machine}-{digest}.json"
    body: dict[str, Any] = {
        "schema": SCHEMA,
        "machine": machine,
        "seed": seed,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "error": error[:2000],
        "finding": None,
        "program": list(program),
    }
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    return path


def load_regression(path: Path) -> Regression:
    body = json.loads(path.read_text(encoding="utf-8"))
    if body.get("schema") != SCHEMA:
        raise ValueError(f"{path}: schema {body.get('schema')!r}, expected {SCHEMA}")
    program = tuple(str(line) for line in body["program"])
    validate_program(program)
    finding = body.get("finding")
    seed = body.get("seed")
    return Regression(
        path=path,
        machine=str(body["machine"]),
        seed=None if seed is None else int(seed),
        program=program,
        error=str(body.get("error", "")),
        finding=None if finding is None else str(finding),
        created=str(body.get("created", "")),
    )


def load_regressions(directory: Path, *, limit: int) -> list[Regression]:
    """At most ``limit`` saved regressions, the oldest first (by ``created``, then name)."""
    if not directory.is_dir():
        return []
    found = [load_regression(p) for p in sorted(directory.glob("*.json"))]
    found.sort(key=lambda r: (r.created, r.name))
    return found[: max(0, limit)]
