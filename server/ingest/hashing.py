"""One pass over a file's bytes: SHA-256, whether it is UTF-8, and its similarity sketch.

The pass is fed chunk by chunk (the pipeline reads each chunk in a worker thread and reports
byte progress between them), so a large file never sits whole in memory.
"""

from __future__ import annotations

import codecs
import hashlib
from dataclasses import dataclass
from typing import BinaryIO, Final

from .similarity import Sketch, shingle_hash

__all__ = ["CHUNK_SIZE", "Fingerprint", "Fingerprinter"]

CHUNK_SIZE: Final = 1 << 20


@dataclass(frozen=True, slots=True)
class Fingerprint:
    sha256: str
    size: int
    #: The first byte that is not UTF-8 (offset and value), or None for a UTF-8 file.
    bad_utf8_at: tuple[int, int] | None
    sketch: tuple[int, ...]

    @property
    def utf8(self) -> bool:
        return self.bad_utf8_at is None


class Fingerprinter:
    """Feed it chunks in order, then ``finish``."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self._decoder: codecs.IncrementalDecoder | None = codecs.getincrementaldecoder("utf-8")()
        self._bad: tuple[int, int] | None = None
        self._size = 0
        self._partial_line = b""
        self._sketch = Sketch()

    def feed(self, chunk: bytes) -> None:
        self._sha.update(chunk)
        if self._decoder is not None:
            try:
                self._decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                self._bad = (self._size + exc.start, chunk[exc.start])
                self._decoder = None
        lines = (self._partial_line + chunk).split(b"\n")
        self._partial_line = lines.pop()
        for line in lines:
            self._shingle(line)
        self._size += len(chunk)

    def feed_from(self, stream: BinaryIO, size: int = CHUNK_SIZE) -> int:
        """Read and feed one chunk; the number of bytes read (0 at the end)."""
        chunk = stream.read(size)
        if chunk:
            self.feed(chunk)
        return len(chunk)

    def _shingle(self, line: bytes) -> None:
        line = line.strip()
        if line:
            self._sketch.add(shingle_hash(line))

    def finish(self) -> Fingerprint:
        self._shingle(self._partial_line)
        self._partial_line = b""
        if self._decoder is not None:
            try:
                self._decoder.decode(b"", final=True)
            except UnicodeDecodeError as exc:  # the file ends inside a character
                self._bad = (self._size - len(exc.object) + exc.start, exc.object[exc.start])
        return Fingerprint(
            sha256=self._sha.hexdigest(),
            size=self._size,
            bad_utf8_at=self._bad,
            sketch=self._sketch.values(),
        )
