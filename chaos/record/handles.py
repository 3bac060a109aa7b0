"""The first few handles per key, byte offsets packed: a soak's excerpt index.

An evidence excerpt quotes the first lines about one key (an agent, a circuit), so a
checker of a history file keeps, for every key, where its first lines start.  A soak
has a million keys with two to four lines each: as a list of ``int`` per key that is
about 170 bytes a key (the list, its item array, an object per offset).
:class:`FirstHandles` keeps a key's one offset as an ``int`` and packs two or more
into one ``bytes`` (8 bytes each): about 60 bytes a key.  Other handles (records, when
the history is in memory) are kept in a list as they come.  Read back, every key gives
a list, in the order added.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from typing import Any

#: One offset: signed 64-bit, native order (any file offset, and -1 for "not from a file").
_OFFSET = struct.Struct("=q")
_WIDTH = _OFFSET.size
_TWO = struct.Struct("=qq")  # a key's first two offsets, packed in one call
_LO, _HI = -(2**63), 2**63


class FirstHandles(Mapping[str, list[Any]]):
    """Key -> the first ``limit`` handles added for it, in order (a read-only mapping)."""

    __slots__ = ("_kept", "_limit")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        # a key's one offset as an int (no packing; 28-32 bytes, less than packed), its
        # first two packed in one call, more appended to them; or a list of any handles
        self._kept: dict[str, int | bytes | list[Any]] = {}

    def add(self, key: str, handle: Any) -> None:
        """One more handle for ``key``; ignored once ``key`` has ``limit`` of them."""
        kept = self._kept.get(key)
        offset = type(handle) is int and _LO <= handle < _HI
        if kept is None:  # most calls: a key's first line
            self._kept[key] = handle if offset else [handle]
            return
        if offset:
            if type(kept) is int:
                if self._limit > 1:
                    self._kept[key] = _TWO.pack(kept, handle)
                return
            if type(kept) is bytes:
                if len(kept) < self._limit * _WIDTH:
                    self._kept[key] = kept + _OFFSET.pack(handle)
                return
        if not isinstance(kept, list):  # offsets first, then another kind of handle
            kept = self._kept[key] = _unpack(kept)
        if len(kept) < self._limit:
            kept.append(handle)

    def __getitem__(self, key: str) -> list[Any]:
        kept = self._kept[key]
        return list(kept) if isinstance(kept, list) else _unpack(kept)

    def __iter__(self) -> Iterator[str]:
        return iter(self._kept)

    def __len__(self) -> int:
        return len(self._kept)

    def __repr__(self) -> str:
        return f"FirstHandles({dict(self.items())!r})"


def _unpack(packed: int | bytes) -> list[Any]:
    if type(packed) is int:
        return [packed]
    assert type(packed) is bytes
    return [offset for (offset,) in _OFFSET.iter_unpack(packed)]
