"""What WhatsApp Cloud API and Messenger share: Meta's webhook checks and Graph API errors."""

from __future__ import annotations

from typing import Any

from core.hookspecs import DeliveryError

from .. import vault
from .base import Answer, Platform, Refused, constant_time_equal, hub_signature

# Graph error codes that retrying cannot fix, and those that say "later".
_PERMANENT = {
    190: "the access token is invalid or expired",
    10: "permission denied (outside the messaging window?)",
    100: "invalid parameter",
    131047: "more than 24 hours since the customer's last message: only a template may be sent",
    131026: "the message could not be delivered to this number",
    131051: "unsupported message type",
    551: "this person is not available right now",
    2018278: "outside the allowed messaging window",
}
_RATE_LIMITED = {4, 17, 32, 613, 80007, 130429, 131048, 131056}


class MetaPlatform(Platform):
    """A platform whose webhooks Meta signs with the app secret (X-Hub-Signature-256)."""

    secret_names = ("token", "app_secret")
    generated = ("verify_token",)

    def verify(self, account: Any, headers: Any, body: bytes) -> None:
        given = headers.get("X-Hub-Signature-256", "")
        expected = hub_signature(body, vault.secret(account, "app_secret"))
        if not given:
            raise Refused(401, "unsigned")
        if not constant_time_equal(given, expected):
            raise Refused(403, "wrong signature")

    def handshake(self, account: Any, args: Any) -> str:
        if args.get("hub.mode") != "subscribe" or not constant_time_equal(
                args.get("hub.verify_token", ""), vault.secret(account, "verify_token")):
            raise Refused(403, "wrong verify token")
        return args.get("hub.challenge", "")

    def token(self, account: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {vault.secret(account, 'token')}"}


def raise_for(answer: Answer, platform: str) -> dict[str, Any]:
    """The Graph API's answer, or the DeliveryError its error object means."""
    body = answer.body if isinstance(answer.body, dict) else {}
    if 200 <= answer.status < 300 and "error" not in body:
        return body
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    code = error.get("code", answer.status)
    reason = f"{platform} error {code}: {error.get('message') or answer.body}"
    if code in _PERMANENT:
        raise DeliveryError(f"{reason} ({_PERMANENT[code]})", permanent=True)
    if code in _RATE_LIMITED or answer.status == 429:
        retry_after = answer.headers.get("Retry-After") if answer.headers else None
        raise DeliveryError(f"{reason} (rate limited)",
                            retry_after=float(retry_after) if retry_after else 60.0)
    if answer.status >= 500:
        raise DeliveryError(reason)
    raise DeliveryError(reason, permanent=True)
