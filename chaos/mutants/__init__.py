"""Planted defects in the target: build each patched copy, run gate scenarios, score the suite.

``loomchaos mutants PATCH_DIR`` copies the pinned target source, applies one
unified diff at a time, builds it, runs the chosen chaos scenarios against it
and compares every (test, invariant) verdict with unpatched control runs of
the same seed.  The modules, in the order a campaign uses them:

* :mod:`~chaos.mutants.patches`   find the patches and read their descriptions;
* :mod:`~chaos.mutants.workspace` labelled scratch folders, source copy, ``patch -p1``;
* :mod:`~chaos.mutants.build`     the Go build (build cache shared, so each build is incremental);
* :mod:`~chaos.mutants.image`     a labelled replica image per build, removed afterwards;
* :mod:`~chaos.mutants.probe`     does the build start and answer ``/healthz`` at all?
* :mod:`~chaos.mutants.scenarios` the gate scenarios as a ``pytest -m chaos`` subprocess;
* :mod:`~chaos.mutants.classify`  killed / survived / broken, against the controls' range;
* :mod:`~chaos.mutants.report`    the table, the score, the JSON;
* :mod:`~chaos.mutants.campaign`  the loop, with every Docker or Go step injectable.
"""
