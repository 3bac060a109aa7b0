"""Items grouped by a key, compact: the checkers' runs-by-agent indexes.

A soak has a million agent ids, nearly all with one run.  As a ``dict`` of lists each
key costs a list (88 bytes with its item array) on top of its dict entry; :class:`Grouped`
keeps each key's first item straight in one dict and only the later items of a key in
lists, in a second dict.  Read back, it is the dict of lists it replaces.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TypeVar, overload

T = TypeVar("T")
D = TypeVar("D")


class Grouped(Mapping[str, list[T]]):
    """Key -> the items of that key, in the order given (a read-only mapping of lists).

    Every lookup builds the key's list afresh, so a caller may keep or change it.
    """

    __slots__ = ("_first", "_rest")

    def __init__(self, items: Iterable[T], key: Callable[[T], str]) -> None:
        first: dict[str, T] = {}
        rest: dict[str, list[T]] = {}
        keep_first = first.setdefault
        for item in items:
            k = key(item)
            size = len(first)
            keep_first(k, item)
            if len(first) == size:  # not the key's first item
                rest.setdefault(k, []).append(item)
        self._first, self._rest = first, rest

    def __getitem__(self, key: str) -> list[T]:
        head = self._first[key]
        more = self._rest.get(key)
        return [head] if more is None else [head, *more]

    @overload
    def get(self, key: str, /) -> list[T] | None: ...

    @overload
    def get(self, key: str, /, default: list[T] | D) -> list[T] | D: ...

    def get(self, key: str, /, default: object = None) -> object:
        # Mapping.get would go through __getitem__ and a KeyError for every absent key
        head = self._first.get(key)
        if head is None and key not in self._first:
            return default
        more = self._rest.get(key)
        return [head] if more is None else [head, *more]

    def count(self, key: str) -> int:
        """How many items ``key`` has (0 for a key never seen), without building a list."""
        if key not in self._first:
            return 0
        more = self._rest.get(key)
        return 1 if more is None else 1 + len(more)

    def __contains__(self, key: object) -> bool:
        return key in self._first

    def __iter__(self) -> Iterator[str]:
        return iter(self._first)

    def __len__(self) -> int:
        return len(self._first)

    def __repr__(self) -> str:
        return f"Grouped({dict(self.items())!r})"
