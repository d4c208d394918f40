"""Password hashing (argon2id). Unknown users cost the same time as wrong passwords, so login
timing does not tell which usernames exist."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("tandem-timing-equaliser")


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise ValueError("password must have at least 8 characters")
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
