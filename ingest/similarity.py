"""Content similarity of two files from small sketches: bottom-k of their line hashes.

A file's shingles are its non-blank lines (stripped), each hashed to 64 bits; its sketch is the
``SKETCH_SIZE`` smallest distinct hashes. The Jaccard similarity of two files is estimated from
the smallest hashes of the union of their sketches, and is exact whenever the two files hold no
more than ``SKETCH_SIZE`` distinct lines between them. The sketch is a few kilobytes however large
the file, so many earlier files can be compared on every upload.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable, Sequence
from typing import Final

__all__ = ["NEAR_DUPLICATE_THRESHOLD", "SKETCH_SIZE", "Sketch", "jaccard", "shingle_hash"]

SKETCH_SIZE: Final = 256
#: Files at least this alike (and not identical) are reported as near duplicates.
NEAR_DUPLICATE_THRESHOLD: Final = 0.5


def shingle_hash(data: bytes) -> int:
    """A stable 64-bit hash (the same on every node and in every process, unlike ``hash``)."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


class Sketch:
    """The ``size`` smallest distinct hashes added so far."""

    __slots__ = ("_heap", "_members", "size")

    def __init__(self, size: int = SKETCH_SIZE) -> None:
        self.size = size
        self._heap: list[int] = []  # negated: the largest kept hash is at the top
        self._members: set[int] = set()

    def add(self, value: int) -> None:
        if value in self._members:
            return
        if len(self._heap) < self.size:
            heapq.heappush(self._heap, -value)
            self._members.add(value)
        elif value < -self._heap[0]:
            dropped = -heapq.heapreplace(self._heap, -value)
            self._members.discard(dropped)
            self._members.add(value)

    def update(self, values: Iterable[int]) -> Sketch:
        for value in values:
            self.add(value)
        return self

    def values(self) -> tuple[int, ...]:
        return tuple(sorted(self._members))


def jaccard(first: Sequence[int], second: Sequence[int], size: int = SKETCH_SIZE) -> float:
    """Estimated |A n B| / |A u B| of the files behind two sketches (0.0 when both are empty)."""
    smallest = sorted(set(first) | set(second))[:size]
    if not smallest:
        return 0.0
    in_first, in_second = set(first), set(second)
    shared = sum(1 for value in smallest if value in in_first and value in in_second)
    return shared / len(smallest)
