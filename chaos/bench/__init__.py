"""Benchmarks of the suite's own machinery (not of the target).

:mod:`chaos.sut.loomcycle.bench_sink` is a load sink the driver benchmark points the real
HTTP/SSE client at; :mod:`chaos.bench.driver_load` runs the measured phases;
:mod:`chaos.bench.stats` holds the pure helpers (percentiles, tables).
"""
