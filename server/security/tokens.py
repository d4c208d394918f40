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
