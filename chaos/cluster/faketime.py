"""Postgres under libfaketime: the environment a ``pg_fake_clock`` cluster gives it.

Constants only (the cluster's plans and :mod:`chaos.faults.clock` share them).
libfaketime (Debian's ``libfaketime``, in the local base image) is preloaded
into every process of the Postgres server and reads its offset from :data:`FAKETIME_FILE`,
re-read every second; only the wall clock is moved, not the monotonic one.
"""

from __future__ import annotations

#: Where the offset is read from, inside the Postgres container (root writes it, the
#: ``postgres`` user reads it); the image's entrypoint creates it with "+0".
FAKETIME_FILE = "/run/loomchaos-faketime"
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"

#: ``LOOMCHAOS_FAKETIME_LIB``: the entrypoint preloads it into the server only, after it
#: dropped root (libfaketime's first process creates a semaphore the others open).
FAKETIME_ENV = {
    "LOOMCHAOS_FAKETIME_LIB": FAKETIME_LIB,
    "FAKETIME_TIMESTAMP_FILE": FAKETIME_FILE,
    "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    "FAKETIME_CACHE_DURATION": "1",
    "LOOMCHAOS_FAKETIME_FILE": FAKETIME_FILE,
}
