"""The pytest plugin (registered through the ``pytest11`` entry point).

It gives any repository that installs loomchaos the markers, options and
fixtures of the suite:

* markers ``chaos`` (real clusters, Docker), ``slow``, ``soak``;
* one seed per session (``--chaos-seed``, else ``LOOMCHAOS_SEED``, else random)
  from which each test's seed is derived (session seed + test id), and from
  that independent named streams for the workload, the fault schedule and
  Hypothesis (:mod:`chaos.seeds`); a failure prints the SESSION seed and the
  test id, the one pair that replays it; the JUnit XML keeps both seeds;
* a pytest-timeout on every chaos test and a whole-session deadline, so a
  hang fails with artifacts instead of being killed by CI;
* an artifact folder per failing test (history, verdicts, logs).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import time
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import Any

import pytest

from chaos.labels import new_session_id, test_prefix
from chaos.record.history import History
from chaos.replay import build_meta
from chaos.report.clocksteps import ClockStepPlugin
from chaos.report.hang import HangWatch
from chaos.report.outcome import REPORT_KEY, keeps_evidence
from chaos.seeds import FAULTS, HYPOTHESIS, Replay, TestSeed, stream, stream_seed
from chaos.seeds import derive_test_seed as derive_test_seed
from chaos.verdict import (
    AssertVerdicts,
    InvariantViolation,
    Verdict,
    assert_verdicts,
    verdict_table,
)

DEFAULT_CHAOS_TIMEOUT_S = 600
DEFAULT_SESSION_DEADLINE_S = 50 * 60

#: The host clock step watch (chaos.report.clocksteps), one per session.
CLOCK_PLUGIN = "loomchaos-clock-steps"
_SEED_KEY = pytest.StashKey[int]()
_SESSION_KEY = pytest.StashKey[str]()
_START_KEY = pytest.StashKey[float]()
_HISTORY_KEY = pytest.StashKey[History]()
_VERDICTS_KEY = pytest.StashKey[list[Verdict]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("loomchaos", "chaos and fault injection (loomchaos)")
    group.addoption(
        "--chaos-seed",
        type=int,
        default=None,
        help="seed for workloads, faults and Hypothesis (default: $LOOMCHAOS_SEED or random)",
    )
    group.addoption(
        "--chaos-artifacts",
        default=os.environ.get("LOOMCHAOS_ARTIFACTS", "artifacts"),
        help="folder for failure artifacts (history, verdicts, container logs)",
    )
    group.addoption(
        "--chaos-test-timeout",
        type=float,
        default=DEFAULT_CHAOS_TIMEOUT_S,
        help="pytest-timeout applied to every chaos test that sets none (seconds)",
    )
    group.addoption(
        "--chaos-session-deadline",
        type=float,
        default=float(os.environ.get("LOOMCHAOS_SESSION_DEADLINE", DEFAULT_SESSION_DEADLINE_S)),
        help="whole-session deadline in seconds; tests that would start after it fail fast",
    )
    group.addoption(
        "--chaos-skip-provision",
        action="store_true",
        default=False,
        help="do not install or start anything; chaos tests use what is already there",
    )
    group.addoption(
        "--chaos-allow-missing-target",
        action="store_true",
        default=False,
        help="skip (instead of fail) the tests that need loomcycle when it cannot be provisioned",
    )
    group.addoption(
        "--chaos-image-source",
        choices=("local", "public"),
        default=os.environ.get("LOOMCHAOS_IMAGE_SOURCE", "local"),
        help="images built here from Debian packages (local) or the public registry images",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    for line in (
        "chaos: starts real clusters in Docker (provisions engine, images, binaries)",
        "slow: a chaos test too long for CI's budget",
        "soak: hours-long campaign tests",
    ):
        config.addinivalue_line("markers", line)
    seed = config.getoption("--chaos-seed")
    if seed is None:
        env_seed = os.environ.get("LOOMCHAOS_SEED")
        seed = int(env_seed) if env_seed else random.SystemRandom().randrange(1, 2**31)
    config.stash[_SEED_KEY] = seed
    config.stash[_SESSION_KEY] = new_session_id()
    config.stash[_START_KEY] = time.monotonic()
    config.stash[REPORT_KEY] = {}
    # One seed for everything: Hypothesis gets its own named stream of it (not the
    # number itself, which would make its draws those of every other stream),
    # unless the user set its seed.
    if hasattr(config.option, "hypothesis_seed") and config.option.hypothesis_seed is None:
        config.option.hypothesis_seed = stream_seed(seed, HYPOTHESIS)
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    os.environ.setdefault("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
    if not config.pluginmanager.has_plugin(CLOCK_PLUGIN):
        config.pluginmanager.register(ClockStepPlugin(), CLOCK_PLUGIN)


def _timeout_of(item: pytest.Item) -> float | None:
    marker = item.get_closest_marker("timeout")
    if marker is None:
        return None
    value = marker.kwargs.get("timeout", marker.args[0] if marker.args else None)
    return float(value) if value else None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None]:
    """Watch every test with a timeout: if it hangs, leave its artifacts before the end."""
    timeout = _timeout_of(item)
    watch = None
    if timeout is not None:
        watch = HangWatch(
            item.nodeid,
            timeout,
            artifact_dir(item),
            item.config.stash[_SESSION_KEY],
            lambda: item.stash.get(_HISTORY_KEY, None),
        ).start()
    try:
        yield
    finally:
        if watch is not None:
            watch.cancel()


def session_seed(config: pytest.Config) -> int:
    return config.stash[_SEED_KEY]


def replay_for(item: pytest.Item) -> Replay:
    """What replays ``item``: the session seed and its id."""
    return Replay(
        item.config.stash[_SEED_KEY],
        item.nodeid,
        chaos=item.get_closest_marker("chaos") is not None,
    )


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [
        f"loomchaos: seed={config.stash[_SEED_KEY]} session={config.stash[_SESSION_KEY]} "
        f"(replay with --chaos-seed={config.stash[_SEED_KEY]})"
    ]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    timeout = config.getoption("--chaos-test-timeout")
    for item in items:
        if item.get_closest_marker("chaos") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(timeout, method="thread"))


def pytest_runtest_setup(item: pytest.Item) -> None:
    config = item.config
    deadline = config.getoption("--chaos-session-deadline")
    elapsed = time.monotonic() - config.stash[_START_KEY]
    if item.get_closest_marker("chaos") and elapsed > deadline:
        item.session.shouldstop = f"loomchaos session deadline of {deadline:.0f}s passed"
        pytest.fail(
            f"session deadline passed ({elapsed:.0f}s > {deadline:.0f}s); not starting this test",
            pytrace=False,
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    item.stash.setdefault(REPORT_KEY, {})[report.when] = report
    if report.failed and (item.get_closest_marker("chaos") or _HISTORY_KEY in item.stash):
        report.sections.append(("loomchaos", replay_for(item).line()))
    if (
        report.when == "teardown"
        and item.get_closest_marker("chaos")
        and _HISTORY_KEY not in item.stash
        and keeps_evidence(item)
    ):
        _leave_replay_header(item)
    return report


def artifact_dir(item: pytest.Item) -> Path:
    """This test's artifact folder (created lazily by whoever writes into it)."""
    root = Path(item.config.getoption("--chaos-artifacts"))
    return root / item.config.stash[_SESSION_KEY] / _slug(item.nodeid)


def new_history(item: pytest.Item) -> History:
    """A History for ``item``: its test seed, and the meta that says how to replay it and
    against which build, so a saved ``history.jsonl`` carries both."""
    replay = replay_for(item)
    return History(seed=replay.test_seed, meta={**replay.to_meta(), "build": build_meta()})


def _leave_replay_header(item: pytest.Item) -> None:
    """A failed (or xfailed) chaos test that kept no History still leaves a header-only
    ``history.jsonl``: what ``loomchaos replay`` reads to run it again (LC-001's
    reduction is one GET, with nothing to record)."""
    path = artifact_dir(item) / "history.jsonl"
    if path.exists():
        return
    history = new_history(item)
    history.stream_to_path(path)
    history.close_stream()


def _slug(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid)[-120:]


@pytest.fixture(scope="session")
def chaos_session_id(request: pytest.FixtureRequest) -> str:
    return request.config.stash[_SESSION_KEY]


@pytest.fixture(scope="session", autouse=True)
def _chaos_junit_session_properties(
    request: pytest.FixtureRequest, record_testsuite_property: Callable[[str, object], None]
) -> None:
    """Seed and session id at the top of the JUnit XML, where a replay starts from."""
    record_testsuite_property("chaos_seed", request.config.stash[_SEED_KEY])
    record_testsuite_property("chaos_session", request.config.stash[_SESSION_KEY])


@pytest.fixture
def chaos_seed(
    request: pytest.FixtureRequest, record_property: Callable[[str, Any], None]
) -> TestSeed:
    """This test's seed, derived from the session seed and the test id; an ``int`` that
    remembers both, so a failure rendered from it names the seed that replays it.

    The JUnit XML keeps both: ``chaos_seed`` (the session's, what ``--chaos-seed``
    takes) and ``chaos_test_seed`` (this test's), plus the replay command.
    """
    replay = replay_for(request.node)
    record_property("chaos_seed", replay.session_seed)
    record_property("chaos_test_seed", replay.test_seed)
    record_property("chaos_replay", replay.command())
    return TestSeed(replay)


@pytest.fixture
def chaos_rng(chaos_seed: int) -> random.Random:
    """The test's "faults" stream: victims, moments, fault parameters.  Independent of
    the driver's "workload" stream, which is drawn from the same test seed."""
    return stream(chaos_seed, FAULTS)


@pytest.fixture
def chaos_prefix(request: pytest.FixtureRequest, chaos_session_id: str) -> str:
    """Id prefix for every run, agent and user this test creates."""
    return test_prefix(request.node.nodeid, chaos_session_id)


@pytest.fixture
def chaos_artifacts(request: pytest.FixtureRequest, chaos_session_id: str) -> Path:
    """This test's artifact folder (created lazily by whoever writes into it)."""
    return artifact_dir(request.node)


@pytest.fixture
def chaos_history(
    request: pytest.FixtureRequest,
    chaos_seed: int,
    chaos_artifacts: Path,
    record_property: Callable[[str, Any], None],
) -> Generator[History, None, None]:
    """The test's History; its fault timeline goes to the JUnit XML, all of it to the
    artifact folder when the test fails."""
    history = new_history(request.node)
    request.node.stash[_HISTORY_KEY] = history
    # Streamed as it grows, so a test killed or hung midway still leaves its history;
    # kept only if the test fails (a known finding's xfail included).
    path = history.stream_to_path(chaos_artifacts / "history.jsonl")
    try:
        yield history
    finally:
        history.close_stream()
    windows = history.fault_windows()
    if windows:
        record_property("chaos_fault_timeline", json.dumps([w.describe() for w in windows]))
    if not keeps_evidence(request.node):
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # not empty: another fixture left something
            path.parent.rmdir()


@pytest.fixture
def chaos_verdicts(
    request: pytest.FixtureRequest,
    chaos_seed: int,
    chaos_artifacts: Path,
    record_property: Callable[[str, Any], None],
) -> AssertVerdicts:
    """Assert a list of verdicts: records them in the JUnit XML, fails with the rendering.
    ``known=``: failing verdicts a written-up finding excuses, recorded but not asserted."""

    def check(verdicts: Sequence[Verdict], known: Sequence[Verdict] = ()) -> None:
        request.node.stash[_VERDICTS_KEY] = list(verdicts)
        record_property("chaos_verdicts", json.dumps([v.to_dict() for v in verdicts]))
        # Verdicts a written-up finding excuses are not asserted, but recorded beside the
        # judged ones: the gate reads them to see a known finding grow (chaos.gate.observe).
        if known:
            record_property("chaos_known_verdicts", json.dumps([v.to_dict() for v in known]))
        try:
            assert_verdicts(verdicts, seed=chaos_seed, artifacts=chaos_artifacts)
        except InvariantViolation:
            chaos_artifacts.mkdir(parents=True, exist_ok=True)
            (chaos_artifacts / "verdicts.txt").write_text(verdict_table(verdicts) + "\n")
            raise

    return check


@pytest.fixture(scope="session")
def chaos_provisioned(request: pytest.FixtureRequest) -> Any:
    """Engine, images and binaries, installed or reused; one clear line and a stop if impossible."""
    from chaos.cluster.sweep import sweep_orphans
    from chaos.errors import SetupError
    from chaos.provision import provision

    try:
        provisioned = provision(request.config.getoption("--chaos-image-source"))
    except SetupError as exc:
        pytest.exit(f"loomchaos: {exc}", returncode=3)
    # What killed sessions left (their pid is gone) goes before we start anything new.
    removed = sweep_orphans()
    if removed:
        print(f"loomchaos: swept what dead sessions left: {removed}")
    return provisioned


@pytest.fixture(autouse=True)
def _chaos_provisioning(request: pytest.FixtureRequest) -> None:
    """Every chaos test provisions first (a no-op after the first, seconds when warm)."""
    if request.node.get_closest_marker("chaos") is None:
        return
    if request.config.getoption("--chaos-skip-provision"):
        return
    request.getfixturevalue("chaos_provisioned")
