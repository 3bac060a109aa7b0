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
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from hypothesis import settings

from chaos.machine.run import machine_settings

ENV_PROFILE = "LOOMCHAOS_MACHINE_PROFILE"


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

    def hypothesis_settings(self) -> settings:
        return machine_settings(
            max_examples=self.max_examples,
            steps=self.steps,
            shrink=self.shrink,
            report_multiple_bugs=False,
        )


PROFILES = {
    # At most about ten minutes on two cores: examples of ~10-20 s, ~60 s with a kill (its
    # reap); one in three examples may kill (KILL_BUDGETS), shrinking bounded by Hypothesis.
    "ci": LiveProfile("ci", max_examples=12, steps=6, shrink=True, max_regressions=5),
    # A first look after a change to the rules: two short examples, no shrinking.
    "smoke": LiveProfile("smoke", max_examples=2, steps=5, shrink=False, max_regressions=0),
    "deep": LiveProfile("deep", max_examples=200, steps=20, shrink=True, max_regressions=100),
}


def active_profile() -> LiveProfile:
    name = os.environ.get(ENV_PROFILE, "ci")
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"{ENV_PROFILE}={name!r}: choose one of {sorted(PROFILES)}") from None
