"""Login form checks and command-line parsing of the agent desktop (no Qt needed)."""

from __future__ import annotations

import io

import pytest

from agent_app.errors import LoginInputError, UsageError
from agent_app.main import PASSWORD_ENV, parse_args
from agent_app.validation import validate_login


def test_validate_login_normalises() -> None:
    values = validate_login(" tandem:8000/ ", " alice ", "pw", " 4711 ")
    assert (values.server_url, values.username, values.password, values.dn) == (
        "http://tandem:8000",
        "alice",
        "pw",
        "4711",
    )


@pytest.mark.parametrize(
    ("server", "user", "password", "dn", "needle"),
    [
        ("", "a", "p", "1", "server"),
        ("ftp://x", "a", "p", "1", "http://"),
        ("http://[bad", "a", "p", "1", "http://"),
        ("http://host:port", "a", "p", "1", "http://"),
        ("http://x", "", "p", "1", "user"),
        ("http://x", "a", "", "1", "password"),
        ("http://x", "a", "p", "", "DN"),
        ("http://x", "a", "p", "47a1", "DN"),  # the server's grammar: digits only
        ("http://x", "a", "p", "*67", "DN"),
    ],
)
def test_validate_login_rejects(server: str, user: str, password: str, dn: str, needle: str) -> None:
    with pytest.raises(LoginInputError, match=needle):
        validate_login(server, user, password, dn)


def test_parse_args_password_from_stdin_and_env() -> None:
    opts = parse_args(
        ["--server", "http://s:1", "--user", "a", "--dn", "4711", "--password-stdin", "--auto-login"],
        {},
        io.StringIO("secret\n"),
    )
    assert (opts.server, opts.user, opts.dn, opts.password, opts.auto_login) == (
        "http://s:1",
        "a",
        "4711",
        "secret",
        True,
    )
    opts = parse_args(["--user", "a"], {PASSWORD_ENV: "envpw", "TANDEM_SERVER": "http://e:2"}, io.StringIO())
    assert opts.password == "envpw" and opts.server == "http://e:2" and not opts.auto_login


def test_auto_login_needs_credentials() -> None:
    with pytest.raises(UsageError):
        parse_args(["--user", "a", "--dn", "1", "--auto-login"], {}, io.StringIO())


def test_validate_login_sends_the_dn_in_the_servers_normal_form() -> None:
    assert validate_login("http://x", "a", "p", " 47 11 ").dn == "4711"
    assert validate_login("http://x", "a", "p", "+1 (555) 01-00").dn == "+15550100"
