"""One screen-segment upload's partial file while a request appends to it (the body writer in
server/api/segment_body.py; the upload state is server/calls/segment_uploads.py).

Appends start at the upload's durable offset: anything past it is cut off first, so bytes of a
chunk that failed its checksum, or that a crash left unsynced, never count. ``sync`` fsyncs and
returns the new durable offset (the caller records it only then); ``rollback`` cuts the file
back to where this writer started. Blocking file work: run it in a worker thread.
"""

from __future__ import annotations

import os
from pathlib import Path


class PartialFile:
    """Appends to one upload's partial file from ``start`` (the durable offset): ``sync`` makes
    what was written durable, ``rollback`` cuts the file back to ``start``."""

    def __init__(self, path: Path, start: int) -> None:
        self.start = start
        self.written = 0
        self._fh = open(path, "r+b")  # closed by close(): the file lives across awaits
        self._fh.truncate(start)  # anything past the durable offset is not part of the upload
        self._fh.seek(start)

    def write(self, data: bytes) -> None:
        self._fh.write(data)
        self.written += len(data)

    def sync(self) -> int:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        return self.start + self.written

    def rollback(self) -> None:
        self._fh.truncate(self.start)
        self._fh.seek(self.start)
        self.written = 0
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()
