"""The Windows installer definition (installers/windows/tandem-agent.wxs), checked on Linux.

wixl (msitools) builds the .wxs into an MSI and msiinfo reads its tables back: per-machine, the
upper-case public properties, the registry values the recorder reads (recorder_service/
machine_config.py), the machine-wide Run key that starts the recorder in each session at logon,
the self-update policy, the major upgrade. The payload is two stand-in files named like the
bundles' executables: the Windows bundles themselves are built on Windows (build.ps1), and
nothing here installs or runs the MSI on Windows.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from recorder_service.machine_config import REGISTRY_KEY, REGISTRY_VALUES
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
            "Version=0.1.0",
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
    assert rows[(HKLM, r"SOFTWARE\Policies\Tandem\Agent", "AutoUpdate")] == "#[AUTOUPDATE]"  # a DWORD
    # Every user's session starts the recorder at logon, from the bundle the MSI installs.
    run = rows[(HKLM, r"SOFTWARE\Microsoft\Windows\CurrentVersion\Run", "TandemRecorder")]
    assert run == '"[RECORDERDIR]tandem-recorder.exe" run'
    files = {r[2].split("|")[-1] for r in _table(msi, "File")}
    assert {"tandem-recorder.exe", "tandem-agent.exe"} <= files
    assert len(rows) == 4, rows  # nothing else is written to the registry


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
        r'/TR "\"[RECORDERDIR]tandem-recorder.exe\" update-check"',
    )
    assert actions["UpdateTaskDelete"] == (flags, "SCHTASKS", r'/Delete /F /TN "Tandem\UpdateCheck"')
    sequence = {row[0]: (row[1], int(row[2])) for row in _table(msi, "InstallExecuteSequence")}
    assert sequence["SetSchtasks"][1] < sequence["InstallInitialize"][1]
    assert sequence["InstallFiles"][1] < sequence["UpdateTaskCreate"][1] < sequence["InstallFinalize"][1]
    assert sequence["InstallInitialize"][1] < sequence["UpdateTaskDelete"][1] < sequence["RemoveFiles"][1]
    assert sequence["UpdateTaskCreate"][0] == 'NOT REMOVE~="ALL"'
    assert sequence["UpdateTaskDelete"][0] == 'REMOVE~="ALL"'
