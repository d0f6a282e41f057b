"""The app factory: a flat list of configure steps, each calling its hook."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from flask import Flask, g, request
from flask_babel import Babel

from . import config as config_mod
from . import db
from .i18n import select_locale
from .jobs import JobQueue, build_huey
from .limits import configure_limits, json_upload_body_limit
from .models import CORE_MODELS
from .plugins import build_manager, enabled_plugins
from .security import CSP, SessionCookies, csrf
from .state import Loket

log = logging.getLogger(__name__)


def create_app(config: Mapping[str, Any] | None = None, *,
               extra_plugins: Iterable[Any] = ()) -> Flask:
    """Build a Loket app.

    ``config`` overrides every other source (tests use it); ``extra_plugins``
    registers plugin objects directly (tests register spies this way).
    Raises ``ConfigError`` or ``PluginError`` with one line when the
    configuration is wrong.
    """
    app = Flask("core", instance_relative_config=False)
    state = configure_state(app, config or {}, list(extra_plugins))
    configure_limits(app, state)
    configure_flask(app, state)
    configure_database(app, state)
    configure_models(app, state)
    configure_channels(app, state)
    configure_i18n(app, state)
    configure_jobs(app, state)
    configure_blueprints(app, state)
    configure_admin(app, state)
    configure_security_headers(app)
    configure_errors(app)
    configure_ready(app, state)
    return app


def configure_state(app: Flask, overrides: Mapping[str, Any], extra: list[Any]) -> Loket:
    first = config_mod.resolve(config_mod.CORE_SETTINGS, overrides, strict=False)
    enabled = enabled_plugins(first)
    pm = build_manager(enabled, extra)
    settings = list(config_mod.CORE_SETTINGS)
    for plugin, declared in _plugin_settings(pm):
        for setting in declared:
            settings.append(config_mod.Setting(
                f"{plugin}.{setting.name}", setting.default, setting.parse, setting.help,
                setting.secret))
    config = config_mod.resolve(settings, overrides)
    config_mod.ensure_instance(config)
    state = Loket(config=config, database=db.open_database(config["database_url"]), pm=pm,
                  enabled=enabled)
    app.extensions["loket"] = state
    return state


def _plugin_settings(pm: Any) -> list[tuple[str, list[config_mod.Setting]]]:
    found = []
    for impl in pm.hook.plugin_settings.get_hookimpls():
        found.append((impl.plugin_name, list(impl.function() or [])))
    return found


def configure_flask(app: Flask, state: Loket) -> None:
    cfg = state.config
    app.config.update(
        SECRET_KEY=cfg["secret_key"],
        # The outer cap; each endpoint has its own, smaller or equal (core.limits).
        MAX_CONTENT_LENGTH=json_upload_body_limit(cfg),
        MAX_FORM_MEMORY_SIZE=1024 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=cfg["secure_cookies"],
        REMEMBER_COOKIE_SECURE=cfg["secure_cookies"],
        PERMANENT_SESSION_LIFETIME=dt.timedelta(minutes=cfg["session_minutes"]),
        # A customer may take a long time over a form; the token is bound to the session.
        WTF_CSRF_TIME_LIMIT=None,
        BABEL_DEFAULT_LOCALE=cfg["default_language"],
        LOKET_INSTANCE_PATH=cfg["instance_path"],
    )
    app.instance_path = cfg["instance_path"]
    app.session_interface = SessionCookies()
    csrf.init_app(app)


def configure_database(app: Flask, state: Loket) -> None:
    from .numbers import IdConverter

    # Before any route exists: every <int:...> is then an id the database can hold.
    app.url_map.converters["int"] = IdConverter
    db.bind(state.database)

    @app.before_request
    def _connect() -> None:
        db.bind(state.database)
        endpoint = request.endpoint or ""
        if endpoint == "static" or endpoint.endswith(".static"):
            return  # files need no database, and must load (the error page's CSS) when it is down
        state.database.connect(reuse_if_open=True)
        g.loket_database_used = True

    keep_open = db.is_sqlite(state.database)

    @app.teardown_request
    def _close(exc: BaseException | None) -> None:
        if exc is None and g.get("loket_database_used"):
            from .errors import database_answered

            database_answered()
        # A SQLite connection stays with its thread (opening one runs five pragmas);
        # a PostgreSQL connection goes back to the pool.
        if not keep_open and not state.database.is_closed():
            state.database.close()


def configure_models(app: Flask, state: Loket) -> None:
    from .migrate import plugin_migration_dir

    state.models["core"] = list(CORE_MODELS)
    state.migration_dirs["core"] = str(_core_migrations())
    for impl in state.pm.hook.register_models.get_hookimpls():
        if impl.plugin_name == "core":
            continue
        state.models[impl.plugin_name] = list(impl.function() or [])
    for name, plugin in state.pm.list_name_plugin():
        folder = plugin_migration_dir(plugin) if name != "core" else None
        if folder is not None:
            state.migration_dirs[name] = str(folder)


def _core_migrations() -> Any:
    from pathlib import Path

    return Path(__file__).parent / "migrations"


def configure_channels(app: Flask, state: Loket) -> None:
    from .plugins import collect_channels

    # In an app context: a plugin may read its settings to say what its channel can do.
    with app.app_context():
        state.channels = collect_channels(state.pm)


def configure_i18n(app: Flask, state: Loket) -> None:
    from pathlib import Path

    from .i18n import (
        catalogue_sources,
        compile_catalogues,
        install_template_gettext,
        local_datetime,
    )

    # Core's catalogue and every enabled plugin's, compiled now if stale (core.i18n).
    cache = Path(state.config["instance_path"]) / "translations"
    folders = compile_catalogues(catalogue_sources(state.pm.list_name_plugin()), cache)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = ";".join(str(f) for f in folders)
    app.config["BABEL_DEFAULT_TIMEZONE"] = state.config["timezone"]
    Babel(app, locale_selector=select_locale)
    install_template_gettext(app.jinja_env)
    app.add_template_filter(local_datetime, "local_datetime")


def configure_jobs(app: Flask, state: Loket) -> None:
    state.jobs = JobQueue(app, build_huey(state.config))
    with app.app_context():  # a plugin may read its settings to declare its jobs
        state.pm.hook.register_jobs(jobs=state.jobs)


def configure_blueprints(app: Flask, state: Loket) -> None:
    for blueprints in state.pm.hook.register_blueprints(app=app):
        for blueprint in blueprints or ():
            app.register_blueprint(blueprint)


def configure_admin(app: Flask, state: Loket) -> None:
    # The console is the plugin "console" (package admin/), found through its entry point:
    # core never imports it, and a desk runs without it when the `console` setting is off.
    state.pm.hook.mount_console(app=app)


def configure_security_headers(app: Flask) -> None:
    defaults = [(name.lower(), name, value) for name, value in (
        ("Content-Security-Policy", CSP), ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"), ("Cross-Origin-Opener-Policy", "same-origin"))]

    @app.after_request
    def _headers(response: Any) -> Any:
        headers = response.headers
        # What a view set itself stands (a page's own CSP with a nonce): one pass over the
        # few headers a response has, rather than a search per default.
        present = {name.lower() for name in headers.keys()}
        for lower, name, value in defaults:
            if lower not in present:
                headers.add(name, value)
        if g.get("private_page") or request.path.startswith("/admin"):
            headers["Cache-Control"] = "no-store"
            headers["Referrer-Policy"] = "no-referrer"
        elif "referrer-policy" not in present:
            headers.add("Referrer-Policy", "same-origin")
        return response


def configure_ready(app: Flask, state: Loket) -> None:
    from .plugins import PluginError

    with app.app_context():
        for impl in state.pm.hook.app_ready.get_hookimpls():
            args = {"app": app} if "app" in impl.argnames else {}
            try:
                impl.function(**args)
            except Exception as exc:
                raise PluginError(f"plugin {impl.plugin_name!r} failed to start: {exc}") from exc


def configure_errors(app: Flask) -> None:
    from .errors import register_error_handlers

    register_error_handlers(app)
