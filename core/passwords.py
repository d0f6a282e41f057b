"""Staff passwords (argon2id) and API tokens (random, stored as SHA-256)."""

from __future__ import annotations

import functools
import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verifying against this costs as much as a real check, so a missing account and
    a wrong password take the same time. Made on a process's first check, not on import:
    a hash is ~0.16 s of CPU that every ``loket`` process paid at start (the MTA pipe's
    ``loket email ingest`` once a mail), and most never check a password."""
    return _hasher.hash(secrets.token_urlsafe(16))

MIN_PASSWORD_LENGTH = 10


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    dummy = _dummy_hash()  # made on the first check of either kind: both cost the same
    try:
        return _hasher.verify(stored_hash or dummy, password) and bool(stored_hash)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)


def new_api_token() -> tuple[str, str]:
    """Return (token shown once to the agent, hash stored on Staff.api_token_hash)."""
    token = "lkt_" + secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
