"""Mirror discovery from apt sources: the host is read at run time, never written down."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.errors import SetupError
from chaos.provision.apt import (
    ENV_MIRROR,
    debian_mirror,
    parse_deb822,
    parse_one_line,
    pick_mirror,
)

# Hosts here are made up (.invalid): the project never names a real mirror.
DEB822 = """\
Types: deb
# http://archive.example.invalid/snapshot/20250520T000000Z
URIs: http://mirror.example.invalid/debian/
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example.invalid/debian-security
Suites: bookworm-security
Components: main

Types: deb-src
URIs: http://src.example.invalid/debian
Suites: bookworm
Components: main
"""

ONE_LINE = """\
# deb http://commented.example.invalid/debian bookworm main
deb-src http://src.example.invalid/debian bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://one.example.invalid/debian bookworm main
deb http://one.example.invalid/debian-security bookworm-security main
"""


def test_deb822_keeps_binary_sources_with_their_suites() -> None:
    sources = parse_deb822(DEB822)
    assert [(s.uri, s.suites) for s in sources] == [
        ("http://mirror.example.invalid/debian", ("bookworm", "bookworm-updates")),
        ("http://mirror.example.invalid/debian-security", ("bookworm-security",)),
    ]


def test_deb822_skips_disabled_stanzas_and_reads_continuation_lines() -> None:
    text = (
        "Types: deb\nURIs: http://off.example.invalid/debian\nSuites: bookworm\nEnabled: no\n\n"
        "Types: deb\nURIs:\n http://on.example.invalid/debian\nSuites: bookworm\n"
    )
    assert pick_mirror(parse_deb822(text), "bookworm") == "http://on.example.invalid/debian"


def test_one_line_format_skips_options_comments_and_sources() -> None:
    sources = parse_one_line(ONE_LINE)
    assert pick_mirror(sources, "bookworm") == "http://one.example.invalid/debian"
    assert len(sources) == 2


def test_the_security_suite_is_not_taken_for_the_release() -> None:
    only_security = parse_deb822(DEB822.split("\n\n")[1])
    assert pick_mirror(only_security, "bookworm") is None


def test_debian_mirror_reads_the_sources_dir(tmp_path: Path) -> None:
    sources_dir = tmp_path / "sources.list.d"
    sources_dir.mkdir()
    (sources_dir / "debian.sources").write_text(DEB822)
    (sources_dir / "other.list.disabled").write_text("deb http://x.example.invalid/d bookworm main")
    mirror = debian_mirror(
        "bookworm", env={}, sources_list=tmp_path / "missing", sources_dir=sources_dir
    )
    assert mirror == "http://mirror.example.invalid/debian"


def test_the_env_override_wins(tmp_path: Path) -> None:
    env = {ENV_MIRROR: "http://override.example.invalid/debian/"}
    mirror = debian_mirror("bookworm", env, sources_list=tmp_path / "x", sources_dir=tmp_path)
    assert mirror == "http://override.example.invalid/debian"


def test_no_source_for_the_suite_is_one_actionable_line(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text("deb http://u.example.invalid/ubuntu jammy main\n")
    with pytest.raises(SetupError) as info:
        debian_mirror("bookworm", {}, sources_list=tmp_path / "sources.list", sources_dir=tmp_path)
    message = str(info.value)
    assert "\n" not in message and ENV_MIRROR in message and "bookworm" in message
