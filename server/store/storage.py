"""The storage interface every recording goes through, and its local-disk backend.

Keys look like ``recordings/YYYY/MM/DD/<interaction>/voice.wav``. WebDAV, S3 and encryption at
rest come later as further backends behind the same interface, so nothing else opens media
files by path except through ``local_path`` (which a remote backend may not offer).
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import time
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol

from server.errors import StorageError, StorageFullError, StorageKeyExistsError


class Storage(Protocol):
    def put_file(self, key: str, source: Path) -> int:
        """Move ``source`` into storage at ``key``, which must not exist yet (raises
        ``StorageKeyExistsError``: nothing stored is ever overwritten); returns the size. Atomic:
        a crash leaves either nothing at ``key`` or the whole file (and at most a partial file
        that ``discard`` removes)."""

    def discard(self, key: str) -> None:
        """Remove the file at ``key`` and any partial file of it. Only for a file no committed
        database row points to (an upload that failed or that recovery rolls back) or a derived
        file being regenerated from evidence; never for a stored recording."""

    def open_read(self, key: str) -> BinaryIO: ...

    def size(self, key: str) -> int: ...

    def exists(self, key: str) -> bool: ...

    def local_path(self, key: str) -> Path | None:
        """A path on this machine for media tools, when the backend has one."""


def recording_key(interaction_id: str, started_at: float, name: str) -> str:
    day = time.strftime("%Y/%m/%d", time.gmtime(started_at))
    return f"recordings/{day}/{interaction_id}/{name}"


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        pure = PurePosixPath(key)
        if pure.is_absolute() or ".." in pure.parts or not pure.parts:
            raise StorageError(f"invalid storage key {key!r}")
        return self.root.joinpath(*pure.parts)

    def put_file(self, key: str, source: Path) -> int:
        target = self._path(key)
        partial = target.with_name(target.name + ".partial")
        moved = False  # source renamed to partial (same filesystem) rather than copied
        try:
            if target.exists():
                raise StorageKeyExistsError(f"{key} is already stored; recordings are never overwritten")
            target.parent.mkdir(parents=True, exist_ok=True)
            # Same filesystem: a rename. Otherwise a copy; the source goes only once the file is
            # stored. fsync, then link, so a crash never leaves a half file under the final key.
            try:
                os.replace(source, partial)
                moved = True
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                shutil.copyfile(source, partial)
            with open(partial, "rb") as fh:
                os.fsync(fh.fileno())
            # link() fails with EEXIST where rename() would replace: two writers racing for one
            # key cannot overwrite each other, whatever the check above saw.
            try:
                os.link(partial, target)
            except FileExistsError as exc:
                raise StorageKeyExistsError(
                    f"{key} is already stored; recordings are never overwritten"
                ) from exc
            partial.unlink()
            if not moved:
                source.unlink()
            self._fsync_dir(target.parent)
            return target.stat().st_size
        except BaseException as exc:
            self._give_back(partial, source, moved)  # a failed put never costs the caller its file
            if isinstance(exc, OSError):
                if exc.errno == errno.ENOSPC:
                    raise StorageFullError(f"storage is full while writing {key}") from exc
                raise StorageError(f"cannot store {key}: {exc.strerror}") from exc
            raise

    @staticmethod
    def _give_back(partial: Path, source: Path, moved: bool) -> None:
        try:
            if moved and partial.exists():
                os.replace(partial, source)
            else:
                partial.unlink(missing_ok=True)
        except OSError:
            partial.unlink(missing_ok=True)

    @staticmethod
    def _fsync_dir(directory: Path) -> None:
        if os.name != "posix":
            return  # directories cannot be opened for fsync on Windows
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def discard(self, key: str) -> None:
        target = self._path(key)
        try:
            target.with_name(target.name + ".partial").unlink(missing_ok=True)
            target.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot remove {key}: {exc.strerror}") from exc

    def open_read(self, key: str) -> BinaryIO:
        try:
            return open(self._path(key), "rb")
        except OSError as exc:
            raise StorageError(f"cannot read {key}: {exc.strerror}") from exc

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except OSError as exc:
            raise StorageError(f"cannot stat {key}: {exc.strerror}") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def local_path(self, key: str) -> Path | None:
        return self._path(key)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
