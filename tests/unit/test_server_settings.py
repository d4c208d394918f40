from __future__ import annotations

from pathlib import Path

import pytest

from server.errors import ConfigError
from server.settings import load_settings


def test_defaults_and_file_and_env_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "tandem.toml"
    cfg.write_text('http_port = 9000\nsip_port = 5070\ndata_dir = "/srv/tandem"\n')
    monkeypatch.setenv("TANDEM_SERVER_SIP_PORT", "5080")
    s = load_settings(cfg)
    assert s.http_port == 9000 and s.sip_port == 5080 and s.data_dir == Path("/srv/tandem")
    assert s.resolved_database_url == "sqlite:////srv/tandem/tandem.db"


def test_unknown_key_in_file_is_refused_with_its_name(tmp_path: Path) -> None:
    cfg = tmp_path / "tandem.toml"
    cfg.write_text("http_prot = 9000\n")
    with pytest.raises(ConfigError, match=r"unknown setting.*http_prot.*known settings"):
        load_settings(cfg)


def test_unknown_key_in_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_SERVER_SCREEN_PERCENT", "50")
    with pytest.raises(ConfigError, match="TANDEM_SERVER_SCREEN_PERCENT"):
        load_settings(None)


def test_invalid_values_are_explained(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("screen_percentage = 150\n")
    with pytest.raises(ConfigError, match="screen_percentage"):
        load_settings(cfg)
    cfg.write_text("rtp_port_min = 30000\nrtp_port_max = 20000\n")
    with pytest.raises(ConfigError, match="rtp_port_min"):
        load_settings(cfg)
    cfg.write_text("not toml [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(cfg)
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.toml")
