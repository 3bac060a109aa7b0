"""The pure parts of the outside-sabotage actions (no Docker, no database)."""

from __future__ import annotations

import pytest

from chaos.testing.outside_sabotage import (
    OBJECT_PREFIX,
    RewriteTrigger,
    SabotageMissed,
    Strike,
    _rows_affected,
    sql_literal,
)


def test_a_strike_keeps_its_first_moment_and_a_miss_is_an_error() -> None:
    strike = Strike("quota +1")
    with pytest.raises(SabotageMissed, match="quota \\+1"):
        strike.require()
    strike.hit(10.0, user="u0")
    strike.hit(20.0, again=True)
    assert strike.require() == 10.0
    assert strike.evidence == {"user": "u0", "again": True}


def test_row_counts_come_from_the_command_status() -> None:
    assert _rows_affected("UPDATE 1") == 1
    assert _rows_affected("DELETE 0") == 0
    assert _rows_affected("INSERT 0 3") == 3
    assert _rows_affected("CREATE TRIGGER") == 0


def test_literals_are_quoted() -> None:
    assert sql_literal("it's") == "'it''s'"


def test_a_trigger_rewrites_or_drops_the_write_and_logs_each_firing() -> None:
    rewrite = RewriteTrigger("dsn", "swap", "t", "OLD.a = 1", {"b": sql_literal("x")})
    body = rewrite._function_sql()
    assert f"INSERT INTO {OBJECT_PREFIX}swap_fired" in body
    assert "NEW.b := 'x'; RETURN NEW;" in body
    assert "RETURN NULL;" in RewriteTrigger("dsn", "lost", "t", "true", None)._function_sql()


def test_names_that_could_inject_sql_are_refused() -> None:
    with pytest.raises(ValueError, match="names must match"):
        RewriteTrigger("dsn", "x; DROP TABLE t", "t", "true", None)
