"""Visitor identity: a random visitor id, signed with the desk's secret key.

The token is all a browser holds. It binds the visitor to their own
conversations: a token whose signature does not verify is refused, and a valid
token only ever opens its own visitor's chats, so no visitor can read or write
another's.
"""

from __future__ import annotations

import secrets

from itsdangerous import BadSignature, URLSafeSerializer

from core.state import loket

SALT = "loket.livechat.visitor"


def _signer() -> URLSafeSerializer:
    return URLSafeSerializer(loket().config["secret_key"], salt=SALT)


def new_visitor() -> tuple[str, str]:
    """A new visitor id and its token."""
    visitor = "v" + secrets.token_urlsafe(18)
    return visitor, _signer().dumps(visitor)


def visitor_of(token: str) -> str | None:
    """The visitor a token names, or None when it is forged, altered or malformed."""
    if not isinstance(token, str) or len(token) > 200:
        return None
    try:
        visitor = _signer().loads(token)
    except BadSignature:
        return None
    return visitor if isinstance(visitor, str) and visitor.startswith("v") else None
