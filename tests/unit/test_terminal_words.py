"""The terminal table's words ride in the check parameters: a target with other words
changes its own parameters, and a saved history re-checks with the words it ran under."""

from __future__ import annotations

import time

from chaos.checks.params import CheckParams, params_from_history, record_params
from chaos.checks.terminal_table import CONTRACT_WORDS, TerminalWords
from chaos.record.history import History
from chaos.record.vocabulary import RunRow

OTHER = TerminalWords(replica_died="owner_lost", replica_died_error="owner lost")


def _failed(reason: str | None, error: str | None) -> RunRow:
    now = time.time()
    return RunRow("r1", "a1", "u1", "r1", "failed", reason, error, now, now, now)


def test_the_default_words_are_the_contracts() -> None:
    assert CheckParams().terminal == CONTRACT_WORDS
    assert CONTRACT_WORDS.reap_reasons == {"replica_died", "owner_replica_dead"}
    assert CONTRACT_WORDS.in_table(_failed("replica_died", "owner replica died: r2"))


def test_a_reap_row_in_other_words_is_legal_only_under_those_words() -> None:
    row = _failed("owner_lost", "owner lost")
    assert OTHER.in_table(row)
    assert not CONTRACT_WORDS.in_table(row)
    assert not OTHER.in_table(_failed("replica_died", "owner replica died"))
    assert OTHER.reap_reasons == {"owner_lost", "owner_replica_dead"}


def test_a_failed_row_must_carry_its_reasons_error() -> None:
    assert not OTHER.in_table(_failed("owner_lost", "something else"))
    assert not OTHER.in_table(_failed("no_such_reason", "owner lost"))
    assert OTHER.in_table(_failed(None, "provider said no"))
    assert not OTHER.in_table(_failed(None, None))


def test_the_words_are_recorded_and_read_back_with_the_params() -> None:
    history = History()
    record_params(history, CheckParams(terminal=OTHER, test_prefix="t"))
    back = params_from_history(history)
    assert back is not None and back.terminal == OTHER
    assert CheckParams.from_dict(CheckParams().to_dict()).terminal == CONTRACT_WORDS


def test_unknown_word_keys_from_a_newer_suite_are_ignored() -> None:
    raw = {**OTHER.to_dict(), "a_word_from_the_future": "x"}
    assert TerminalWords.from_value(raw) == OTHER
