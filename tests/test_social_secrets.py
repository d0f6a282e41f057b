"""Social account secrets through core.secrets: stored tokens still open, and keys rotate."""

from __future__ import annotations

from typing import Any

import pytest

from core import db

# Written by plugins/social/vault.py before it used core.secrets (commit e6f274a): derived
# from the secret key "old-desk-secret-key", and under the given Fernet key GIVEN_KEY.
DERIVED_BEFORE = ("gAAAAABrC_iTDLhD6fN_nWzpNKtQ7a9yKxdjjLCxZhGD4WoTV_x4osIW5ogqCdiVEZmsqeysnZlo"
                  "oP00K9c8LIHzsKKmRQhPFBXpHvy5HpOK7d2xfMjNt94pkLwBioagzhaWkvpCUqGg")
GIVEN_KEY = "ABaha4eI51PJs--3gb4Ti2kNV8Ia2l1xTCxoCpDMaCE="
GIVEN_BEFORE = ("gAAAAABrC_iTFOzFnGIz6lf3ydantO6fVL-vkMJ8F5JKR6J20xieOYaXicyYH5dnvmjqgDNWS1VdBrXE"
                "mN785TH3ULThjJKoiYYt7Toc_j6wT1zuySlDoMc=")


def _account(secrets: str) -> Any:
    from plugins.social.models import SocialAccount

    return SocialAccount(platform="telegram", name="bot", secrets=secrets)


def test_secrets_stored_before_the_move_still_open(make_app: Any) -> None:
    from plugins.social import vault

    app = make_app(plugins=["social"], secret_key="old-desk-secret-key")
    with app.app_context():
        account = _account(DERIVED_BEFORE)
        assert vault.read(account) == {"token": "123:OLD", "webhook_secret": "w"}
        # a write goes under the new derivation, and reads back
        vault.write(account, {"token": "123:NEW"})
        assert account.secrets != DERIVED_BEFORE
        assert vault.read(_account(account.secrets))["token"] == "123:NEW"
    given = make_app(plugins=["social"], **{"social.secrets_key": GIVEN_KEY})
    with given.app_context():
        assert vault.read(_account(GIVEN_BEFORE)) == {"token": "123:GIVEN"}


def test_the_secret_key_rotates_with_the_old_one_kept_for_reading(make_app: Any) -> None:
    from plugins.social import vault

    rotated = make_app(plugins=["social"], secret_key="new-desk-secret-key",
                       old_secret_keys=["old-desk-secret-key"])
    with rotated.app_context():
        assert vault.read(_account(DERIVED_BEFORE))["token"] == "123:OLD"
    forgot = make_app(plugins=["social"], secret_key="new-desk-secret-key")
    with forgot.app_context(), pytest.raises(RuntimeError, match="cannot be decrypted"):
        vault.read(_account(DERIVED_BEFORE))


def test_a_list_of_fernet_keys_writes_under_the_first_and_reads_under_all(make_app: Any) -> None:
    from cryptography.fernet import Fernet

    from plugins.social import vault

    new = Fernet.generate_key().decode()
    app = make_app(plugins=["social"], **{"social.secrets_key": f"{new},{GIVEN_KEY}"})
    with app.app_context(), db.connection():
        assert vault.read(_account(GIVEN_BEFORE))["token"] == "123:GIVEN"
        account = _account("")
        vault.write(account, {"token": "t"})
        assert Fernet(new.encode()).decrypt(account.secrets.encode())
    with pytest.raises(ValueError, match="Fernet keys"):
        vault.check_key(f"{new},not-a-key")


def test_loket_social_rotate_secrets_rewrites_each_account_under_the_current_key(
        make_app: Any) -> None:
    from plugins.social import vault
    from plugins.social.models import SocialAccount

    app = make_app(plugins=["social"], secret_key="new-desk-secret-key",
                   old_secret_keys=["old-desk-secret-key"])
    with app.app_context(), db.connection():
        _account(DERIVED_BEFORE).save()
        SocialAccount.create(platform="telegram", name="lost", secrets=GIVEN_BEFORE)
    from click.testing import CliRunner

    from plugins.social.cli import social

    with app.app_context(), db.connection():
        result = CliRunner().invoke(social, ["rotate-secrets"])
    assert result.exit_code == 1  # the account no key opens is named, not dropped
    assert "1 account(s) re-encrypted" in result.output
    assert "FAILED  lost" in result.output
    forgot = make_app(plugins=["social"], secret_key="new-desk-secret-key")
    with forgot.app_context(), db.connection():
        account = SocialAccount.get(SocialAccount.name == "bot")
        assert account.secrets != DERIVED_BEFORE
        assert vault.read(account)["token"] == "123:OLD"
