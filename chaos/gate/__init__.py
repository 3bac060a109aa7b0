"""``loomchaos gate``: the release gate, a candidate build judged against a baseline build.

Each build runs the gate scenarios (``pytest -m chaos`` in a subprocess, as
:mod:`chaos.mutants` does) for the same seeds, several repetitions each, and
every failing invariant becomes a finding identified by (scenario, invariant,
cause signature).  Findings are then classified **new**, **known** or
**fixed** (:mod:`chaos.gate.classify`); a new one fails the gate.
"""
