"""The Windows parts of the updater, on Linux. The ``current`` junction
(recorder_service/updater/layout_windows.py): the switch's order, its verification and rollback,
its refusals, and which old versions go -- against an in-memory file system that records every
call (the Win32 calls themselves never ran here). The HKLM policy the MSI writes, read by the
updater through an injected registry reader."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from recorder_service.updater.layout import LayoutError, SymlinkCurrent, versions_to_remove
from recorder_service.updater.layout_windows import (
    IO_REPARSE_TAG_MOUNT_POINT,
    TEMP_NAME,
    JunctionCurrent,
    mount_point_buffer,
)
from recorder_service.updater.policy import POLICY_REGISTRY_KEY, registry_policy_layer
from recorder_service.updater.system import load_updater_config

ROOT = Path("/pf/Tandem")
VERSIONS = ROOT / "versions"


class FakeJunctions:
    """Directories, junctions (path -> target) and a log of the mutating calls, in order."""

    def __init__(self, *dirs: Path) -> None:
        self.dirs = set(dirs)
        self.junctions: dict[Path, Path] = {}
        self.calls: list[tuple[str, ...]] = []
        self.fail: dict[str, OSError] = {}  # operation name -> the error it raises
        self.ignore_retarget = False  # a file system that "succeeds" without changing anything

    def _maybe_fail(self, op: str) -> None:
        if op in self.fail:
            raise self.fail[op]

    def exists(self, path: Path) -> bool:
        return path in self.dirs or path in self.junctions

    def is_dir(self, path: Path) -> bool:
        return path in self.dirs or self.junctions.get(path) in self.dirs

    def read_junction(self, path: Path) -> Path | None:
        return self.junctions.get(path)

    def make_junction(self, path: Path, target: Path) -> None:
        assert not self.exists(path)
        self.calls.append(("make", path.name, target.name))
        self._maybe_fail("make")
        self.junctions[path] = target

    def retarget(self, path: Path, target: Path) -> None:
        assert path in self.junctions
        self.calls.append(("retarget", path.name, target.name))
        self._maybe_fail("retarget")
        if not self.ignore_retarget:
            self.junctions[path] = target

    def rename(self, src: Path, dst: Path) -> None:
        assert not self.exists(dst), "MoveFileEx cannot replace a directory"
        self.calls.append(("rename", src.name, dst.name))
        self._maybe_fail("rename")
        self.junctions[dst] = self.junctions.pop(src)

    def remove_junction(self, path: Path) -> None:
        self.calls.append(("unlink", path.name))
        del self.junctions[path]

    def remove_tree(self, path: Path) -> None:
        self.calls.append(("rmtree", path.name))
        self.dirs.discard(path)


def _fs(*versions: str) -> FakeJunctions:
    return FakeJunctions(ROOT, VERSIONS, *(VERSIONS / v for v in versions))


def test_first_current_is_made_under_a_temporary_name_then_renamed_into_place() -> None:
    fs = _fs("0.1.0")
    link = JunctionCurrent(fs)
    assert link.current(ROOT) is None
    link.switch(ROOT, "0.1.0")
    assert fs.calls == [("make", TEMP_NAME, "0.1.0"), ("rename", TEMP_NAME, "current")]
    assert link.current(ROOT) == "0.1.0" and ROOT / TEMP_NAME not in fs.junctions


def test_a_leftover_temporary_junction_is_removed_first_and_a_failed_rename_leaves_nothing() -> None:
    fs = _fs("0.1.0")
    fs.junctions[ROOT / TEMP_NAME] = VERSIONS / "0.0.9"  # an interrupted earlier run
    fs.fail["rename"] = PermissionError("access denied")
    with pytest.raises(LayoutError, match=r"cannot rename .*current.*access denied"):
        JunctionCurrent(fs).switch(ROOT, "0.1.0")
    assert fs.calls == [
        ("unlink", TEMP_NAME),
        ("make", TEMP_NAME, "0.1.0"),
        ("rename", TEMP_NAME, "current"),
        ("unlink", TEMP_NAME),
    ]
    assert fs.junctions == {}  # no current, no half-made one


def test_an_existing_current_is_retargeted_in_place_never_removed_or_renamed() -> None:
    """A user logging on during the switch must find a ``current``: no rmdir, no rename over."""
    fs = _fs("0.1.0", "0.2.0")
    fs.junctions[ROOT / "current"] = VERSIONS / "0.1.0"
    link = JunctionCurrent(fs)
    link.switch(ROOT, "0.2.0")
    assert fs.calls == [("retarget", "current", "0.2.0")]
    assert link.current(ROOT) == "0.2.0"
    link.switch(ROOT, "0.2.0")  # already there: nothing touched
    assert fs.calls == [("retarget", "current", "0.2.0")]


def test_a_failed_retarget_leaves_the_old_target_and_says_so() -> None:
    fs = _fs("0.1.0", "0.2.0")
    fs.junctions[ROOT / "current"] = VERSIONS / "0.1.0"
    fs.fail["retarget"] = OSError(5, "Access is denied")
    with pytest.raises(LayoutError, match=r"cannot point .*0\.2\.0.*still points at .*0\.1\.0"):
        JunctionCurrent(fs).switch(ROOT, "0.2.0")
    assert JunctionCurrent(fs).current(ROOT) == "0.1.0"


def test_a_retarget_that_did_not_take_is_rolled_back() -> None:
    fs = _fs("0.1.0", "0.2.0")
    fs.junctions[ROOT / "current"] = VERSIONS / "0.1.0"
    fs.ignore_retarget = True
    with pytest.raises(LayoutError, match=r"read back as .*0\.1\.0.*back to"):
        JunctionCurrent(fs).switch(ROOT, "0.2.0")
    assert fs.calls == [("retarget", "current", "0.2.0"), ("retarget", "current", "0.1.0")]


def test_refusals_before_anything_is_touched() -> None:
    fs = _fs("0.1.0")
    fs.junctions[ROOT / "current"] = VERSIONS / "0.1.0"
    with pytest.raises(LayoutError, match=r"0\.3\.0 is not an installed version"):
        JunctionCurrent(fs).switch(ROOT, "0.3.0")
    flat = _fs("0.1.0")
    flat.dirs.add(ROOT / "current")  # a real directory where the junction belongs
    with pytest.raises(LayoutError, match="a real directory, not a junction"):
        JunctionCurrent(flat).switch(ROOT, "0.1.0")
    assert fs.calls == [] and flat.calls == []
    outside = _fs()
    outside.junctions[ROOT / "current"] = Path("/elsewhere/0.1.0")
    assert JunctionCurrent(outside).current(ROOT) is None  # not one of ours


def test_the_running_version_is_never_removed() -> None:
    fs = _fs("0.1.0", "0.2.0", "0.3.0")
    fs.junctions[ROOT / "current"] = VERSIONS / "0.3.0"
    link = JunctionCurrent(fs)
    with pytest.raises(LayoutError, match=r"refusing to remove 0\.3\.0"):
        link.remove_version(ROOT, "0.3.0", set())
    with pytest.raises(LayoutError, match=r"refusing to remove 0\.1\.0"):
        link.remove_version(ROOT, "0.1.0", {"0.1.0"})  # a recorder still runs it
    assert fs.calls == []
    link.remove_version(ROOT, "0.2.0", {"0.1.0"})
    assert fs.calls == [("rmtree", "0.2.0")]


def test_the_linux_link_refuses_the_same(tmp_path: Path) -> None:
    (tmp_path / "versions" / "0.1.0").mkdir(parents=True)
    link = SymlinkCurrent()
    link.switch(tmp_path, "0.1.0")
    with pytest.raises(LayoutError, match="refusing to remove"):
        link.remove_version(tmp_path, "0.1.0", set())
    assert (tmp_path / "versions" / "0.1.0").is_dir()


def test_which_old_versions_go() -> None:
    installed = ["0.1.0", "0.2.0", "0.3.0", "0.4.0", "0.10.0", "odd"]
    ours = set(installed) - {"0.1.0"}  # 0.1.0 is the MSI's / package's own
    plan = versions_to_remove(installed, current="0.10.0", previous="0.4.0", running=set(), ours=ours)
    assert plan == ["odd", "0.2.0", "0.3.0"]  # 0.10.0 > 0.4.0: versions, not strings
    # keep two: the one before, then the newest other
    plan = versions_to_remove(
        installed, current="0.10.0", previous="0.2.0", running=set(), ours=ours, keep_old=2
    )
    assert plan == ["odd", "0.3.0"]
    # a version a live recorder still runs stays whatever keep_old says
    plan = versions_to_remove(
        installed, current="0.10.0", previous="0.4.0", running={"0.2.0"}, ours=ours, keep_old=0
    )
    assert plan == ["odd", "0.3.0", "0.4.0"]
    assert "0.10.0" not in versions_to_remove(
        installed, current="0.10.0", previous=None, running=set(), ours=ours
    )


def test_the_junction_reparse_buffer() -> None:
    """[MS-FSCC] 2.1.2.5, what FSCTL_SET_REPARSE_POINT is given."""
    target = r"C:\Program Files\Tandem\versions\0.2.0"
    buf = mount_point_buffer(target)
    tag, length, reserved = struct.unpack_from("<IHH", buf)
    assert (tag, reserved) == (IO_REPARSE_TAG_MOUNT_POINT, 0) and length == len(buf) - 8
    sub_off, sub_len, print_off, print_len = struct.unpack_from("<HHHH", buf, 8)
    names = buf[16:]
    assert names[sub_off : sub_off + sub_len].decode("utf-16-le") == "\\??\\" + target
    assert names[print_off : print_off + print_len].decode("utf-16-le") == target
    assert names[sub_off + sub_len : sub_off + sub_len + 2] == b"\0\0" and names.endswith(b"\0\0")
    with pytest.raises(LayoutError, match="absolute drive path"):
        mount_point_buffer(r"versions\0.2.0")


def test_the_updater_reads_the_hklm_policy_first(tmp_path: Path) -> None:
    """``AutoUpdate`` = 0 (the MSI's ``AUTOUPDATE=0``, or group policy) turns the updater off
    whatever the machine file says; ``UpdatePin`` pins. The reader is the real winreg one on
    Windows; here a fake with the values the MSI writes."""
    machine = tmp_path / "agent.toml"
    machine.write_text('server_url = "https://it.example"\nauto_update = true\nupdate_pin = "0.3.0"\n')
    env = {"TANDEM_AGENT_CONFIG": str(machine), "TANDEM_INSTALL_ROOT": str(tmp_path / "pf")}
    hklm = "HKLM\\" + POLICY_REGISTRY_KEY
    off = load_updater_config(env, registry=lambda: registry_policy_layer({"AutoUpdate": 0}.get))
    assert not off.settings.enabled and off.settings.source == hklm
    pinned = load_updater_config(env, registry=lambda: registry_policy_layer({"UpdatePin": "0.2.0"}.get))
    assert pinned.settings.enabled and pinned.settings.pinned == "0.2.0" and pinned.settings.source == hklm
    no_policy = load_updater_config(env, registry=dict)  # no key under Policies: the file decides
    assert no_policy.settings.pinned == "0.3.0" and no_policy.settings.source == str(machine)
