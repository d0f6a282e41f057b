"""Account secrets, encrypted at rest with Fernet (AES-128-CBC and HMAC-SHA256).

The key is the ``social.secrets_key`` setting (a Fernet key) or, when unset,
one derived from the desk's secret key, so a desk works without configuring
one; setting it lets the secret key be rotated without losing the accounts'
secrets. Secrets are written here and read by the platform adapters only; no
view shows them back.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from core.state import loket

from .models import SocialAccount


def _fernet() -> Fernet:
    config = loket().config
    key = config.plugin("social")["secrets_key"]
    if not key:
        seed = hashlib.sha256(b"loket social secrets\0" + config["secret_key"].encode()).digest()
        key = base64.urlsafe_b64encode(seed).decode()
    return Fernet(key.encode() if isinstance(key, str) else key)


def check_key(value: object) -> str:
    """The ``secrets_key`` setting: empty, or a valid Fernet key."""
    text = str(value or "").strip()
    if text:
        try:
            Fernet(text.encode())
        except (ValueError, TypeError):
            raise ValueError("expected a Fernet key (32 url-safe base64-encoded bytes)") from None
    return text


def read(account: SocialAccount) -> dict[str, str]:
    if not account.secrets:
        return {}
    # Decrypted once per loaded row: a webhook checks its account's secret on every request.
    cached = account.__dict__.get("_loket_secrets")
    if cached is not None and cached[0] == account.secrets:
        return cached[1]
    try:
        values = json.loads(_fernet().decrypt(account.secrets.encode()))
        account.__dict__["_loket_secrets"] = (account.secrets, values)
        return values
    except InvalidToken:
        raise RuntimeError(f"the secrets of account {account.name!r} cannot be decrypted: "
                           "was LOKET_SOCIAL_SECRETS_KEY or the secret key changed?") from None


def write(account: SocialAccount, values: dict[str, Any]) -> None:
    """Merge ``values`` into the account's secrets (empty values leave a secret as it is)."""
    current = read(account) if account.secrets else {}
    current.update({k: str(v) for k, v in values.items() if v})
    account.secrets = _fernet().encrypt(json.dumps(current).encode()).decode()


def secret(account: SocialAccount, name: str) -> str:
    return read(account).get(name, "")
