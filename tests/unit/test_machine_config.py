"""The agent PC's config files (recorder_service/machine_config.py): layers, validation, messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from recorder_service.config import load_config
from recorder_service.errors import ConfigError
from recorder_service.machine_config import (
    AgentSettings,
    exposed_token_warning,
    load_agent_settings,
    load_machine_settings,
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


def _token_layers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, str], Path, Path]:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "user"))
    machine, token_file = tmp_path / "agent.toml", tmp_path / "enroll-token"
    machine.write_text('server_url = "http://10.0.0.5:8000"\nenroll_token = "tet_byhand"\n')
    token_file.write_text("tet_fromdebconf\n")
    token_file.chmod(0o600)
    user_dir = tmp_path / "user" / "tandem"
    user_dir.mkdir(parents=True)
    (user_dir / "agent.toml").write_text('enroll_token = "tet_users_own"\n')
    env = {"TANDEM_AGENT_CONFIG": str(machine), "TANDEM_AGENT_ENROLL_TOKEN_FILE": str(token_file)}
    return env, machine, token_file


def test_the_root_only_token_file_is_the_installer_layer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Installer properties -> machine config -> user config: the token debconf was given (the
    root-only file) beats one IT typed into agent.toml, which beats the user's."""
    env, machine, token_file = _token_layers(tmp_path, monkeypatch)
    for settings in (load_machine_settings(env), load_agent_settings(env)):  # the broker; root's recorder
        assert settings.enroll_token == "tet_fromdebconf"
        assert settings.sources["enroll_token"] == str(token_file)
        assert settings.sources["server_url"] == str(machine)
        assert settings.root_token_file == ""
    token_file.unlink()  # no file: agent.toml's token, as before
    assert load_machine_settings(env).enroll_token == "tet_byhand"
    token_file.write_text("tet_a tet_b\n")
    with pytest.raises(ConfigError, match=r"enroll-token: expected the enrolment token alone on one line"):
        load_machine_settings(env)


def test_a_user_cannot_read_the_token_file_but_learns_it_is_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user's recorder (the file is 0600 root): no token from it, no error, and
    ``root_token_file`` says the PC's broker holds one -- the recorder is a device of the PC."""
    env, machine, token_file = _token_layers(tmp_path, monkeypatch)
    machine.write_text('server_url = "http://10.0.0.5:8000"\n')
    real_read = Path.read_text

    def read_text(self: Path, *args: object, **kwargs: object) -> str:
        if self == token_file:
            raise PermissionError(13, "Permission denied", str(self))
        return real_read(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", read_text)
    settings = load_agent_settings(env)
    assert settings.root_token_file == str(token_file)
    assert settings.enroll_token == "tet_users_own"  # the user's layer, as ever (the broker ignores it)
    assert load_machine_settings(env).enroll_token is None


def test_a_device_token_every_user_can_read_is_warned_about() -> None:
    def settings(source: str, token: str = "tet_x") -> AgentSettings:
        return AgentSettings({"enroll_token": token}, {"enroll_token": source})

    warning = exposed_token_warning(settings("/etc/tandem/agent.toml"), lambda _: 0o100644)
    assert warning.startswith("the device enrolment token in /etc/tandem/agent.toml is readable by every")
    assert "mode 644" in warning and "/etc/tandem/enroll-token (0600 root" in warning
    assert exposed_token_warning(settings("/etc/tandem/enroll-token"), lambda _: 0o100600) == ""
    assert exposed_token_warning(settings("/etc/tandem/agent.toml", "ABCDE-12345"), lambda _: 0o100644) == ""
    assert exposed_token_warning(settings("HKLM\\SOFTWARE\\Tandem\\Agent"), lambda _: 0o100644) == ""
