"""The updater compares what a version *is* (its bundle's VERSION stamp), not what its directory is
called (issue 15 item 3/5). The MSI names its directory by the numeric ProductVersion (``0.1.0``)
while the bundle and its release archive carry the full stamp (``0.1.0+g1a2b3c4``, which PEP 440
orders above ``0.1.0``): comparing directory names made the updater reinstall the running build
once, and made the recorder re-execute into the build it already runs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from recorder_service.updater.apply import current_release, current_version, switch_current
from recorder_service.updater.in_recorder import SelfUpdate
from recorder_service.updater.layout import bundle_version, installed_version, stamped_version
from recorder_service.updater.policy import Offer, UpdateSettings
from recorder_service.updater.system import MARKER, UpdaterConfig, _collect_garbage, check
from recorder_service.updater.tuf_client import Downloaded, ReleaseClient, UpdateRefused

BUILD = "0.1.0+g1a2b3c4"


def _msi_install(root: Path, directory: str = "0.1.0", stamp: str | None = BUILD) -> Path:
    """A version directory as the MSI lays it out: named by ProductVersion, the bundle (harvested
    from PyInstaller's one-folder output) carrying the stamp in ``_internal/VERSION``."""
    program = root / "versions" / directory / "tandem-recorder" / "tandem-recorder"
    program.parent.mkdir(parents=True)
    program.write_text("#!/bin/sh\n")
    if stamp is not None:
        (program.parent / "_internal").mkdir()
        (program.parent / "_internal" / "VERSION").write_text(stamp + "\n")
    return program


class _Releases(ReleaseClient):
    """The server's signed release list, without a TUF repository: what check() asks of it."""

    def __init__(self, *versions: str) -> None:  # no super().__init__: nothing is fetched
        self.offered = [Offer(v, 100) for v in versions]
        self.downloads: list[str] = []

    def offers(self) -> list[Offer]:
        return self.offered

    def download(self, version: str) -> Downloaded:
        self.downloads.append(version)
        raise UpdateRefused(f"release {version} refused: not served in this test")


def _config(root: Path) -> UpdaterConfig:
    (root.parent / "activity").mkdir(exist_ok=True)
    return UpdaterConfig(
        root=root,
        server_url="http://tandem.test",
        trusted_root=b"{}",
        trust_problem="",
        settings=UpdateSettings(),
        activity_dir=root.parent / "activity",
        cache_dir=root.parent / "cache",
        device_id="pc-1",
    )


def test_an_msi_install_is_up_to_date_with_the_release_of_its_own_build(tmp_path: Path) -> None:
    root = tmp_path / "Tandem"
    _msi_install(root)
    switch_current(root, "0.1.0")
    assert (current_version(root), current_release(root)) == ("0.1.0", BUILD)
    releases = _Releases(BUILD)
    result = check(_config(root), client=releases)
    assert (result.state, releases.downloads) == ("up_to_date", [])
    assert BUILD in result.reason
    # a newer build is still fetched (and here refused, the running one kept)
    releases = _Releases(BUILD, "0.2.0+g5e6f7a8")
    result = check(_config(root), client=releases)
    assert (result.state, releases.downloads) == ("refused", ["0.2.0+g5e6f7a8"])
    assert f"{BUILD} keeps running" in result.reason


def test_a_recorder_does_not_reexecute_into_the_build_it_runs(tmp_path: Path) -> None:
    _msi_install(tmp_path)
    switch_current(tmp_path, "0.1.0")
    hook = SelfUpdate(root=tmp_path, version=BUILD, directory=tmp_path, env={})
    assert hook.due("idle") is None
    # another build under current is still followed
    _msi_install(tmp_path, "0.2.0+g5e6f7a8", "0.2.0+g5e6f7a8")
    switch_current(tmp_path, "0.2.0+g5e6f7a8")
    assert hook.due("idle") == tmp_path / "current" / "tandem-recorder" / "tandem-recorder"


def test_an_installed_bundle_says_its_stamp_whatever_its_directory_is_called(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    program = _msi_install(tmp_path)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(program))
    assert installed_version({}) == BUILD  # what its heartbeat and activity record say
    plain = _msi_install(tmp_path, "0.3.0", stamp=None)  # a bundle without a stamp: its directory
    monkeypatch.setattr(sys, "executable", str(plain))
    assert installed_version({}) == "0.3.0"


def test_where_the_stamp_is_read_and_the_fallback(tmp_path: Path) -> None:
    version_dir = tmp_path / "versions" / "0.1.0"
    (version_dir / "tandem-recorder").mkdir(parents=True)
    assert bundle_version(version_dir) is None and stamped_version(tmp_path, "0.1.0") == "0.1.0"
    (version_dir / "VERSION").write_text("0.1.0+gdeb\n")  # the .deb's copy beside the bundles
    assert stamped_version(tmp_path, "0.1.0") == "0.1.0+gdeb"
    (version_dir / "tandem-recorder" / "VERSION").write_text("   \n")  # empty: not a stamp
    assert stamped_version(tmp_path, "0.1.0") == "0.1.0+gdeb"
    (version_dir / "tandem-recorder" / "_internal").mkdir()
    (version_dir / "tandem-recorder" / "_internal" / "VERSION").write_text(f"{BUILD}\n")
    assert stamped_version(tmp_path, "0.1.0") == BUILD  # the recorder bundle's own stamp first
    assert stamped_version(tmp_path, None) is None


def test_a_version_a_live_recorder_runs_is_kept_when_its_directory_has_another_name(tmp_path: Path) -> None:
    root = tmp_path / "Tandem"
    for directory, stamp in (("0.1.0", BUILD), ("0.2.0+gb", "0.2.0+gb"), ("0.3.0+gc", "0.3.0+gc")):
        _msi_install(root, directory, stamp)
        (root / "versions" / directory / MARKER).write_text("sha\n")
    switch_current(root, "0.3.0+gc")
    # the recorder says BUILD (its stamp); its directory is 0.1.0: that one stays
    _collect_garbage(root, current="0.3.0+gc", previous="0.2.0+gb", running={BUILD})
    assert sorted(p.name for p in (root / "versions").iterdir()) == ["0.1.0", "0.2.0+gb", "0.3.0+gc"]
    _collect_garbage(root, current="0.3.0+gc", previous="0.2.0+gb", running=set())
    assert sorted(p.name for p in (root / "versions").iterdir()) == ["0.2.0+gb", "0.3.0+gc"]
