"""Debian's package mirror and ``apt-get install``, as this machine is configured.

The mirror for debootstrap is read from the machine's own apt sources at run
time, so no mirror host is ever written into the project: whatever mirror (or
snapshot, or proxy) this machine uses, the images are built from it too.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from chaos.errors import SetupError
from chaos.provision.common import Progress, log_file, run_logged

ENV_MIRROR = "LOOMCHAOS_DEBIAN_MIRROR"
SOURCES_LIST = Path("/etc/apt/sources.list")
SOURCES_DIR = Path("/etc/apt/sources.list.d")


@dataclass(frozen=True)
class AptSource:
    uri: str
    suites: tuple[str, ...]


def parse_deb822(text: str) -> list[AptSource]:
    """Binary (``Types: deb``) sources of a deb822 ``.sources`` file; disabled stanzas skipped."""
    sources: list[AptSource] = []
    for stanza in _stanzas(text):
        if "deb" not in stanza.get("types", "").split():
            continue
        if stanza.get("enabled", "yes").strip().lower() == "no":
            continue
        uris = stanza.get("uris", "").split()
        if uris:
            sources.append(AptSource(uris[0].rstrip("/"), tuple(stanza.get("suites", "").split())))
    return sources


def _stanzas(text: str) -> Iterable[dict[str, str]]:
    fields: dict[str, str] = {}
    key = ""
    for raw in [*text.splitlines(), ""]:
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if fields:
                yield fields
            fields, key = {}, ""
        elif raw[0].isspace() and key:  # continuation of a multi-line field
            fields[key] += " " + raw.strip()
        elif ":" in raw:
            key, value = raw.split(":", 1)
            key = key.strip().lower()
            fields[key] = value.strip()


def parse_one_line(text: str) -> list[AptSource]:
    """``deb [options] URI suite component...`` lines of a classic sources.list."""
    sources: list[AptSource] = []
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split()
        if not words or words[0] != "deb":
            continue
        words = words[1:]
        if words and words[0].startswith("["):  # [arch=amd64 signed-by=...]
            while words and not words[0].endswith("]"):
                words = words[1:]
            words = words[1:]
        if len(words) >= 2:
            sources.append(AptSource(words[0].rstrip("/"), (words[1],)))
    return sources


def pick_mirror(sources: Iterable[AptSource], suite: str) -> str | None:
    """The first source serving exactly ``suite`` (not ``suite-security``, whose layout differs)."""
    for source in sources:
        if suite in source.suites:
            return source.uri
    return None


def machine_sources(
    sources_list: Path = SOURCES_LIST, sources_dir: Path = SOURCES_DIR
) -> list[AptSource]:
    found: list[AptSource] = []
    if sources_list.is_file():
        found += parse_one_line(sources_list.read_text(errors="replace"))
    if sources_dir.is_dir():
        for path in sorted(sources_dir.iterdir()):
            if path.suffix == ".sources":
                found += parse_deb822(path.read_text(errors="replace"))
            elif path.suffix == ".list":
                found += parse_one_line(path.read_text(errors="replace"))
    return found


def debian_mirror(
    suite: str,
    env: Mapping[str, str] | None = None,
    *,
    sources_list: Path = SOURCES_LIST,
    sources_dir: Path = SOURCES_DIR,
) -> str:
    """The mirror to debootstrap ``suite`` from: the override, else the machine's apt sources."""
    env = os.environ if env is None else env
    override = env.get(ENV_MIRROR)
    if override:
        return override.rstrip("/")
    mirror = pick_mirror(machine_sources(sources_list, sources_dir), suite)
    if mirror is None:
        raise SetupError(
            f"no apt source for Debian {suite} in {sources_list} or {sources_dir}/: "
            f"set {ENV_MIRROR}=<Debian mirror URL> to build the local images"
        )
    return mirror


def ensure_tool(tool: str, package: str, cache: Path, progress: Progress) -> None:
    """Install ``package`` with apt-get if ``tool`` is not on PATH (root only)."""
    if shutil.which(tool) is not None:
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise SetupError(f"`{tool}` is missing: install the `{package}` package (as root)")
    log = log_file(cache, f"apt-{package}")
    progress(f"installing {package} with apt-get (log: {log})")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", package]):
        if run_logged(cmd, log=log, timeout=900, env=env) != 0:
            raise SetupError(f"`{' '.join(cmd)}` failed while installing {package}; see {log}")
