"""The browser-facing protections every app shares: the CSRF guard and the content policy."""

from __future__ import annotations

from typing import Any, TypeVar

from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFProtect

# One guard for every app: Flask-WTF keeps the exemptions on it, and init_app binds it per app.
csrf = CSRFProtect()

# Pages that show a tracking key or staff data mark themselves private (g.private_page).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")

View = TypeVar("View")


def csrf_exempt(view: View) -> View:
    """Let a blueprint (or one view function) take POSTs without a CSRF token.

    For endpoints that browsers never post to, such as a messenger platform's
    webhook: such an endpoint must check the sender's signature itself, since
    the token no longer protects it. Use it as a decorator on the view, or call
    it on the blueprint before returning it from ``register_blueprints``.
    """
    return csrf.exempt(view)


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed-cookie session, its serializer built once per set of keys.

    Flask builds a new serializer (and with it a signer) for every request; that was
    a tenth of the CPU of a request that does little else (a messenger's webhook).
    The serializer holds only the keys and settings, so one serves every thread; a
    changed key or fallback list builds a new one.
    """

    def __init__(self) -> None:
        self._kept: tuple[tuple[Any, ...], Any] | None = None

    def get_signing_serializer(self, app: Any) -> Any:
        keys = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        kept = self._kept
        if kept is not None and kept[0] == keys:
            return kept[1]
        serializer = super().get_signing_serializer(app)
        self._kept = (keys, serializer)
        return serializer
