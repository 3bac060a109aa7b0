"""Seeds: the one session seed, the per-test seeds derived from it, named streams, replay lines.

``--chaos-seed=N`` is the SESSION seed.  Each test's seed is derived from it
and the test id (:func:`derive_test_seed`), so passing a test's seed to
``--chaos-seed`` would replay nothing: a failure must print the session seed
and the test id (:class:`Replay`).

One seed feeds several consumers (the workload's backoff jitter, the fault
schedule, Hypothesis).  Handing each the same number makes their streams
identical, so two "independent" random choices in one test would be the
same draw.  :func:`stream` derives an independent, NAMED stream per consumer
instead: a hash of the seed and the name.
"""

from __future__ import annotations

import hashlib
import random
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: The named streams the suite draws from (one consumer each).
WORKLOAD = "workload"
FAULTS = "faults"
HYPOTHESIS = "hypothesis"


def _hash32(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def derive_test_seed(session_seed: int, nodeid: str) -> int:
    """The per-test seed: stable for one session seed and one test id."""
    return _hash32(f"{int(session_seed)}:{nodeid}")


def stream_seed(seed: int, name: str) -> int:
    """The seed of stream ``name`` of ``seed`` (32 bits, so Hypothesis takes it as is)."""
    if not name:
        raise ValueError("a stream needs a name")
    return _hash32(f"{int(seed)}/stream/{name}")


def stream(seed: int, name: str) -> random.Random:
    """An independent random stream named ``name``, drawn from ``seed``.

    The same (seed, name) always gives the same stream; two names give
    unrelated streams, and neither equals ``random.Random(seed)``.
    """
    return random.Random(stream_seed(seed, name))


@dataclass(frozen=True)
class Replay:
    """What replays one test: the session seed and the test id (and whether it is a
    chaos test, which the default ``-m 'not chaos'`` would otherwise deselect)."""

    session_seed: int
    nodeid: str
    chaos: bool = True

    @property
    def test_seed(self) -> int:
        return derive_test_seed(self.session_seed, self.nodeid)

    def argv(self) -> list[str]:
        """The pytest arguments that replay the test (run from the rootdir)."""
        marker = ["-m", "chaos"] if self.chaos else []
        return [self.nodeid, *marker, f"--chaos-seed={self.session_seed}"]

    def command(self) -> str:
        # Always single-quoted, so that a parametrised id's brackets survive a shell
        # and the line reads the same whatever the id holds.
        quoted = "'" + self.nodeid.replace("'", "'\"'\"'") + "'"
        marker = " -m chaos" if self.chaos else ""
        return f"pytest {quoted}{marker} --chaos-seed={self.session_seed}"

    def line(self) -> str:
        return (
            f"seed: session {self.session_seed}, test {self.test_seed} (replay: {self.command()})"
        )

    def to_meta(self) -> dict[str, Any]:
        """For a History's meta, so a saved history says how to replay its test."""
        return {"session_seed": self.session_seed, "test": self.nodeid, "chaos": self.chaos}

    @staticmethod
    def from_meta(meta: Mapping[str, Any]) -> Replay | None:
        if "session_seed" not in meta or "test" not in meta:
            return None
        return Replay(int(meta["session_seed"]), str(meta["test"]), bool(meta.get("chaos", True)))


class TestSeed(int):
    """A test's seed (an ``int``) that remembers the :class:`Replay` it was derived for.

    Everything that takes the seed as a number (``History(seed=...)``,
    ``random.Random``, JSON) keeps working, and whatever renders a failure
    from it (:func:`replay_line`) can still name the session seed.
    """

    __test__ = False  # not a pytest test class, whatever its name says
    replay: Replay

    def __new__(cls, replay: Replay) -> TestSeed:
        self = super().__new__(cls, replay.test_seed)
        self.replay = replay
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (TestSeed, (self.replay,))


def replay_of(seed: int | Replay, meta: Mapping[str, Any] | None = None) -> Replay | None:
    """The :class:`Replay` behind ``seed`` (a Replay, a :class:`TestSeed`), else the one a
    History's ``meta`` records, else None."""
    if isinstance(seed, Replay):
        return seed
    if isinstance(seed, TestSeed):
        return seed.replay
    return Replay.from_meta(meta) if meta is not None else None


def replay_line(seed: int | Replay, meta: Mapping[str, Any] | None = None) -> str:
    """The seed line of a failure.  Only a seed that knows its session replays with
    ``--chaos-seed``; a bare number says so rather than print a replay that is not one."""
    if isinstance(seed, Replay):
        return seed.line()
    replay = replay_of(seed, meta)
    if replay is not None:
        return replay.line()
    return (
        f"seed: test {int(seed)} (not derived from a pytest session: "
        "no --chaos-seed replays it; pass it where the history is built)"
    )


def parse_replay(text: str) -> list[str]:
    """The pytest arguments of the first replay line in ``text`` (for tests and tools)."""
    for raw in text.splitlines():
        marker = "(replay: pytest "
        start = raw.find(marker)
        if start < 0:
            continue
        end = raw.rfind(")")
        if end <= start:
            continue
        return shlex.split(raw[start + len(marker) : end])
    raise ValueError("no replay line found")


__all__ = [
    "FAULTS",
    "HYPOTHESIS",
    "WORKLOAD",
    "Replay",
    "TestSeed",
    "derive_test_seed",
    "parse_replay",
    "replay_line",
    "replay_of",
    "stream",
    "stream_seed",
]
