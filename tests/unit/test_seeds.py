"""Seeds: derived test seeds, independent named streams, and replay lines that replay."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import random

import pytest

from chaos.record.history import History
from chaos.seeds import (
    FAULTS,
    HYPOTHESIS,
    WORKLOAD,
    Replay,
    TestSeed,
    derive_test_seed,
    parse_replay,
    replay_line,
    replay_of,
    stream,
    stream_seed,
)

NODE = "tests/chaos/test_x.py::test_y"


def test_test_seed_is_stable_and_depends_on_session_and_id() -> None:
    assert derive_test_seed(1, NODE) == derive_test_seed(1, NODE)
    assert derive_test_seed(1, NODE) != derive_test_seed(2, NODE)
    assert derive_test_seed(1, NODE) != derive_test_seed(1, NODE + "2")
    # The derivation the plugin has always used: old histories keep their meaning.
    old = int.from_bytes(hashlib.sha256(b"1234:a::b").digest()[:4], "big")
    assert derive_test_seed(1234, "a::b") == old


def test_streams_are_deterministic_named_and_independent() -> None:
    draws = {name: [stream(7, name).random() for _ in range(3)] for name in (WORKLOAD, FAULTS)}
    assert draws[WORKLOAD] == [stream(7, WORKLOAD).random() for _ in range(3)]
    assert draws[WORKLOAD] != draws[FAULTS]
    # Neither stream is the bare seed's: two consumers of one number no longer collide.
    assert stream(7, FAULTS).random() != random.Random(7).random()
    assert stream(7, FAULTS).random() != stream(8, FAULTS).random()
    assert 0 <= stream_seed(7, HYPOTHESIS) < 2**32
    with pytest.raises(ValueError):
        stream_seed(7, "")


def test_replay_line_names_the_session_seed_and_the_test() -> None:
    replay = Replay(123, NODE)
    line = replay.line()
    assert line == (
        f"seed: session 123, test {derive_test_seed(123, NODE)} "
        f"(replay: pytest '{NODE}' -m chaos --chaos-seed=123)"
    )
    assert parse_replay("noise\nE  " + line + "\nmore") == [NODE, "-m", "chaos", "--chaos-seed=123"]
    assert parse_replay(line) == replay.argv()


def test_a_fast_test_replays_without_the_chaos_marker_and_odd_ids_survive_quoting() -> None:
    odd = "tests/unit/test_q.py::test_p[it's a [case]]"
    replay = Replay(5, odd, chaos=False)
    assert "-m chaos" not in replay.command()
    assert parse_replay(replay.line()) == [odd, "--chaos-seed=5"]
    with pytest.raises(ValueError):
        parse_replay("no replay here")


def test_test_seed_is_an_int_that_remembers_its_replay() -> None:
    seed = TestSeed(Replay(9, NODE))
    assert seed == derive_test_seed(9, NODE) and isinstance(seed, int)
    assert json.dumps({"s": seed}) == json.dumps({"s": int(seed)})
    assert random.Random(seed).random() == random.Random(int(seed)).random()
    assert pickle.loads(pickle.dumps(seed)).replay == seed.replay
    assert replay_of(seed) == Replay(9, NODE)
    assert "--chaos-seed=9" in replay_line(seed)


def test_a_saved_history_still_knows_how_to_replay() -> None:
    replay = Replay(11, NODE)
    history = History(seed=TestSeed(replay), meta=replay.to_meta())
    buffer = io.StringIO()
    history.dump(buffer)
    loaded = History.load(buffer.getvalue().splitlines())
    assert type(loaded.seed) is int  # the number survives, the attribute does not...
    assert replay_of(loaded.seed, loaded.meta) == replay  # ...the meta carries it
    assert "(replay:" not in replay_line(loaded.seed)
    assert "--chaos-seed=11" in replay_line(loaded.seed, loaded.meta)
