"""One pass over a file's bytes: SHA-256, whether it is UTF-8, and its similarity sketch.

The pass is fed chunk by chunk (the pipeline reads each chunk in a worker thread and reports
byte progress between them), so a large file never sits whole in memory.
"""

from __future__ import annotations

import codecs
import hashlib
from dataclasses import dataclass
from typing import BinaryIO, Final

from tidings.ingest.similarity import Sketch, shingle_hash

__all__ = ["CHUNK_SIZE", "Fingerprint", "Fingerprinter"]

CHUNK_SIZE: Final = 1 << 20
#: Bytes of a line that count for similarity; a file with no line breaks is not held whole.
MAX_LINE: Final = 1 << 16


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
        self._check_utf8(chunk)
        lines = chunk.split(b"\n")
        lines[0] = self._partial_line + lines[0][:MAX_LINE]
        self._partial_line = lines.pop()[:MAX_LINE]
        for line in lines:
            self._shingle(line)
        self._size += len(chunk)

    def feed_from(self, stream: BinaryIO, size: int = CHUNK_SIZE) -> int:
        """Read and feed one chunk; the number of bytes read (0 at the end)."""
        chunk = stream.read(size)
        if chunk:
            self.feed(chunk)
        return len(chunk)

    def _check_utf8(self, chunk: bytes, final: bool = False) -> None:
        if self._decoder is None:
            return
        pending = len(self._decoder.getstate()[0])  # the start of a character cut by the chunk
        try:
            self._decoder.decode(chunk, final=final)
        except UnicodeDecodeError as exc:  # exc.object is the pending bytes, then the chunk
            self._bad = (self._size - pending + exc.start, exc.object[exc.start])
            self._decoder = None

    def _shingle(self, line: bytes) -> None:
        line = line[:MAX_LINE].strip()
        if line:
            self._sketch.add(shingle_hash(line))

    def finish(self) -> Fingerprint:
        self._shingle(self._partial_line)
        self._partial_line = b""
        self._check_utf8(b"", final=True)  # the file may end inside a character
        return Fingerprint(
            sha256=self._sha.hexdigest(),
            size=self._size,
            bad_utf8_at=self._bad,
            sketch=self._sketch.values(),
        )
