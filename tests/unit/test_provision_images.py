"""Image names, input hashes and the summary: the pure parts of provisioning."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.cluster.spec import Images, ResolvedImages
from chaos.errors import SetupError
from chaos.provision import Provisioned, format_summary, resolve_images
from chaos.provision.common import digest_of, one_line, run_logged
from chaos.provision.engine import EngineInfo
from chaos.provision.images import choose_source, split_ref
from chaos.provision.localbuild import (
    BASE_PACKAGES,
    FIXTURES,
    Recipe,
    base_inputs_hash,
    context_files,
    recipe_inputs_hash,
)

LOCAL = ResolvedImages(
    postgres="loomchaos/postgres:local",
    nginx="loomchaos/nginx:local",
    toxiproxy="loomchaos/toxiproxy:local",
    loomcycle="loomchaos/loomcycle:local",
)


def test_local_names_by_default() -> None:
    assert resolve_images(Images(), env={}) == LOCAL


def test_public_names() -> None:
    assert resolve_images(Images(source="public"), env={}) == ResolvedImages(
        postgres="postgres:16",
        nginx="nginx:1.27-alpine",
        toxiproxy="ghcr.io/shopify/toxiproxy:2.12.0",
        loomcycle="denngubsky/loomcycle:v1.59.0",
    )


def test_the_machine_source_and_version_apply() -> None:
    env = {"LOOMCHAOS_IMAGE_SOURCE": "public", "LOOMCHAOS_LOOMCYCLE_VERSION": "v1.60.0"}
    assert resolve_images(Images(), env=env).loomcycle == "denngubsky/loomcycle:v1.60.0"


def test_explicit_refs_win_then_the_target_override() -> None:
    env = {"LOOMCHAOS_LOOMCYCLE_IMAGE": "me/loomcycle:dev"}
    assert resolve_images(Images(), env=env).loomcycle == "me/loomcycle:dev"
    explicit = Images(postgres="pg:mine", loomcycle="lc:pinned")
    resolved = resolve_images(explicit, env=env)
    assert (resolved.postgres, resolved.loomcycle) == ("pg:mine", "lc:pinned")
    assert resolved.nginx == LOCAL.nginx


def test_a_namespace_keeps_trial_builds_apart() -> None:
    resolved = resolve_images(Images(), env={"LOOMCHAOS_IMAGE_NAMESPACE": "trial"})
    assert resolved.postgres == "trial/postgres:local"


def test_source_choice_and_a_bad_source() -> None:
    assert choose_source(None, {}) == "local"
    assert choose_source(None, {"LOOMCHAOS_IMAGE_SOURCE": "public"}) == "public"
    assert choose_source("local", {"LOOMCHAOS_IMAGE_SOURCE": "public"}) == "local"
    with pytest.raises(SetupError, match="unknown image source 'dockerhub'"):
        choose_source("dockerhub", {})


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("postgres:16", ("postgres", "16")),
        ("ghcr.io/shopify/toxiproxy:2.12.0", ("ghcr.io/shopify/toxiproxy", "2.12.0")),
        ("registry.local:5000/x/y", ("registry.local:5000/x/y", "latest")),
        ("registry.local:5000/x/y:v1", ("registry.local:5000/x/y", "v1")),
        ("nginx", ("nginx", "latest")),
        ("nginx@sha256:abc", ("nginx", "sha256:abc")),
    ],
)
def test_split_ref(ref: str, expected: tuple[str, str]) -> None:
    assert split_ref(ref) == expected


def test_base_hash_follows_the_package_list() -> None:
    assert base_inputs_hash() == base_inputs_hash(tuple(reversed(BASE_PACKAGES)))
    assert base_inputs_hash() != base_inputs_hash((*BASE_PACKAGES, "curl"))


def test_recipe_hash_follows_files_and_base(tmp_path: Path) -> None:
    (tmp_path / "svc").mkdir()
    dockerfile = tmp_path / "svc" / "Dockerfile"
    dockerfile.write_text("FROM base\n")
    binary = tmp_path / "tool"
    binary.write_bytes(b"\x7fELF one")
    files = context_files(Recipe("svc", "x/svc:local", (("tool", binary),)), fixtures=tmp_path)
    assert set(files) == {"Dockerfile", "tool"}
    first = recipe_inputs_hash(files, "sha256:base1")
    assert recipe_inputs_hash(files, "sha256:base1") == first
    assert recipe_inputs_hash(files, "sha256:base2") != first
    binary.write_bytes(b"\x7fELF two")
    assert recipe_inputs_hash(files, "sha256:base1") != first


def test_the_project_fixtures_hold_each_image() -> None:
    assert set(context_files(Recipe("postgres", "t"))) == {"Dockerfile", "entrypoint.sh"}
    for name in ("nginx", "toxiproxy", "loomcycle"):
        assert "Dockerfile" in context_files(Recipe(name, "t"))
    assert (FIXTURES / "postgres" / "entrypoint.sh").stat().st_mode & 0o111


def test_a_missing_fixture_is_a_setup_error(tmp_path: Path) -> None:
    with pytest.raises(SetupError, match=r"missing .*Dockerfile"):
        context_files(Recipe("nothing", "t"), fixtures=tmp_path)


def test_digest_is_stable_and_one_line_collapses() -> None:
    assert digest_of({"b": 1, "a": [2]}) == digest_of({"a": [2], "b": 1})
    assert one_line("a\n\tb   c") == "a b c"
    assert one_line("x" * 500, limit=10) == "xxxxxxx..."


def test_run_logged_appends_and_names_the_log_on_timeout(tmp_path: Path) -> None:
    log = tmp_path / "step.log"
    assert run_logged(["sh", "-c", "echo hello; exit 3"], log=log, timeout=10) == 3
    assert "hello" in log.read_text() and "$ sh -c" in log.read_text()
    with pytest.raises(SetupError) as info:
        run_logged(["sleep", "5"], log=log, timeout=0.2)
    assert str(log) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(SetupError, match="is not installed"):
        run_logged(["no-such-command-here"], log=log, timeout=1)


def _provisioned(error: str | None, rebuilt: tuple[str, ...]) -> Provisioned:
    images = (
        LOCAL
        if error is None
        else ResolvedImages(LOCAL.postgres, LOCAL.nginx, LOCAL.toxiproxy, None)
    )
    return Provisioned(
        engine=EngineInfo(started_by_us=False, server_version="20.10.24"),
        images=images,
        loomcycle_error=error,
        timings={"engine": 0.01, "base image": 52.9},
        rebuilt=rebuilt,
    )


def test_summary_reports_the_exact_loomcycle_error() -> None:
    error = "go: ...@v1.59.0: 403 Forbidden server response: This module version is not available."
    text = format_summary(_provisioned(error, ()))
    assert f"loomcycle unavailable: {error}" in text.splitlines()
    assert "rebuilt:   nothing (all reused)" in text
    assert "base image 52.9s" in text and "already running" in text


def test_summary_with_the_target_and_rebuilds() -> None:
    text = format_summary(_provisioned(None, ("loomchaos/base:bookworm",)))
    assert "loomcycle: loomchaos/loomcycle:local" in text
    assert "rebuilt:   loomchaos/base:bookworm" in text
