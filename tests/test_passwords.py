"""Staff passwords: the missing-account check costs a hash, made when first needed."""

from __future__ import annotations

import subprocess
import sys

from core import passwords


def test_importing_passwords_hashes_nothing_until_a_password_is_checked() -> None:
    # Every `loket` process imports this module (the MTA pipe once a mail): an argon2
    # hash at import was a sixth of its start-up.
    code = ("import core.passwords as p; assert p._dummy_hash.cache_info().currsize == 0; "
            "assert not p.verify_password(None, 'whatever password'); "
            "assert p._dummy_hash.cache_info().currsize == 1")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()


def test_a_missing_account_and_a_wrong_password_are_both_refused() -> None:
    stored = passwords.hash_password("the right password")
    assert passwords.verify_password(stored, "the right password")
    assert not passwords.verify_password(stored, "a wrong password")
    assert not passwords.verify_password(None, "the right password")
    assert not passwords.verify_password("", "the right password")
