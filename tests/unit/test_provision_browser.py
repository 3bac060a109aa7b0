"""Chromium for the report's screenshot: reused when present, installed with apt otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.errors import SetupError
from chaos.provision.browser import PACKAGE, Browser, ensure_chromium, find_chromium


def no_install(tool: str, package: str, cache: Path, progress: object) -> None:
    raise AssertionError(f"installed {package} although {tool} was present")


def test_a_chromium_on_path_is_reused_and_nothing_installed(tmp_path: Path) -> None:
    which = {"chromium": "/usr/bin/chromium"}.get
    got = ensure_chromium(cache=tmp_path, which=which, install=no_install)
    assert got == Browser(Path("/usr/bin/chromium"), install_s=None)


def test_the_other_name_of_the_binary_counts_too() -> None:
    assert find_chromium({"chromium-browser": "/opt/cb"}.get) == Path("/opt/cb")
    assert find_chromium({}.get) is None


def test_a_missing_chromium_is_installed_from_debians_package(tmp_path: Path) -> None:
    present: dict[str, str] = {}
    calls: list[tuple[str, str, Path]] = []

    def install(tool: str, package: str, cache: Path, progress: object) -> None:
        calls.append((tool, package, cache))
        present["chromium"] = "/usr/bin/chromium"

    got = ensure_chromium(cache=tmp_path, which=present.get, install=install)
    assert calls == [("chromium", PACKAGE, tmp_path)]
    assert got.path == Path("/usr/bin/chromium") and got.install_s is not None


def test_where_it_cannot_be_installed_the_error_names_the_package(tmp_path: Path) -> None:
    def install(tool: str, package: str, cache: Path, progress: object) -> None:
        raise SetupError(f"`{tool}` is missing: install the `{package}` package (as root)")

    with pytest.raises(SetupError, match="`chromium` package"):
        ensure_chromium(cache=tmp_path, which={}.get, install=install)


def test_an_install_that_leaves_no_binary_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SetupError, match="no chromium or chromium-browser is on PATH"):
        ensure_chromium(cache=tmp_path, which={}.get, install=lambda *a: None)
