"""Issue 15 item 7's precedence, through the loader the recorder runs (not only ``merge``): the
installer's properties (the MSI's HKLM values) beat the machine config, which beats the user's
config, key by key; an empty installer value is "not set"; the PC-wide loader never reads a
user's file. Windows is simulated here: ``sys.platform`` says win32 and the registry layer reads a
dict instead of ``winreg`` (that reader itself is Windows-only, see test_machine_config.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from recorder_service import machine_config
from recorder_service.machine_config import load_agent_settings, load_machine_settings, registry_layer

MSI_VALUES = {"ServerUrl": "https://installer.example", "EnrollToken": ""}  # ENROLLTOKEN not given


@pytest.fixture
def pc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    machine = tmp_path / "ProgramData" / "agent.toml"
    machine.parent.mkdir()
    machine.write_text('server_url = "https://machine.example"\nenroll_token = "tet_machine"\nfps = 3\n')
    user = tmp_path / "AppData" / "agent.toml"
    user.parent.mkdir()
    user.write_text('server_url = "https://user.example"\nfps = 9\nmonitor = 2\nlog_level = "debug"\n')
    monkeypatch.setattr(machine_config, "user_config_path", lambda: user)
    monkeypatch.setattr(machine_config, "_winreg_layer", lambda: registry_layer(MSI_VALUES.get))
    monkeypatch.setattr(sys, "platform", "win32")
    return {"TANDEM_AGENT_CONFIG": str(machine), "machine": str(machine), "user": str(user)}


def test_installer_properties_then_machine_config_then_user_config(pc: dict[str, str]) -> None:
    settings = load_agent_settings(pc)
    registry = "HKLM\\" + machine_config.REGISTRY_KEY
    assert settings.values == {
        "server_url": "https://installer.example",  # all three set it: the installer's wins
        "enroll_token": "tet_machine",  # the installer's is empty: the machine file's
        "fps": "3.0",  # machine beats user
        "monitor": "2",  # only the user set it
        "log_level": "DEBUG",
    }
    assert settings.sources == {
        "server_url": registry,
        "enroll_token": pc["machine"],
        "fps": pc["machine"],
        "monitor": pc["user"],
        "log_level": pc["user"],
    }


def test_the_pcs_own_layers_never_read_a_users_file(pc: dict[str, str]) -> None:
    settings = load_machine_settings(pc)
    assert settings.values == {
        "server_url": "https://installer.example",
        "enroll_token": "tet_machine",
        "fps": "3.0",
    }
