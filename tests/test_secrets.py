"""core.secrets: credentials at rest under derived keys, and the rotation of those keys."""

from __future__ import annotations

from typing import Any

import pytest

from core.secrets import Keyring, SecretUnreadable, derive_key, desk_keyring

# Written by plugins/email_intake/crypto.py before it used core.secrets (commit e6f274a),
# with the secret "old-desk-secret-key": what a desk has stored must still open.
EMAIL_BEFORE = ("gAAAAABrC_iTGJv73QQnRpFQq9PUuROH5MgPzp4AyL3cBIZjyrwWZo6mhVL2DkFFT81xayui_"
                "SaHigBK7fYxXzz2zFqlw39jKw==")


def test_the_first_key_writes_and_every_key_reads() -> None:
    old = Keyring.derived("purpose", ["old secret"])
    token = old.encrypt("hunter2")
    rotated = Keyring.derived("purpose", ["new secret", "old secret"])
    assert rotated.decrypt(token) == "hunter2"
    assert not rotated.is_current(token)
    fresh = rotated.rotate(token)
    assert rotated.is_current(fresh)
    assert Keyring.derived("purpose", ["new secret"]).decrypt(fresh) == "hunter2"
    with pytest.raises(SecretUnreadable):
        old.decrypt(fresh)  # written under the new secret only


def test_a_purpose_gets_its_own_key_and_a_wrong_key_says_so() -> None:
    assert derive_key("s", "social") != derive_key("s", "email")
    token = Keyring.derived("social", ["s"]).encrypt("x")
    with pytest.raises(SecretUnreadable, match="old_secret_keys"):
        Keyring.derived("email", ["s"]).decrypt(token)
    with pytest.raises(SecretUnreadable):
        Keyring.derived("social", ["s"]).decrypt("not a token")
    with pytest.raises(SecretUnreadable):
        Keyring.derived("social", [""])
    assert Keyring.derived("social", ["s"]).encrypt("") == ""


def test_the_desk_keyring_reads_under_old_secret_keys_and_writes_under_the_current(
        make_app: Any) -> None:
    before = make_app(secret_key="old-desk-secret-key")
    with before.app_context():
        token = desk_keyring("purpose").encrypt("pass")
    after = make_app(secret_key="new-desk-secret-key", old_secret_keys=["old-desk-secret-key"])
    with after.app_context():
        ring = desk_keyring("purpose")
        assert ring.decrypt(token) == "pass"
        assert ring.is_current(ring.encrypt("pass")) and not ring.is_current(token)
        # A plugin's own key stands alone: the desk's old secrets do not open its tokens.
        with pytest.raises(SecretUnreadable):
            desk_keyring("purpose", key="plugin's own key").decrypt(token)
    forgot = make_app(secret_key="new-desk-secret-key")
    with forgot.app_context(), pytest.raises(SecretUnreadable):
        desk_keyring("purpose").decrypt(token)


def test_mailbox_passwords_stored_before_the_move_still_open_and_rotate(make_app: Any) -> None:
    from plugins.email_intake import crypto

    app = make_app(plugins=["email_intake"], secret_key="old-desk-secret-key")
    with app.app_context():
        assert crypto.decrypt("old-desk-secret-key", EMAIL_BEFORE) == "imap-pass-word"
        # the same derivation: a token written now reads with the code as it was
        assert crypto.decrypt("old-desk-secret-key",
                              crypto.encrypt("old-desk-secret-key", "p")) == "p"
    rotated = make_app(plugins=["email_intake"], secret_key="new-desk-secret-key",
                       old_secret_keys=["old-desk-secret-key"])
    with rotated.app_context():
        assert crypto.decrypt("new-desk-secret-key", EMAIL_BEFORE) == "imap-pass-word"
        with pytest.raises(crypto.CredentialError, match="enter the password again"):
            crypto.decrypt("a credentials key of its own", EMAIL_BEFORE)
