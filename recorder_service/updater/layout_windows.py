"""``current`` on Windows: a directory junction, retargeted in place.

The Windows install is laid out like the Linux one (the MSI, installers/windows/tandem-agent.wxs)::

    C:\\Program Files\\Tandem\\versions\\<v>\\tandem-recorder\\tandem-recorder.exe
    C:\\Program Files\\Tandem\\current  ->  versions\\<v>     (a junction)

and the logon Run key and the update task start ``current\\tandem-recorder\\tandem-recorder.exe``.

Why a junction, and why retargeted in place rather than renamed over:

* A symbolic link needs SeCreateSymbolicLinkPrivilege (or developer mode); a junction needs no
  privilege, is resolved by the kernel for every program (the Run key, the Task Scheduler, a
  shortcut), and ``cmd /c mklink /J`` -- the MSI's custom action -- makes the first one.
* The Linux way (make the new link under a temporary name, rename it over ``current``) does not
  exist for a junction: a junction is a directory, and ``MoveFileEx`` documents that
  ``MOVEFILE_REPLACE_EXISTING`` "cannot be used if lpNewFileName or lpExistingFileName names a
  directory". Renaming ``current`` away and the new one into place would leave a moment with no
  ``current``, in which a user who logs on starts no recorder at all.
* ``FSCTL_SET_REPARSE_POINT`` on an *existing* junction replaces its reparse data when the tag
  matches ("If an existing reparse point is being modified, the tag ... must match"): one
  file-system operation, so a program resolving ``current`` sees the old target or the new one,
  never none. That is the switch. A pointer file (``current.txt``) read by a launcher stub would
  also be atomic (a file *can* be replaced with ``MoveFileEx``), but it needs another executable
  in front of every start -- one more binary for anti-virus tools to judge, and a process the
  session's Run key owns instead of the recorder.
* Only the first ``current`` is made under a temporary name (``.current.new``) and renamed into
  place -- renaming to a name that does not exist is allowed for directories -- so a half-made
  junction is never ``current``.

The file-system calls sit behind ``JunctionOps``: ``Win32Junctions`` (ctypes, Windows only;
never run here) and, in the unit tests, a fake that records the order of the calls. The logic
here -- order, verification, rollback, refusals -- is what the tests check on Linux.
"""

from __future__ import annotations

import os
import shutil
import struct
import sys
from pathlib import Path
from typing import Protocol

from recorder_service.updater.layout import CURRENT, LayoutError, versions_dir

IO_REPARSE_TAG_MOUNT_POINT = 0xA0000003
FSCTL_SET_REPARSE_POINT = 0x000900A4
TEMP_NAME = ".current.new"


class JunctionOps(Protocol):
    """The file-system operations the switch needs (real on Windows, a fake in the tests)."""

    def exists(self, path: Path) -> bool: ...  # anything at path, a dangling junction too
    def is_dir(self, path: Path) -> bool: ...  # a real directory (through junctions)
    def read_junction(self, path: Path) -> Path | None: ...  # its target, None if not a junction
    def make_junction(self, path: Path, target: Path) -> None: ...  # a new one; path must not exist
    def retarget(self, path: Path, target: Path) -> None: ...  # an existing junction, in place
    def rename(self, src: Path, dst: Path) -> None: ...  # dst must not exist (no replacing)
    def remove_junction(self, path: Path) -> None: ...  # the junction only, never its target
    def remove_tree(self, path: Path) -> None: ...


class JunctionCurrent:
    """``layout.CurrentLink`` for Windows."""

    def __init__(self, ops: JunctionOps) -> None:
        self.ops = ops

    def target(self, root: Path) -> Path | None:
        if not self.ops.exists(root / CURRENT):
            return None
        return self.ops.read_junction(root / CURRENT)

    def current(self, root: Path) -> str | None:
        target = self.target(root)
        if target is None or target.parent != versions_dir(root):
            return None  # not a junction, or one pointing outside versions\ (not ours)
        return target.name

    def switch(self, root: Path, version: str) -> None:
        """Point ``current`` at ``versions\\<version>``; on any failure ``current`` is what it
        was before (or, the first time, absent) and LayoutError says why."""
        new = versions_dir(root) / version
        if not self.ops.is_dir(new):
            raise LayoutError(f"{new} is not an installed version")
        link = root / CURRENT
        if not self.ops.exists(link):
            self._create(root, new)
            return
        old = self.ops.read_junction(link)
        if old is None:
            raise LayoutError(
                f"{link} is a real directory, not a junction (an old flat install?): not replacing it"
            )
        if old == new:
            return
        try:
            self.ops.retarget(link, new)
        except OSError as exc:
            raise LayoutError(f"cannot point {link} at {new}: {exc}; it still points at {old}") from exc
        seen = self.ops.read_junction(link)
        if seen != new:  # a file system that ignored the call: put the old target back
            self.ops.retarget(link, old)
            raise LayoutError(f"{link} read back as {seen} after pointing it at {new}; back to {old}")

    def _create(self, root: Path, new: Path) -> None:
        tmp = root / TEMP_NAME
        if self.ops.exists(tmp):  # left by an interrupted run: only ever a junction of ours
            if self.ops.read_junction(tmp) is None:
                raise LayoutError(f"{tmp} is in the way and is not a junction")
            self.ops.remove_junction(tmp)
        self.ops.make_junction(tmp, new)
        try:
            self.ops.rename(tmp, root / CURRENT)
        except OSError as exc:
            self.ops.remove_junction(tmp)
            raise LayoutError(f"cannot rename {tmp} to {root / CURRENT}: {exc}") from exc

    def remove_version(self, root: Path, version: str, running: set[str]) -> None:
        """Delete ``versions\\<version>``; never the one ``current`` names nor one a recorder runs
        (Windows would delete the files not in use and leave that version half there)."""
        if version == self.current(root) or version in running:
            raise LayoutError(f"refusing to remove {version}: it is current or a recorder runs it")
        self.ops.remove_tree(versions_dir(root) / version)


def mount_point_buffer(target: str) -> bytes:
    """The REPARSE_DATA_BUFFER of a junction to the absolute path ``target`` ([MS-FSCC]
    2.1.2.5): tag, data length, then the substitute name (``\\??\\C:\\...``, the NT path the
    kernel follows) and the print name (what ``dir`` shows), each UTF-16LE and NUL-terminated."""
    if not (len(target) > 2 and target[1] == ":" and target[2] == "\\"):
        raise LayoutError(f"a junction needs an absolute drive path, not {target!r}")
    substitute = ("\\??\\" + target).encode("utf-16-le")
    printed = target.encode("utf-16-le")
    names = substitute + b"\0\0" + printed + b"\0\0"
    header = struct.pack("<HHHH", 0, len(substitute), len(substitute) + 2, len(printed))
    data = header + names
    return struct.pack("<IHH", IO_REPARSE_TAG_MOUNT_POINT, len(data), 0) + data


class Win32Junctions:  # pragma: no cover - Windows only, never run here
    """``JunctionOps`` with the Win32 API."""

    def exists(self, path: Path) -> bool:
        return os.path.lexists(path)

    def is_dir(self, path: Path) -> bool:
        return path.is_dir()

    def read_junction(self, path: Path) -> Path | None:
        if getattr(os.lstat(path), "st_reparse_tag", 0) != IO_REPARSE_TAG_MOUNT_POINT:
            return None
        text = os.readlink(path)
        for prefix in ("\\\\?\\", "\\??\\"):
            if text.startswith(prefix):
                text = text[len(prefix) :]
        return Path(text)

    def make_junction(self, path: Path, target: Path) -> None:
        os.mkdir(path)
        try:
            self.retarget(path, target)
        except OSError:
            os.rmdir(path)
            raise

    def retarget(self, path: Path, target: Path) -> None:
        if sys.platform != "win32":
            raise OSError("junctions are made on Windows only")
        import ctypes
        from ctypes import wintypes

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        kernel32.CreateFileW.restype = wintypes.HANDLE
        generic_write, open_existing = 0x40000000, 3
        open_reparse_point, backup_semantics = 0x00200000, 0x02000000
        handle = kernel32.CreateFileW(
            str(path), generic_write, 0, None, open_existing, open_reparse_point | backup_semantics, None
        )
        if handle == wintypes.HANDLE(-1).value:
            raise ctypes.WinError(ctypes.get_last_error())
        try:
            buffer = mount_point_buffer(str(target))
            returned = wintypes.DWORD()
            ok = kernel32.DeviceIoControl(
                wintypes.HANDLE(handle),
                FSCTL_SET_REPARSE_POINT,
                buffer,
                len(buffer),
                None,
                0,
                ctypes.byref(returned),
                None,
            )
            if not ok:
                raise ctypes.WinError(ctypes.get_last_error())
        finally:
            kernel32.CloseHandle(wintypes.HANDLE(handle))

    def rename(self, src: Path, dst: Path) -> None:
        os.rename(src, dst)  # MoveFileExW without MOVEFILE_REPLACE_EXISTING: fails if dst exists

    def remove_junction(self, path: Path) -> None:
        os.rmdir(path)  # removes the reparse point's directory, not what it points at

    def remove_tree(self, path: Path) -> None:
        shutil.rmtree(path)
