"""The checkers' compact group index reads back as the dict of lists it replaces."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chaos.checks.grouped import Grouped


def _dict_of_lists(items: list[tuple[str, int]]) -> dict[str, list[tuple[str, int]]]:
    out: dict[str, list[tuple[str, int]]] = {}
    for item in items:
        out.setdefault(item[0], []).append(item)
    return out


@given(st.lists(st.tuples(st.sampled_from("abcd"), st.integers(0, 3))))
def test_grouped_reads_as_a_dict_of_lists(items: list[tuple[str, int]]) -> None:
    grouped = Grouped(items, lambda item: item[0])
    expected = _dict_of_lists(items)
    assert dict(grouped) == expected and grouped == expected
    assert list(grouped) == list(expected) and len(grouped) == len(expected)
    for key in "abcde":
        assert (key in grouped) == (key in expected)
        assert grouped.get(key) == expected.get(key)
        assert grouped.get(key, []) == expected.get(key, [])
        assert grouped.count(key) == len(expected.get(key, []))


def test_equal_items_and_the_same_item_twice_are_all_kept() -> None:
    same = ("a", 1)
    grouped = Grouped([same, same, ("a", 1), ("b", 2)], lambda item: item[0])
    assert grouped["a"] == [same, same, ("a", 1)] and grouped.count("a") == 3
    assert grouped.get("z") is None and grouped.count("z") == 0


def test_a_key_whose_first_item_is_none_is_still_there() -> None:
    grouped: Grouped[None] = Grouped([None, None], lambda _: "k")
    assert grouped.get("k") == [None, None] and grouped.get("x", []) == []


def test_each_lookup_is_a_fresh_list() -> None:
    grouped = Grouped([("a", 1)], lambda item: item[0])
    grouped["a"].append(("a", 9))
    assert grouped["a"] == [("a", 1)]
