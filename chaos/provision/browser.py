"""Headless Chromium, for the test that opens a campaign report and takes its screenshot.

Provisioned as the suite's other tools are (:func:`chaos.provision.apt.ensure_tool`):
reused when it is on ``PATH``, installed from Debian's packages (``chromium``)
with apt-get as root otherwise, and a :class:`~chaos.errors.SetupError` that
names the package when neither is possible.  It is not part of
:func:`chaos.provision.provision`: only the report's screenshot needs a browser,
so ``loomchaos setup`` does not install one for every user (here: 44 s for
115 new packages, apt-get update aside).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from chaos.errors import SetupError
from chaos.provision.apt import ensure_tool
from chaos.provision.common import Progress, cache_dir

#: Debian's package, and the names its binary goes by (Debian: ``chromium``).
PACKAGE = "chromium"
NAMES = ("chromium", "chromium-browser")

Which = Callable[[str], str | None]
Install = Callable[[str, str, Path, Progress], None]


@dataclass(frozen=True)
class Browser:
    """The browser to run, and how long installing it took (None: it was already there)."""

    path: Path
    install_s: float | None = None


def find_chromium(which: Which = shutil.which) -> Path | None:
    for name in NAMES:
        found = which(name)
        if found:
            return Path(found)
    return None


def ensure_chromium(
    progress: Progress = lambda _line: None,
    *,
    cache: Path | None = None,
    which: Which = shutil.which,
    install: Install = ensure_tool,
) -> Browser:
    """Chromium, reused or installed; :class:`SetupError` when it cannot be had."""
    found = find_chromium(which)
    if found is not None:
        return Browser(found)
    started = time.monotonic()
    install(NAMES[0], PACKAGE, cache or cache_dir(), progress)
    found = find_chromium(which)
    if found is None:
        raise SetupError(
            f"`apt-get install {PACKAGE}` finished but no {' or '.join(NAMES)} is on PATH"
        )
    return Browser(found, install_s=time.monotonic() - started)
