"""Account secrets, encrypted at rest with Fernet (AES-128-CBC and HMAC-SHA256).

The keys come from ``core.secrets``. With the ``social.secrets_key`` setting empty they are
derived from the desk's secret key (writes) and its ``old_secret_keys`` (reads), so the
secret key can be rotated without entering the accounts' secrets again. The setting may
instead hold Fernet keys, comma-separated: the first writes, all read. Tokens written
before the keys moved to ``core.secrets`` (a SHA-256 of the secret key) still read.
Secrets are written here and read by the platform adapters only; no view shows them back.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet

from core.secrets import Keyring, SecretUnreadable, desk_keyring
from core.state import loket

from .models import SocialAccount

PURPOSE = "loket social account secrets v2"


def _legacy_key(secret_key: str) -> bytes:
    """How the key was made before ``core.secrets``: kept for reading what was stored then."""
    seed = hashlib.sha256(b"loket social secrets\0" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(seed)


def keyring() -> Keyring:
    config = loket().config
    given = [k for k in config["social.secrets_key"].split(",") if k]
    if given:
        return Keyring(given)
    secret_keys = [config["secret_key"], *(config.get("old_secret_keys") or [])]
    return desk_keyring(PURPOSE, extra_keys=[_legacy_key(k) for k in secret_keys if k])


def check_key(value: object) -> str:
    """The ``secrets_key`` setting: empty, or Fernet keys separated by commas."""
    keys = [k.strip() for k in str(value or "").split(",") if k.strip()]
    for key in keys:
        try:
            Fernet(key.encode())
        except (ValueError, TypeError):
            raise ValueError("expected Fernet keys (32 url-safe base64-encoded bytes each), "
                             "separated by commas") from None
    return ",".join(keys)


def read(account: SocialAccount) -> dict[str, str]:
    if not account.secrets:
        return {}
    # Decrypted once per loaded row: a webhook checks its account's secret on every request.
    cached = account.__dict__.get("_loket_secrets")
    if cached is not None and cached[0] == account.secrets:
        return cached[1]
    try:
        values = json.loads(keyring().decrypt(account.secrets))
    except SecretUnreadable:
        raise RuntimeError(f"the secrets of account {account.name!r} cannot be decrypted: "
                           "was LOKET_SOCIAL_SECRETS_KEY or the secret key changed without "
                           "keeping the old one (LOKET_OLD_SECRET_KEYS)?") from None
    account.__dict__["_loket_secrets"] = (account.secrets, values)
    return values


def write(account: SocialAccount, values: dict[str, Any]) -> None:
    """Merge ``values`` into the account's secrets (empty values leave a secret as it is)."""
    current = read(account) if account.secrets else {}
    current.update({k: str(v) for k, v in values.items() if v})
    account.secrets = keyring().encrypt(json.dumps(current))


def secret(account: SocialAccount, name: str) -> str:
    return read(account).get(name, "")
