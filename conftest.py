"""Repository-level pytest configuration.

The loomchaos plugin itself is loaded through its ``pytest11`` entry point
(``pip install -e .``), exactly as another repository would load it; this
file only sets this repository's Hypothesis profiles.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

from chaos.machine.live.profiles import PROFILES as MACHINE_PROFILES

# The fast tier must stay in seconds: modest example counts, no per-example deadline
# (CI machines have 2 cores and other jobs running).
settings.register_profile(
    "fast", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("LOOMCHAOS_HYPOTHESIS_PROFILE", "fast"))

# The live state machine's profiles (issue 12), also as Hypothesis profiles for reference:
# the machine's test picks one with LOOMCHAOS_MACHINE_PROFILE (chaos/machine/live/profiles.py).
for _name, _profile in MACHINE_PROFILES.items():
    settings.register_profile(f"machine-{_name}", _profile.hypothesis_settings())
