"""The browser-facing protections every app shares: the CSRF guard and the content policy."""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import time
from typing import Any, TypeVar

from flask import current_app, g, request, session
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf, same_origin
from itsdangerous import (
    BadData,
    SignatureExpired,
    TimestampSigner,
    URLSafeTimedSerializer,
    want_bytes,
)
from wtforms import ValidationError
from wtforms.csrf.core import CSRF

logger = logging.getLogger("flask_wtf.csrf")  # Flask-WTF's guard logs a refusal there

# Signed CSRF tokens kept, by (secret key, field name, the session's raw token): (token, when).
_SIGNED: dict[tuple[Any, ...], tuple[str, float]] = {}
SIGNED_MAX = 10_000  # sessions; the store is emptied when it is full


def csrf_token() -> str:
    """The page's signed CSRF token, as Flask-WTF's ``generate_csrf`` makes it, signed once per
    session rather than once per page.

    The token is the session's random raw token (kept in the session) signed with the
    secret key; every POST is checked by the guard as before, against the session's raw
    token, so a kept token is bound to its session exactly as a fresh one is. With a
    ``WTF_CSRF_TIME_LIMIT`` a kept token is used for a tenth of it at most, so it never
    reaches a form close to its end.
    """
    config = current_app.config
    field = config.get("WTF_CSRF_FIELD_NAME") or "csrf_token"
    if field in g:
        return generate_csrf()  # this request's token
    secret = config.get("WTF_CSRF_SECRET_KEY") or current_app.secret_key
    limit = config.get("WTF_CSRF_TIME_LIMIT")
    now = time.monotonic()
    if field in session:
        kept = _SIGNED.get((secret, field, session[field]))
        if kept is not None and (limit is None or now - kept[1] < limit / 10):
            setattr(g, field, kept[0])  # where generate_csrf and the forms find this request's
            return kept[0]
    token = generate_csrf()  # the session's first raw token is made here when it has none
    if len(_SIGNED) >= SIGNED_MAX:
        _SIGNED.clear()
    _SIGNED[(secret, field, session[field])] = (token, now)
    return token


class FormCsrf(CSRF):
    """A form's CSRF field as Flask-WTF's, its token the kept one (``csrf_token``).

    Flask-WTF's own signs a fresh token for every form it builds, a posted one included,
    where the token is never shown: a submission signed one only to drop it. A form
    now carries the session's kept token, which the guard checks as every token; a form
    with another secret or field name than the desk's gets Flask-WTF's as before.
    """

    def setup_form(self, form: Any) -> Any:
        self.meta = form.meta
        return super().setup_form(form)

    def generate_csrf_token(self, csrf_token_field: Any) -> str:
        config = current_app.config
        if (self.meta.csrf_secret == (config.get("WTF_CSRF_SECRET_KEY") or current_app.secret_key)
                and self.meta.csrf_field_name == (config.get("WTF_CSRF_FIELD_NAME")
                                                  or "csrf_token")):
            return csrf_token()
        return generate_csrf(secret_key=self.meta.csrf_secret,
                             token_key=self.meta.csrf_field_name)

    def validate_csrf_token(self, form: Any, field: Any) -> None:
        if g.get("csrf_valid", False):
            return  # checked by the guard before the view (CsrfGuard)
        validate_csrf(field.data, self.meta.csrf_secret, self.meta.csrf_time_limit,
                      self.meta.csrf_field_name)


# Flask-WTF's salt for its signed tokens: a token it signs is checked here, and one signed
# here (none is: ``generate_csrf`` signs them) would pass Flask-WTF's own check.
_TOKEN_SALT = "wtf-csrf-token"
# The token checker (a serializer, its signer and the signer's derived key) by secret key.
_CHECKERS: dict[Any, URLSafeTimedSerializer] = {}


def _token_checker(secret_key: str | bytes) -> URLSafeTimedSerializer:
    found = _CHECKERS.get(secret_key)
    if found is None:
        if len(_CHECKERS) >= 8:  # keys changed many times: start afresh
            _CHECKERS.clear()
        found = _CHECKERS[secret_key] = _KeptSigners(secret_key, salt=_TOKEN_SALT,
                                                     signer=_KeptKeySigner)
    return found


def validate_csrf(data: str | None, secret_key: str | bytes | None = None,
                  time_limit: int | None = None, token_key: str | None = None) -> None:
    """Flask-WTF's ``validate_csrf``: the same checks in the same order, with the same
    errors (``ValidationError``), against the session's raw token.

    Flask-WTF builds a serializer, a signer and the signer's key (an HMAC of the secret
    key and the salt) for every token it checks, every form post on the desk; they hold
    only the secret key and settings, so they are kept per secret key here. The token's
    own signature, age and session are checked on every call as before.
    """
    config = current_app.config
    if secret_key is None:
        secret_key = config.get("WTF_CSRF_SECRET_KEY", current_app.secret_key)
    if secret_key is None:
        raise RuntimeError("A secret key is required to use CSRF.")
    field_name = token_key if token_key is not None else config.get("WTF_CSRF_FIELD_NAME",
                                                                    "csrf_token")
    if field_name is None:
        raise RuntimeError("A field name is required to use CSRF.")
    if time_limit is None:
        time_limit = config.get("WTF_CSRF_TIME_LIMIT", 3600)
    if not data:
        raise ValidationError("The CSRF token is missing.")
    if field_name not in session:
        raise ValidationError("The CSRF session token is missing.")
    try:
        token = _token_checker(secret_key).loads(data, max_age=time_limit)
    except SignatureExpired as exc:
        raise ValidationError("The CSRF token has expired.") from exc
    except BadData as exc:
        raise ValidationError("The CSRF token is invalid.") from exc
    if not hmac.compare_digest(session[field_name], token):
        raise ValidationError("The CSRF tokens do not match.")


class CsrfGuard(CSRFProtect):
    """Flask-WTF's guard, whose ``csrf_token()`` in templates is ``csrf_token`` above, and
    whose check of a posted token is ``validate_csrf`` above."""

    def init_app(self, app: Any) -> None:
        super().init_app(app)
        # Flask-WTF offers its own both ways: as a global and from a context processor.
        app.jinja_env.globals["csrf_token"] = csrf_token
        app.context_processor(lambda: {"csrf_token": csrf_token})

    def protect(self, apply_exemptions: bool = False) -> None:
        """Flask-WTF's ``protect`` (Flask-WTF 1.3), its token checked by ``validate_csrf``
        above: exemptions, methods, the token from the form or a header, the strict referrer
        on HTTPS, then ``g.csrf_valid``."""
        if apply_exemptions and (not request.endpoint or self._is_exempt()):
            return
        if request.method not in current_app.config["WTF_CSRF_METHODS"]:
            return
        try:
            validate_csrf(self._get_csrf_token())
        except ValidationError as exc:
            logger.info(exc.args[0])
            self._error_response(exc.args[0])
        if request.is_secure and current_app.config["WTF_CSRF_SSL_STRICT"]:
            if not request.referrer:
                self._error_response("The referrer header is missing.")
            if not same_origin(request.referrer, f"https://{request.host}/"):
                self._error_response("The referrer does not match the host.")
        g.csrf_valid = True  # this request's token is checked (the forms skip theirs)


# -- The tracking page's forms ----------------------------------------------------------------
#
# The reply and "resolved" forms of a tracking page post to the page's own private link:
# what lets them in is the ticket's key in that link, not a cookie, so a forged post from
# another site needs the key, and whoever has the key needs no victim's browser. Their
# token is therefore the ticket's, not the session's: an HMAC of the ticket's number and
# key under the desk's secret key. It still proves the post came from a page this desk
# rendered for this ticket and key (a page from before the key changed is refused), it
# works where cookies are blocked or lost, and a first visit to a tracking page neither
# makes a session nor signs one (a sixth of the page's work when each view signed a new
# session's token and then the session cookie).

_TICKET_FORM_SALT = b"loket.tracking-page-form"


@functools.lru_cache(maxsize=8)
def _ticket_form_key(secret: str | bytes) -> bytes:
    secret = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(secret, _TICKET_FORM_SALT, hashlib.sha256).digest()


def ticket_form_token(ticket_id: int, access_key: str) -> str:
    """The token the tracking page's forms carry for this ticket and key."""
    key = _ticket_form_key(current_app.secret_key)
    return hmac.new(key, f"{ticket_id}:{access_key}".encode(), hashlib.sha256).hexdigest()


def check_ticket_form(ticket_id: int, access_key: str) -> None:
    """Refuse (``CSRFError``, answered as every missing or forged token is) a tracking-page
    post whose token is not this ticket's, compared in constant time."""
    if not current_app.config.get("WTF_CSRF_ENABLED", True):
        return
    field = current_app.config.get("WTF_CSRF_FIELD_NAME") or "csrf_token"
    given = request.form.get(field, "").encode("utf-8", "replace")
    if not hmac.compare_digest(given, ticket_form_token(ticket_id, access_key).encode()):
        raise CSRFError("The CSRF token is missing or not this ticket's.")


# One guard for every app: Flask-WTF keeps the exemptions on it, and init_app binds it per app.
csrf = CsrfGuard()

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

    def should_set_cookie(self, app: Any, session: Any) -> bool:
        """Only a session that changed is signed and sent again.

        Flask re-sends a permanent session's cookie on every request, to move its expiry
        on. A staff sign-in is the only permanent session, and its end is fixed on the
        server when it starts (``StaffSession.expires_at``, as long as the cookie's first
        life), so the re-sent cookie could not keep it alive any longer: it only cost a
        signature and a Set-Cookie header on every console page.
        """
        return bool(session.modified)

    def get_signing_serializer(self, app: Any) -> Any:
        keys = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        kept = self._kept
        if kept is not None and kept[0] == keys:
            return kept[1]
        serializer = super().get_signing_serializer(app)
        if serializer is not None:
            serializer = _KeptSigners(
                serializer.secret_keys, salt=serializer.salt, serializer=serializer.serializer,
                signer=_KeptKeySigner, signer_kwargs=serializer.signer_kwargs)
        self._kept = (keys, serializer)
        return serializer


class _KeptKeySigner(TimestampSigner):
    """itsdangerous' timestamp signer, each key it derives (an HMAC of the secret and the
    salt) worked out once: itsdangerous derives it again for every signature made and
    checked, two HMACs a request that reads and writes the session cookie."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._derived: dict[bytes, bytes] = {}

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        secret = self.secret_keys[-1] if secret_key is None else want_bytes(secret_key)
        derived = self._derived.get(secret)
        if derived is None:
            derived = self._derived[secret] = super().derive_key(secret)
        return derived


class _KeptSigners(URLSafeTimedSerializer):
    """Flask's session serializer, with one signer per salt for every request (itsdangerous
    makes one per signature). A signer holds only its keys and settings."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._signers: dict[Any, Any] = {}

    def make_signer(self, salt: str | bytes | None = None) -> Any:
        signer = self._signers.get(salt)
        if signer is None:
            signer = self._signers[salt] = super().make_signer(salt)
        return signer
