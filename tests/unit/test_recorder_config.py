"""Config parsing and the credential store's keyring policy."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from recorder_service.config import load_config
from recorder_service.credentials import TokenStore, _is_desktop_backend
from recorder_service.errors import ConfigError, CredentialsError


def test_flags_override_env_and_defaults(tmp_path: Path) -> None:
    env = {
        "TANDEM_RECORDER_SERVER": "http://envhost:8000/",
        "TANDEM_RECORDER_FPS": "2",
        "TANDEM_RECORDER_SPOOL": str(tmp_path / "s"),
    }
    cfg = load_config(env=env)
    assert cfg.server_url == "http://envhost:8000" and cfg.fps == 2.0 and cfg.monitor == 0
    assert cfg.spool_dir == tmp_path / "s" and cfg.keyring_file is None
    cfg = load_config(server="https://flag.example", fps="7.5", monitor="1", env=env)
    assert cfg.server_url == "https://flag.example" and cfg.fps == 7.5 and cfg.monitor == 1
    assert load_config(env={}).spool_dir.name == "spool"


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"server": "ftp://x"}, "--server"),
        ({"server": "http://"}, "--server"),
        ({"fps": "0"}, "--fps"),
        ({"fps": "nan"}, "--fps"),
        ({"fps": "fast"}, "--fps"),
        ({"monitor": "-1"}, "--monitor"),
        ({"log_level": "loud"}, "--log-level"),
    ],
)
def test_bad_values_name_their_source(kwargs: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load_config(env={}, **kwargs)
    with pytest.raises(ValueError):  # ConfigError is a ValueError too
        load_config(env={}, **kwargs)


def test_env_errors_name_the_variable() -> None:
    with pytest.raises(ConfigError, match="TANDEM_RECORDER_FPS"):
        load_config(env={"TANDEM_RECORDER_FPS": "-3"})


def test_file_keyring_roundtrip_is_0600(tmp_path: Path) -> None:
    path = tmp_path / "kr" / "tokens.cfg"
    store = TokenStore(path)
    store.save("http://srv:1", "secret-token")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = TokenStore(path)
    assert again.token("http://srv:1") == "secret-token"
    assert again.default_server() == "http://srv:1"
    assert again.delete("http://srv:1")
    with pytest.raises(CredentialsError, match="login"):
        again.token("http://srv:1")


def test_refuses_without_desktop_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    import keyring
    from keyring.backends import fail
    from keyrings.alt.file import PlaintextKeyring

    failing = fail.Keyring()  # type: ignore[no-untyped-call]  # keyring's backends have untyped __init__s
    assert not _is_desktop_backend(failing)
    assert not _is_desktop_backend(PlaintextKeyring())
    monkeypatch.setattr(keyring, "get_keyring", lambda: failing)
    with pytest.raises(CredentialsError, match="--keyring-file"):
        TokenStore(None)
