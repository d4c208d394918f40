"""Checks on what the agent typed into the login form (pure), before anything is sent."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from agent_app.errors import LoginInputError
from tandem_protocol.dn import DnError
from tandem_protocol.dn import normalise as normalise_dn


@dataclass(frozen=True, slots=True)
class LoginInput:
    server_url: str
    username: str
    password: str
    dn: str


def validate_login(server_url: str, username: str, password: str, dn: str) -> LoginInput:
    """Trimmed, checked form values; `LoginInputError` naming the first problem."""
    server_url, username, dn = server_url.strip(), username.strip(), dn.strip()
    if not server_url:
        raise LoginInputError("Enter the server address.")
    if "://" not in server_url:
        server_url = "http://" + server_url  # agents type "tandem:8000"
    try:
        parts = urlsplit(server_url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise LoginInputError("The server address must look like http://host:port.") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LoginInputError("The server address must look like http://host:port.")
    if not username:
        raise LoginInputError("Enter your user name.")
    if not password:
        raise LoginInputError("Enter your password.")
    if not dn:
        raise LoginInputError("Enter the DN (extension) of your phone.")
    try:
        dn = normalise_dn(dn)  # the server's grammar: "47 11" is 4711, letters are no DN
    except DnError as exc:
        raise LoginInputError(f"The DN must be digits, with an optional leading + ({exc}).") from exc
    return LoginInput(server_url.rstrip("/"), username, password, dn)
