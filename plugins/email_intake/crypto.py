"""Mailbox credentials at rest: encrypted with Fernet, never stored or shown in clear.

The key is ``LOKET_EMAIL_INTAKE_CREDENTIALS_KEY`` when set (any text; kept apart from
the app's secret key so that rotating one does not lock the other out), else the app's
``secret_key``, with its ``old_secret_keys`` still read. ``core.secrets`` derives the
Fernet key (HKDF-SHA256 under this purpose, as before it moved there: tokens stored
earlier read unchanged), so a database dump alone opens no mailbox.
"""

from __future__ import annotations

from core.secrets import Keyring, SecretUnreadable, desk_keyring
from core.state import loket

PURPOSE = "loket email_intake mailbox credentials v1"


class CredentialError(ValueError):
    """A stored credential cannot be read with this desk's key (the key changed)."""


def keyring(secret: str) -> Keyring:
    if not secret:
        raise CredentialError("no key to encrypt mailbox credentials with")
    # The desk's secret key brings its old ones along; a key of the plugin's own does not.
    own_key = "" if secret == loket().config["secret_key"] else secret
    return desk_keyring(PURPOSE, own_key)


def encrypt(secret: str, plaintext: str) -> str:
    """The ciphertext to store; empty stays empty (no credential)."""
    if not plaintext:
        return ""
    return keyring(secret).encrypt(plaintext)


def decrypt(secret: str, token: str) -> str:
    if not token:
        return ""
    try:
        return keyring(secret).decrypt(token)
    except SecretUnreadable:
        raise CredentialError("the stored password cannot be decrypted with this desk's key "
                              "(was the credentials key or secret key changed?); enter the "
                              "password again") from None
