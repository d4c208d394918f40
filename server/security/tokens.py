"""Bearer tokens: random, shown once, stored only as a SHA-256 hash with an expiry."""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "tdm_"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def looks_like_token(value: str) -> bool:
    return value.startswith(TOKEN_PREFIX) and 20 < len(value) < 200


# -- scopes --------------------------------------------------------------------------------------
# A token's scope is the ``client`` it was issued to (api_tokens.client). A password login yields
# one of PASSWORD_SCOPES; RECORDER_SCOPE comes only from a recorder enrolment code
# (server/services/enrolment.py), so an agent logged in on the web or desktop cannot act as his
# recorder — in particular cannot upload a screen recording of his own making.
RECORDER_SCOPE = "recorder"
PASSWORD_SCOPES = ("web", "desktop", "api")
# The event channel's ?client= and the token scopes that may open it.
CHANNEL_SCOPES: dict[str, tuple[str, ...]] = {"desktop": ("desktop", "web"), "recorder": (RECORDER_SCOPE,)}


def channel_scope_refusal(channel_client: str, token_scope: str) -> str | None:
    """Why a token of ``token_scope`` may not open the event channel as ``channel_client``, or None."""
    allowed = CHANNEL_SCOPES.get(channel_client)
    if allowed is None or token_scope in allowed:
        return None
    if channel_client == "recorder":
        # A WebSocket close reason holds at most 123 bytes.
        return "the recorder channel needs a recorder token: tandem-recorder login --enroll-code"
    return f"the {channel_client} channel needs a {' or '.join(allowed)} login, not a {token_scope} token"


# -- recorder enrolment codes --------------------------------------------------------------------
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: the code is read and typed by people
CODE_GROUPS = 5
CODE_GROUP_LEN = 5


def new_enrolment_code() -> str:
    """A one-time code, e.g. ``K7QX2-...`` (25 symbols of 32: 125 bits)."""
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(CODE_GROUPS * CODE_GROUP_LEN))
    return "-".join(raw[i : i + CODE_GROUP_LEN] for i in range(0, len(raw), CODE_GROUP_LEN))


def normalise_enrolment_code(code: str) -> str:
    """Upper case, without the dashes and spaces people add or drop when copying it."""
    return "".join(ch for ch in code.upper() if ch not in "- \t\r\n")


def enrolment_code_digest(code: str) -> str:
    return hashlib.sha256(normalise_enrolment_code(code).encode("utf-8")).hexdigest()
