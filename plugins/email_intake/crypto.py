"""Mailbox credentials at rest: encrypted with Fernet, never stored or shown in clear.

The key is ``LOKET_EMAIL_INTAKE_CREDENTIALS_KEY`` when set (any text; kept apart from
the app's secret key so that rotating one does not lock the other out), else derived
from the app's ``secret_key``. Either way HKDF-SHA256 turns it into the Fernet key, so
a database dump alone opens no mailbox.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_INFO = b"loket email_intake mailbox credentials v1"


class CredentialError(ValueError):
    """A stored credential cannot be read with this desk's key (the key changed)."""


def fernet_for(secret: str) -> Fernet:
    if not secret:
        raise CredentialError("no key to encrypt mailbox credentials with")
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
        secret.encode())
    return Fernet(base64.urlsafe_b64encode(raw))


def encrypt(secret: str, plaintext: str) -> str:
    """The ciphertext to store; empty stays empty (no credential)."""
    if not plaintext:
        return ""
    return fernet_for(secret).encrypt(plaintext.encode()).decode("ascii")


def decrypt(secret: str, token: str) -> str:
    if not token:
        return ""
    try:
        return fernet_for(secret).decrypt(token.encode("ascii")).decode()
    except (InvalidToken, ValueError):
        raise CredentialError("the stored password cannot be decrypted with this desk's key "
                              "(was the credentials key or secret key changed?); enter the "
                              "password again") from None
