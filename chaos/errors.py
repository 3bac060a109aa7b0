"""Errors the user can act on.

A :class:`SetupError` is printed as one line (no traceback) by the command
line and turned into a single ``pytest.exit``/``pytest.skip`` line by the
plugin: "no Docker engine answers and none can be started here", "image X is
missing", "loomcycle cannot be installed: <the exact error>".
"""

from __future__ import annotations


class SetupError(RuntimeError):
    """Something the suite needs is missing or unreachable; the message says how to fix it."""


class TargetUnavailable(SetupError):
    """The system under test itself (binary or image) cannot be had on this machine."""
