"""Every ``tandem-server`` command finds its settings one way (``server.cli_settings``): the config
file (``--config``, else ``TANDEM_SERVER_CONFIG``) and ``--data-dir`` over it. A command module
with its own copy of that resolution could drift from the others (a command that ignores
``--data-dir`` writes to another database than the one the operator named)."""

from __future__ import annotations

import argparse
import ast
import os
from pathlib import Path

import pytest

from server.cli_settings import settings_from_args

SERVER = Path(__file__).resolve().parents[2] / "server"


def _calls_load_settings(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name == "load_settings":
                return True
    return False


def test_no_command_module_resolves_the_settings_itself() -> None:
    modules = sorted([SERVER / "cli.py", *SERVER.glob("*_cli.py")])
    assert len(modules) >= 10, [m.name for m in modules]
    own = [m.name for m in modules if _calls_load_settings(m)]
    assert own == [], f"use server.cli_settings.settings_from_args in {own}"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in [k for k in os.environ if k.startswith("TANDEM_SERVER_")]:
        monkeypatch.delenv(key)
    path = tmp_path / "server.toml"
    path.write_text(f'data_dir = "{tmp_path / "from-config"}"\n', encoding="utf-8")
    return path


def test_data_dir_option_beats_the_config_file(config: Path, tmp_path: Path) -> None:
    args = argparse.Namespace(config=str(config), data_dir=str(tmp_path / "from-option"))
    settings = settings_from_args(args)
    assert settings.data_dir == tmp_path / "from-option"
    assert settings.config == config


def test_without_the_option_the_config_files_data_dir_holds(config: Path, tmp_path: Path) -> None:
    # A command without a --data-dir option at all (no such attribute) as well as one left empty.
    for args in (argparse.Namespace(config=str(config)), argparse.Namespace(config=str(config), data_dir="")):
        assert settings_from_args(args).data_dir == tmp_path / "from-config"


def test_the_environment_names_the_config_file_when_no_option_does(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TANDEM_SERVER_CONFIG", str(config))
    settings = settings_from_args(argparse.Namespace(config=None, data_dir=None))
    assert settings.data_dir == tmp_path / "from-config"
