"""The SIP allow-list: addresses and networks, IPv4-mapped IPv6, bad entries named."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.sip.trust import DEFAULT_TRUSTED, TrustedSources


def test_default_is_loopback_only() -> None:
    trust = TrustedSources.parse(DEFAULT_TRUSTED)
    assert trust.allows("127.0.0.1") and trust.allows("127.0.0.2") and trust.allows("::1")
    assert not trust.allows("10.0.0.1") and not trust.allows("::2") and not trust.allows("192.168.1.1")


def test_networks_hosts_and_mapped_addresses() -> None:
    trust = TrustedSources.parse(["10.1.0.0/16", "192.0.2.7", "2001:db8::/32"])
    assert trust.allows("10.1.200.3") and not trust.allows("10.2.0.1")
    assert trust.allows("192.0.2.7") and not trust.allows("192.0.2.8")
    assert trust.allows("::ffff:10.1.0.9")  # IPv4 peer on a dual-stack socket
    assert trust.allows("2001:db8::5%eth0") and not trust.allows("2001:db9::5")
    assert not trust.allows("pbx.example.com")  # names are never trusted: sockets give addresses
    assert not trust.allows("")


def test_verdicts_cached_and_bounded() -> None:
    trust = TrustedSources.parse(["10.0.0.0/8"])
    for i in range(5000):
        trust.allows(f"192.0.{i // 256}.{i % 256}")
    assert len(trust._cache) <= 4096
    assert trust.allows("10.9.9.9")


def test_bad_entry_named() -> None:
    with pytest.raises(ValueError, match=r"'10\.0\.0\.300'"):
        TrustedSources.parse(["127.0.0.1", "10.0.0.300"])


def test_empty_list_trusts_nobody() -> None:
    assert not TrustedSources.parse([]).allows("127.0.0.1")


def test_settings_parse_the_list_once_and_name_a_bad_entry(tmp_path: Path) -> None:
    from server.errors import ConfigError
    from server.settings import load_settings

    assert load_settings(None, data_dir=tmp_path).sip_trusted_sources == ["127.0.0.0/8", "::1"]
    with pytest.raises(ConfigError, match=r"'pbx\.example\.com' is not an IP address"):
        load_settings(None, data_dir=tmp_path, sip_trusted_sources=["10.0.0.0/8", "pbx.example.com"])
    with pytest.raises(ConfigError, match="go together"):
        load_settings(None, data_dir=tmp_path, sip_digest_realm="r")
    users = tmp_path / "users"
    users.write_text("sbc1:pw\n", encoding="utf-8")
    settings = load_settings(None, data_dir=tmp_path, sip_digest_realm="r", sip_digest_users=str(users))
    assert settings.sip_digest_users == users and settings.sip_digest_algorithms == ["MD5"]
