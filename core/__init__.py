"""Loket's core, and the plugin API it publishes.

A plugin imports from core only the modules in ``PLUGIN_API``, and from them
only names without a leading underscore (a test walks every module under
``plugins/`` and fails otherwise). Everything else in core may change without
notice.

``core``
    ``hookimpl`` (the hook marker), ``csrf_exempt`` (for a webhook blueprint
    that checks its sender's signature instead of a CSRF token),
    ``opens_tickets`` (a plugin's form that opens tickets gets the help center
    form's rate limits) and ``create_app``.
``core.hookspecs``
    every hook's contract, and the value types hooks take and return
    (``ChannelSpec``, ``LiveChannelSpec``, ``Routing``, ``ContactOption``, ``Suggestion``,
    ``DeliveryResult``, ``DeliveryError``, ``Notice``, ``Panel``).
``core.settings``
    ``Setting`` and its parsers (``as_str``, ``as_int``, ``as_bool``, ``as_list``,
    ``as_http_url``) for the ``plugin_settings`` hook.
``core.state``
    ``loket()``, the one accessor for the current app's settings
    (``loket().config.plugin("<name>")``), hook caller (``loket().hook``) and job queue.
``core.models``
    the desk's tables, to read and to link a plugin's own models to.
``core.services`` (``tickets``, ``contacts``, ``access``, ``suggestions``)
    the only way to change tickets and contacts.
``core.attachments``
    storing a file a customer sent, for ``core.services.tickets``.
``core.raw``
    ``RawOriginal``: what a channel received, kept privately for agents.
``core.i18n``
    ``_``, ``_l`` and ``ngettext`` for customer-facing text.
``core.jobs``
    ``crontab``, for the periodic tasks a plugin declares in ``register_jobs``.
``core.db``
    ``Select`` and ``Insert``: named statements, whose SQL is built once per kind of
    database, for a plugin's hot paths (name them ``<plugin>.<what>`` and give each a
    test); ``write_transaction`` for a read-then-write of the plugin's own tables.
``core.limits``
    ``register_body_limit``, for an endpoint that takes bodies larger than the
    default 1 MB (a raw email posted by a mail provider).
``core.secrets``
    ``desk_keyring`` / ``Keyring``: credentials encrypted at rest (Fernet), keys
    derived per purpose from the secret key, old secret keys still read.

Admin views a plugin contributes derive from the console's published base,
``admin.base.SecuredView`` (or ``SecuredModelView``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .hooks import hookimpl
from .security import csrf_exempt

if TYPE_CHECKING:
    from flask import Flask

PLUGIN_API: tuple[str, ...] = (
    "core",
    "core.hookspecs",
    "core.settings",
    "core.state",
    "core.models",
    "core.services",
    "core.services.tickets",
    "core.services.contacts",
    "core.services.access",
    "core.services.suggestions",
    "core.attachments",
    "core.raw",
    "core.i18n",
    "core.jobs",
    "core.limits",
    "core.db",
    "core.secrets",
)


def opens_tickets(endpoint: str) -> None:
    """Mark a plugin's view (``"blueprint.view"``) as a form that opens tickets, so the
    help center form's rate limits and counters apply to it too (``core.limits``)."""
    from .limits import count_as_ticket_opening

    count_as_ticket_opening(endpoint)


def create_app(config: Mapping[str, Any] | None = None, **kwargs: Any) -> Flask:
    """Build the app (see ``core.app.create_app``); imported lazily to keep plugins light."""
    from .app import create_app as _create_app

    return _create_app(config, **kwargs)


__all__ = ["PLUGIN_API", "create_app", "csrf_exempt", "hookimpl", "opens_tickets"]
