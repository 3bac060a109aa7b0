"""The live machine's two profiles: ``ci`` (bounded, replays saved regressions) and ``deep``.

A profile is Hypothesis settings plus what Hypothesis does not know: how many
saved regressions one run replays.  Every profile has ``deadline=None`` (a
step may wait a reap bound), no example database (the seed replays a run, not
a local cache) and no ``explain`` phase (it re-runs examples, each costing a
cluster reset).  ``ci`` keeps shrinking but Hypothesis bounds it (at most
five minutes of shrinking per failure, engine.MAX_SHRINKING_SECONDS);
``deep`` shrinks fully and explores many more, longer programs.

Selected with ``LOOMCHAOS_MACHINE_PROFILE`` (default ``ci``); ``conftest.py``
also registers them as the Hypothesis profiles ``machine-ci``/``machine-deep``.

A profile may also bound its exploration by wall time (``minutes``;
``LOOMCHAOS_MACHINE_MINUTES`` overrides it): Hypothesis has no time budget, and
on a live cluster an example costs 20 s to several minutes, so "200 examples"
alone says nothing about how long a nightly run takes.  Such a profile explores
in chunks of :data:`CHUNK_EXAMPLES` examples, each a whole Hypothesis run with
its own seed drawn from the test's (:func:`chunk_seed`), and starts no new chunk
once the budget is spent.  Stopping inside Hypothesis does not work: an example
rejected before its first draw, where earlier ones drew, is
``FlakyStrategyDefinition`` (measured with Hypothesis 6.170).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from hypothesis import settings

from chaos.machine.run import machine_settings
from chaos.seeds import stream_seed

ENV_PROFILE = "LOOMCHAOS_MACHINE_PROFILE"
ENV_MINUTES = "LOOMCHAOS_MACHINE_MINUTES"


@dataclass(frozen=True)
class LiveProfile:
    name: str
    #: New examples Hypothesis generates (shrink attempts come on top).
    max_examples: int
    #: Rules per example at most.
    steps: int
    shrink: bool
    #: Saved regressions replayed per run, at most (the oldest first); bounds ``ci``'s time.
    max_regressions: int
    #: Exploration wall-time budget (None: only ``max_examples`` bounds it).  The chunk
    #: running when it runs out finishes, and a failure is still shrunk: the test's own
    #: timeout is the budget plus :data:`FINISH_MINUTES`.
    minutes: float | None = None

    def timeout_s(self) -> float:
        """The exploring test's pytest timeout: the budget plus room to finish and shrink."""
        if self.minutes is None:
            return 1800.0
        return 60.0 * (self.minutes + FINISH_MINUTES)

    def hypothesis_settings(self, max_examples: int | None = None) -> settings:
        return machine_settings(
            max_examples=self.max_examples if max_examples is None else max_examples,
            steps=self.steps,
            shrink=self.shrink,
            report_multiple_bugs=False,
        )


#: Examples per Hypothesis run when a budget chunks the exploration: each run begins with
#: its simplest program (Hypothesis's "zero" example), so smaller chunks waste more; the
#: budget may overrun by one chunk (10 examples of 1-3 min at ``deep``'s 20 steps).
CHUNK_EXAMPLES = 10

#: After the budget: the rest of the chunk in flight (up to ~30 min at ``deep``) and
#: Hypothesis's shrinking (at most 5 min of it, engine.MAX_SHRINKING_SECONDS, plus the
#: attempt in flight and the final replay).
FINISH_MINUTES = 60.0

PROFILES = {
    # At most about ten minutes on two cores: examples of ~10-20 s, ~60 s with a kill (its
    # reap); one in three examples may kill (KILL_BUDGETS), shrinking bounded by Hypothesis.
    "ci": LiveProfile("ci", max_examples=12, steps=6, shrink=True, max_regressions=5),
    # A first look after a change to the rules: two short examples, no shrinking.
    "smoke": LiveProfile("smoke", max_examples=2, steps=5, shrink=False, max_regressions=0),
    # A nightly run: an hour of exploration by default (LOOMCHAOS_MACHINE_MINUTES).
    "deep": LiveProfile(
        "deep", max_examples=200, steps=20, shrink=True, max_regressions=100, minutes=60.0
    ),
}


def active_profile() -> LiveProfile:
    name = os.environ.get(ENV_PROFILE, "ci")
    try:
        profile = PROFILES[name]
    except KeyError:
        raise ValueError(f"{ENV_PROFILE}={name!r}: choose one of {sorted(PROFILES)}") from None
    minutes = os.environ.get(ENV_MINUTES)
    if minutes is None or minutes == "":
        return profile
    try:
        value = float(minutes)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{ENV_MINUTES}={minutes!r}: a positive number of minutes")
    return replace(profile, minutes=value)


def chunk_seed(seed: int, chunk: int) -> int:
    """Chunk 0 explores with the test's Hypothesis seed itself (so a budget changes
    nothing for a run shorter than one chunk); chunk k > 0 with a stream of it."""
    return seed if chunk == 0 else stream_seed(seed, f"chunk-{chunk}")
