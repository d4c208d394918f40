"""The agent PC's config files (recorder_service/machine_config.py): layers, validation, messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from recorder_service.config import load_config
from recorder_service.errors import ConfigError
from recorder_service.machine_config import (
    load_agent_settings,
    merge,
    parse_toml,
    read_toml_file,
    registry_layer,
)


def test_keys_are_validated_and_normalised() -> None:
    values = parse_toml(
        'server_url = "https://tandem.example:8443/"\nenroll_token = " abc "\nfps = 2\nmonitor = 1\n'
        'log_level = "debug"\nkeyring_file = "~/.local/state/tandem/token"\n',
        "/etc/tandem/agent.toml",
    )
    assert values == {
        "server_url": "https://tandem.example:8443",
        "enroll_token": "abc",
        "fps": "2.0",
        "monitor": "1",
        "log_level": "DEBUG",
        "keyring_file": "~/.local/state/tandem/token",
    }


def test_unknown_key_names_the_file_the_key_and_the_known_keys() -> None:
    with pytest.raises(ConfigError) as err:
        parse_toml('sever_url = "https://tandem.example"\n', "/etc/tandem/agent.toml")
    message = str(err.value)
    assert message.startswith("/etc/tandem/agent.toml: unknown key 'sever_url'")
    assert "server_url" in message and "enroll_token" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('server_url = "ftp://x"', "/m.toml: server_url: 'ftp://x' is not an http(s) URL"),
        ("server_url = 3", "/m.toml: server_url: expected a quoted string"),
        ("fps = 0", "/m.toml: fps: frames per second must be above 0"),
        ('log_level = "loud"', "/m.toml: log_level: log level must be DEBUG"),
        ("server_url = ", "/m.toml: not valid TOML"),
    ],
)
def test_bad_values_say_where(text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match="^" + expected.replace("(", r"\(").replace(")", r"\)")):
        parse_toml(text, "/m.toml")


def test_first_layer_wins_and_empty_values_do_not_override() -> None:
    installer = parse_toml('server_url = "https://it.example"\nenroll_token = ""', "installer")
    machine = parse_toml('server_url = "https://machine.example"\nenroll_token = "t1"\nfps = 3', "m")
    user = parse_toml('server_url = "https://user.example"\nfps = 9\nmonitor = 2', "u")
    settings = merge([("installer", installer), ("m", machine), ("u", user)])
    assert settings.values == {
        "server_url": "https://it.example",
        "enroll_token": "t1",
        "fps": "3.0",
        "monitor": "2",
    }
    assert settings.sources == {"server_url": "installer", "enroll_token": "m", "fps": "m", "monitor": "u"}
    assert settings.enroll_token == "t1"


def test_flags_and_environment_beat_the_files(tmp_path: Path) -> None:
    settings = merge([("m", parse_toml('server_url = "https://machine.example"\nfps = 3\nmonitor = 2', "m"))])
    env = {**settings.as_env(), "TANDEM_RECORDER_FPS": "7"}
    config = load_config(env=env, monitor=1, spool=str(tmp_path))
    assert (config.server_url, config.fps, config.monitor) == ("https://machine.example", 7.0, 1)


def test_machine_file_from_env_and_missing_files_are_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "user"))
    assert read_toml_file(tmp_path / "absent.toml") == {}
    machine = tmp_path / "agent.toml"
    machine.write_text('server_url = "http://10.0.0.5:8000"\nenroll_token = "code"\n')
    user_dir = tmp_path / "user" / "tandem"
    user_dir.mkdir(parents=True)
    (user_dir / "agent.toml").write_text('server_url = "http://elsewhere"\nfps = 4\n')
    settings = load_agent_settings({"TANDEM_AGENT_CONFIG": str(machine)})
    assert settings.values["server_url"] == "http://10.0.0.5:8000"
    assert settings.sources["server_url"] == str(machine)
    assert settings.values["fps"] == "4.0"
    assert settings.sources["fps"] == str(user_dir / "agent.toml")


def test_registry_layer_reads_the_msi_values_and_validates_them() -> None:
    registry = {"ServerUrl": "https://tandem.example/", "EnrollToken": "", "Other": "x"}
    assert registry_layer(registry.get) == {"server_url": "https://tandem.example"}  # empty = not set
    with pytest.raises(ConfigError, match=r"^HKLM\\SOFTWARE\\Tandem\\Agent: server_url: 'tandem' is not"):
        registry_layer({"ServerUrl": "tandem"}.get)
