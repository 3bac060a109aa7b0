"""Repository-level pytest configuration.

The loomchaos plugin itself is loaded through its ``pytest11`` entry point
(``pip install -e .``), exactly as another repository would load it; this
file only sets this repository's Hypothesis profiles.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# The fast tier must stay in seconds: modest example counts, no per-example deadline
# (CI machines have 2 cores and other jobs running).
settings.register_profile(
    "fast", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("LOOMCHAOS_HYPOTHESIS_PROFILE", "fast"))
