r"""The Windows installer definition (installers/windows/tandem-agent.wxs), checked on Linux.

wixl (msitools) builds the .wxs into an MSI and msiinfo reads its tables back: per-machine, the
upper-case public properties, the registry values the recorder reads (recorder_service/
machine_config.py), the self-update policy the updater reads (recorder_service/updater/policy.py),
the major upgrade; the self-updater's layout (the bundles under ``versions\<full version>\``, the
``current`` junction made by a custom action, the Run key and the update task starting
``current\...``, as recorder_service/updater/layout.py and in_recorder.program_in expect). The
payload is two stand-in files named like the bundles' executables: the Windows bundles themselves
are built on Windows (build.ps1), and nothing here installs or runs the MSI on Windows.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from recorder_service.machine_config import REGISTRY_KEY, REGISTRY_VALUES
from recorder_service.updater.layout import CURRENT
from recorder_service.updater.policy import (
    POLICY_REGISTRY_KEY,
    POLICY_REGISTRY_VALUES,
    Offer,
    UpdateSettings,
    choose_release,
)
from tests.e2e.harness import ROOT

pytestmark = [
    pytest.mark.installers,
    pytest.mark.skipif(
        not all(shutil.which(t) for t in ("wixl", "wixl-heat", "msiinfo")),
        reason="needs wixl and msitools (scripts/system-packages installer)",
    ),
]

WXS = ROOT / "installers" / "windows" / "tandem-agent.wxs"
HKLM = "2"  # the Registry table's Root for HKEY_LOCAL_MACHINE
VERSION = "0.1.0"  # the MSI's ProductVersion: numeric only
BUNDLE = "0.1.0+g1a2b3c4.dirty"  # the bundles' stamp (installers/build), the release archive's version
# What starts the recorder, through the junction (in_recorder.program_in on Windows)
RECORDER = rf"[INSTALLDIR]{CURRENT}\tandem-recorder\tandem-recorder.exe"


def _harvest(work: Path, app: str, group: str, directory: str, var: str) -> Path:
    (work / app).mkdir()
    (work / app / f"{app}.exe").write_bytes(b"MZ stand-in for the PyInstaller bundle\n")
    fragment = subprocess.run(
        [
            "wixl-heat",
            "-p",
            f"{app}/",
            "--component-group",
            group,
            "--var",
            var,
            "--directory-ref",
            directory,
        ],
        input=f"{app}/{app}.exe\n",
        capture_output=True,
        text=True,
        check=True,
        cwd=work,
    ).stdout
    path = work / f"{app}-files.wxs"
    path.write_text(fragment)
    return path


def _table(msi: Path, name: str) -> list[list[str]]:
    out = subprocess.run(["msiinfo", "export", str(msi), name], capture_output=True, text=True, check=True)
    return [line.split("\t") for line in out.stdout.splitlines()[3:]]  # after the 3 header lines


@pytest.fixture(scope="module")
def msi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("msi")
    fragments = [
        _harvest(work, "tandem-recorder", "RecorderFiles", "RECORDERDIR", "var.RecorderSource"),
        _harvest(work, "tandem-agent", "AgentFiles", "AGENTDIR", "var.AgentSource"),
    ]
    out = work / "tandem-agent.msi"
    built = subprocess.run(
        [
            "wixl",
            "-a",
            "x64",
            "-D",
            "Win64=yes",
            "-D",
            f"Version={VERSION}",
            "-D",
            f"BundleVersion={BUNDLE}",
            "-D",
            "RecorderSource=tandem-recorder",
            "-D",
            "AgentSource=tandem-agent",
            "-o",
            str(out),
            str(WXS),
            *map(str, fragments),
        ],
        capture_output=True,
        text=True,
        cwd=work,
    )
    assert built.returncode == 0 and out.exists(), built.stderr
    return out


def test_per_machine_with_upper_case_public_properties(msi: Path) -> None:
    props = {row[0]: row[1] for row in _table(msi, "Property")}
    assert props["ALLUSERS"] == "1"  # per-machine
    assert props["AUTOUPDATE"] == "1"  # self-update on unless AUTOUPDATE=0
    assert "SERVERURL" not in props and "ENROLLTOKEN" not in props  # only what the command line gives
    upgrades = _table(msi, "Upgrade")
    assert {row[-1] for row in upgrades} == {"WIX_UPGRADE_DETECTED", "WIX_DOWNGRADE_DETECTED"}


def test_registry_values_are_the_ones_the_recorder_reads(msi: Path) -> None:
    rows = {(r[1], r[2], r[3]): r[4] for r in _table(msi, "Registry")}
    for value_name in REGISTRY_VALUES:
        prop = {"ServerUrl": "SERVERURL", "EnrollToken": "ENROLLTOKEN"}[value_name]
        assert rows[(HKLM, REGISTRY_KEY, value_name)] == f"[{prop}]"
    # the self-update policy, under the key and value name the updater reads (sources.py)
    assert "AutoUpdate" in POLICY_REGISTRY_VALUES
    assert rows[(HKLM, POLICY_REGISTRY_KEY, "AutoUpdate")] == "#[AUTOUPDATE]"  # a DWORD
    # Every user's session starts the recorder at logon, through current (the updater's switch).
    run = rows[(HKLM, r"SOFTWARE\Microsoft\Windows\CurrentVersion\Run", "TandemRecorder")]
    assert run == f'"{RECORDER}" run'
    assert len(rows) == 4, rows  # nothing else is written to the registry


def _install_paths(msi: Path) -> dict[str, str]:
    """Each file's path under Program Files, from the File, Component and Directory tables."""
    dirs = {row[0]: (row[1], row[2].split("|")[-1]) for row in _table(msi, "Directory")}

    def path(directory: str) -> str:
        parent, name = dirs[directory]
        if directory == "ProgramFiles64Folder" or not parent:
            return ""
        return f"{path(parent)}\\{name}".lstrip("\\") if name != "." else path(parent)

    component_dir = {row[0]: row[2] for row in _table(msi, "Component")}
    return {
        row[2].split("|")[-1]: f"{path(component_dir[row[1]])}\\{row[2].split('|')[-1]}"
        for row in _table(msi, "File")
    }


def test_bundles_install_into_a_version_directory_for_the_self_updater(msi: Path) -> None:
    r"""``versions\<full version>\`` as recorder_service/updater/layout.install_root expects (the
    flat ``Tandem\tandem-recorder\`` of before gave the updater nowhere to install)."""
    paths = _install_paths(msi)
    assert paths["tandem-recorder.exe"] == rf"Tandem\versions\{BUNDLE}\tandem-recorder\tandem-recorder.exe"
    assert paths["tandem-agent.exe"] == rf"Tandem\versions\{BUNDLE}\tandem-agent\tandem-agent.exe"
    props = {row[0]: row[1] for row in _table(msi, "Property")}
    assert props["ProductVersion"] == VERSION


def test_the_version_directory_is_the_release_the_updater_compares(msi: Path) -> None:
    r"""The updater compares the directory ``current`` names with the offered releases
    (``system.check`` → ``policy.choose_release``). Named by the numeric ProductVersion, the MSI's
    build looked older than its own release (PEP 440 orders ``0.1.0+g…`` above ``0.1.0``) and was
    reinstalled once; named by the bundles' full stamp, it is up to date."""
    dirs = {row[0]: row[2].split("|")[-1] for row in _table(msi, "Directory")}
    offers = [Offer(BUNDLE, 100)]
    assert choose_release(dirs["VERSIONDIR"], offers, UpdateSettings(), "pc-1").version is None
    assert choose_release(VERSION, offers, UpdateSettings(), "pc-1").version == BUNDLE  # the old naming
    # build.ps1 (never run here) hands the stamp installers/build's way makes to the .wxs
    build = (WXS.parent / "build.ps1").read_text()
    assert '"-dBundleVersion=$env:TANDEM_VERSION"' in build
    assert '$env:TANDEM_VERSION = "$pkg+g$describe"' in build


def test_current_junction_is_made_after_the_files_and_removed_before_them(msi: Path) -> None:
    actions = {row[0]: (int(row[1]), row[2], row[3]) for row in _table(msi, "CustomAction")}
    exe_from_property, deferred, no_impersonate, ignore_return = 50, 1024, 2048, 64
    assert actions["SetCmd"][1:] == ("CMD", "[System64Folder]cmd.exe")
    current, target = rf"[INSTALLDIR]{CURRENT}", rf"[INSTALLDIR]versions\{BUNDLE}"
    # a failure to make it fails the install (msiexec's 1603, rolled back): nothing would start
    assert actions["CurrentJunctionCreate"] == (
        exe_from_property | deferred | no_impersonate,
        "CMD",
        f'/d /c (if exist "{current}" rmdir "{current}") & mklink /J "{current}" "{target}"',
    )
    remove = f'/d /c if exist "{current}" rmdir "{current}"'
    assert actions["CurrentJunctionDelete"] == (
        exe_from_property | deferred | no_impersonate | ignore_return,
        "CMD",
        remove,
    )
    versions = r"[INSTALLDIR]versions"
    assert actions["UpdaterVersionsDelete"][2] == f'/d /c if exist "{versions}" rmdir /s /q "{versions}"'
    seq = {row[0]: (row[1], int(row[2])) for row in _table(msi, "InstallExecuteSequence")}
    assert seq["SetCmd"][1] < seq["InstallInitialize"][1]
    assert seq["InstallFiles"][1] < seq["CurrentJunctionCreate"][1] < seq["WriteRegistryValues"][1]
    assert seq["CurrentJunctionDelete"][1] < seq["RemoveFiles"][1] < seq["UpdaterVersionsDelete"][1]
    assert seq["CurrentJunctionCreate"][0] == 'NOT REMOVE~="ALL"'
    assert seq["CurrentJunctionDelete"][0] == 'REMOVE~="ALL"'
    # a major upgrade removes the old MSI first: the updater's versions (one may run) stay
    assert seq["UpdaterVersionsDelete"][0] == 'REMOVE~="ALL" AND NOT UPGRADINGPRODUCTCODE'


def test_update_check_is_a_scheduled_task_as_system(msi: Path) -> None:
    """schtasks.exe, deferred and not impersonated (so as SYSTEM), after the files are installed;
    removed at uninstall; a failure of schtasks never fails the install (exit codes stay msiexec's)."""
    actions = {row[0]: (int(row[1]), row[2], row[3]) for row in _table(msi, "CustomAction")}
    exe_from_property, deferred, no_impersonate, ignore_return = 50, 1024, 2048, 64
    flags = exe_from_property | deferred | no_impersonate | ignore_return
    assert actions["SetSchtasks"][1:] == ("SCHTASKS", "[System64Folder]schtasks.exe")
    assert actions["UpdateTaskCreate"] == (
        flags,
        "SCHTASKS",
        r'/Create /F /TN "Tandem\UpdateCheck" /RU SYSTEM /SC MINUTE /MO 15 '
        rf'/TR "\"{RECORDER}\" update-check"',
    )
    assert actions["UpdateTaskDelete"] == (flags, "SCHTASKS", r'/Delete /F /TN "Tandem\UpdateCheck"')
    sequence = {row[0]: (row[1], int(row[2])) for row in _table(msi, "InstallExecuteSequence")}
    assert sequence["SetSchtasks"][1] < sequence["InstallInitialize"][1]
    assert sequence["InstallFiles"][1] < sequence["UpdateTaskCreate"][1] < sequence["InstallFinalize"][1]
    assert sequence["InstallInitialize"][1] < sequence["UpdateTaskDelete"][1] < sequence["RemoveFiles"][1]
    assert sequence["UpdateTaskCreate"][0] == 'NOT REMOVE~="ALL"'
    assert sequence["UpdateTaskDelete"][0] == 'REMOVE~="ALL"'
