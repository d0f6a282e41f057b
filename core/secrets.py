"""Secrets at rest: Fernet tokens under keys derived from the desk's secrets, with rotation.

A plugin that keeps a credential (a mailbox password, a bot token) encrypts it with a
``Keyring``. Its first key writes; every key reads, so a secret can be rotated without
losing what was stored: put the new secret first and keep the old ones until
``Keyring.rotate`` has re-encrypted each stored token (or they were entered again).

``desk_keyring(purpose)`` is the usual one: keys derived with HKDF-SHA256 from the desk's
``secret_key`` (writes) and its ``old_secret_keys`` (reads), one key per ``purpose`` so two
plugins never share one. A plugin setting may give its own key instead (``key``), so that
rotating the secret key does not touch its credentials.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .state import loket


class SecretUnreadable(ValueError):
    """A stored token that none of the keyring's keys opens (the secret changed)."""


def derive_key(secret: str, purpose: str) -> bytes:
    """The Fernet key for ``purpose`` under ``secret`` (any text): HKDF-SHA256, no salt."""
    if not secret:
        raise SecretUnreadable("no secret to derive a key from")
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=purpose.encode()).derive(secret.encode())
    return base64.urlsafe_b64encode(raw)


class Keyring:
    """Fernet keys, the first for writing, all for reading."""

    def __init__(self, keys: Sequence[bytes | str]):
        if not keys:
            raise SecretUnreadable("a keyring needs at least one key")
        self._fernets = [Fernet(key) for key in dict.fromkeys(
            k.encode() if isinstance(k, str) else k for k in keys)]
        self._all = MultiFernet(self._fernets)

    @classmethod
    def derived(cls, purpose: str, secrets: Iterable[str],
                extra_keys: Iterable[bytes | str] = ()) -> Keyring:
        """Keys derived from ``secrets`` (current first), then ``extra_keys`` (read only:
        a plugin's earlier way of making its key, for tokens written before)."""
        return cls([derive_key(s, purpose) for s in secrets if s] + list(extra_keys))

    def encrypt(self, plaintext: str) -> str:
        """The token to store, under the current key; empty stays empty (no secret)."""
        if not plaintext:
            return ""
        return self._fernets[0].encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        if not token:
            return ""
        try:
            return self._all.decrypt(token.encode("ascii")).decode()
        except (InvalidToken, ValueError):
            raise SecretUnreadable("a stored secret cannot be decrypted with this desk's keys "
                                   "(was the secret key changed without keeping the old one "
                                   "in old_secret_keys?)") from None

    def is_current(self, token: str) -> bool:
        """Whether ``token`` is under the writing key (False: ``rotate`` would rewrite it)."""
        try:
            self._fernets[0].decrypt(token.encode("ascii"))
            return True
        except (InvalidToken, ValueError):
            return False

    def rotate(self, token: str) -> str:
        """``token`` re-encrypted under the current key (raises when no key opens it)."""
        return self.encrypt(self.decrypt(token)) if token else ""


def desk_keyring(purpose: str, key: str = "",
                 extra_keys: Iterable[bytes | str] = ()) -> Keyring:
    """The keyring for ``purpose``: from ``key`` when a plugin setting gives one, else from
    the desk's ``secret_key`` with its ``old_secret_keys`` accepted for reading."""
    config = loket().config
    if key:
        return Keyring.derived(purpose, [key], extra_keys)
    secrets = [config["secret_key"], *(config.get("old_secret_keys") or [])]
    return Keyring.derived(purpose, secrets, extra_keys)
