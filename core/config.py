"""Settings: defaults, then a TOML file named by LOKET_CONFIG, then LOKET_* variables."""

from __future__ import annotations

import os
import secrets
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

# The parsers are public in core.settings (plugins use them); core's own settings below
# keep their old private names so that nothing reading core.config breaks.
from .settings import Setting
from .settings import as_bool as _as_bool
from .settings import as_http_url as _as_http_url
from .settings import as_int as _as_int
from .settings import as_list as _as_list
from .settings import as_rate as _as_rate
from .settings import as_seconds as _as_seconds
from .settings import as_str as _as_str


class ConfigError(Exception):
    """A setting has a bad value. The message is one line naming the setting."""


def _as_database_url(value: Any) -> str:
    url = _as_str(value)
    scheme = urlparse(url).scheme.split("+")[0]
    if scheme not in {"sqlite", "postgres", "postgresql"}:
        raise ValueError(f"expected a sqlite:/// or postgresql:// URL, got {url!r}")
    return url


def _as_optional_redis_url(value: Any) -> str:
    url = _as_str(value)
    if url and urlparse(url).scheme not in {"redis", "rediss", "unix"}:
        raise ValueError(f"expected a redis:// URL, got {url!r}")
    return url


def _as_jobs_mode(value: Any) -> str:
    mode = _as_str(value).strip().lower()
    if mode not in {"auto", "sqlite", "redis", "immediate"}:
        raise ValueError(f"expected auto, sqlite, redis or immediate, got {value!r}")
    return mode


def _as_languages(value: Any) -> list[str]:
    languages = _as_list(value)
    unknown = [code for code in languages if code not in SUPPORTED_LANGUAGES]
    if unknown or not languages:
        raise ValueError(f"expected some of {', '.join(SUPPORTED_LANGUAGES)}, got {value!r}")
    return languages


def _as_timezone(value: Any) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = _as_str(value).strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"expected a time zone such as Asia/Jakarta or UTC, got {value!r}") from None
    return name


def _as_bind(value: Any) -> str:
    addresses = bind_addresses(_as_str(value))
    if not addresses:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return ",".join(addresses)


SUPPORTED_LANGUAGES = ("en", "id", "fil")
DEFAULT_BIND = "127.0.0.1:8000"
DEFAULT_PORT = 8000  # gunicorn's, for an address given without one
# Addresses that mean "every interface": a browser on this host reaches them at loopback.
WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}


def bind_addresses(bind: str) -> list[str]:
    """The addresses of a bind setting (as gunicorn reads LOKET_BIND: comma-separated)."""
    return [address.strip() for address in bind.split(",") if address.strip()]


def host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of a TCP bind address; None for unix: and fd:// ones."""
    if address.startswith(("unix:", "fd://")):
        return None
    if address.startswith("["):  # [v6]:port
        host, _, rest = address[1:].partition("]")
        port = rest.lstrip(":")
    elif address.count(":") == 1:
        host, port = address.split(":")
    elif ":" in address:  # a bare IPv6 address
        host, port = address, ""
    else:
        host, port = address, ""
    try:
        return host, int(port) if port else DEFAULT_PORT
    except ValueError:
        return None


def public_url_for(bind: str) -> str:
    """Where the help center is reached when public_url is not set: the first TCP address."""
    for address in bind_addresses(bind):
        found = host_port(address)
        if found is None:
            continue
        host, port = found
        host = WILDCARD_HOSTS.get(host, f"[{host}]" if ":" in host else host)
        return f"http://{host}:{port}"
    return f"http://{DEFAULT_BIND}"


def public_url_mismatch(config: Config) -> str | None:
    """Why an explicit public_url does not name an address this desk listens on, or None."""
    if config.sources.get("public_url", "default") == "default":
        return None
    parsed = urlparse(config["public_url"])
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    for address in bind_addresses(config["bind"]):
        found = host_port(address)
        if found is None:
            return None  # a unix socket: a proxy sits in front, whatever its address
        host, bound_port = found
        if bound_port == port and (host in WILDCARD_HOSTS
                                   or host.lower() == (parsed.hostname or "").lower()):
            return None
    return (f"public_url {config['public_url']} is not where this desk listens "
            f"(bind {config['bind']}): tracking links point there, which is right only "
            "behind a proxy that forwards it")


CORE_SETTINGS: tuple[Setting, ...] = (
    Setting("database_url", "", _as_database_url,
            "Database URL (sqlite:///path or postgresql://user@host/db). "
            "Default: a SQLite file in the instance folder."),
    Setting("secret_key", "", _as_str,
            "Signs sessions and CSRF tokens. Generated into the instance folder when absent.",
            secret=True),
    Setting("old_secret_keys", [], _as_list,
            "Secret keys used before this one: still read credentials stored under them "
            "(core.secrets), never sign anything.", secret=True),
    Setting("plugins",
            ["email_intake", "billing_desk", "social", "livechat", "knowledge_base"], _as_list,
            "Plugins this deployment enables, by entry-point name."),
    Setting("console", True, _as_bool,
            "Mount the staff console at /admin/ (the built-in plugin \"console\"); "
            "off runs the desk with the help center and the API only."),
    Setting("redis_url", "", _as_optional_redis_url,
            "Redis URL for the job queue and live fan-out; empty for the embedded defaults."),
    Setting("jobs", "auto", _as_jobs_mode,
            "Job queue backend: auto (Redis when redis_url is set, else SQLite), sqlite, "
            "redis, or immediate (run jobs inline; for tests)."),
    Setting("bind", DEFAULT_BIND, _as_bind,
            "Where `loket serve` listens: HOST:PORT, several separated by commas."),
    Setting("jobs_name", "loket", _as_str,
            "The job queue's name; desks that share one Redis need different names."),
    Setting("public_url", "", _as_http_url,
            "The address customers reach the help center at; used in tracking links. "
            "Default: http:// and the first address of bind."),
    Setting("instance_path", "", _as_str,
            "Folder for the SQLite file, the generated secret key and attachments."),
    Setting("attachments_path", "", _as_str,
            "Folder for attachment files, shared by every web host. Default: instance/attachments."),
    Setting("upload_max_bytes", 10 * 1024 * 1024, _as_int, "Largest single attachment, in bytes."),
    Setting("upload_max_files", 5, _as_int, "Most attachments on one message."),
    Setting("upload_allowed_types",
            ["image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf",
             "text/plain"],
            _as_list, "Attachment types accepted, judged by the file's content, not its name."),
    Setting("languages", list(SUPPORTED_LANGUAGES), _as_languages,
            "Languages the help center offers."),
    Setting("default_language", "en", _as_str, "Language when the customer states none."),
    Setting("timezone", "UTC", _as_timezone,
            "Time zone of the times customers read (pages and notifications), e.g. "
            "Asia/Jakarta or Asia/Manila."),
    Setting("session_minutes", 8 * 60, _as_int, "How long a staff sign-in lasts."),
    Setting("login_max_failures", 5, _as_int,
            "Failed sign-ins in a row before the account is locked for a while."),
    Setting("login_lock_minutes", 15, _as_int, "How long a locked account stays locked."),
    Setting("autoclose_days", 7, _as_int,
            "Resolved tickets close after this many days without a customer reply (0: never)."),
    Setting("secure_cookies", False, _as_bool, "Send cookies only over HTTPS (set behind TLS)."),
    Setting("default_department", "", _as_str,
            "Slug of the department for tickets no category places (mail and messenger "
            "messages that came without one); empty: admins triage them."),
    Setting("outbox_max_attempts", 8, _as_int,
            "Tries to send one outbound message before it is marked failed."),
    Setting("outbox_retry_seconds", 30, _as_int,
            "Wait before the first retry of a failed send; it doubles each time (up to an hour)."),
    Setting("outbox_threads", 4, _as_int,
            "Threads in each worker that send outbound messages (email, messengers)."),
    Setting("outbox_poll_seconds", 0.5, _as_seconds,
            "How often an idle worker looks for messages to send."),
    Setting("outbox_lease_seconds", 300, _as_int,
            "How long a worker may take to send one message before another may try again "
            "(after a worker died mid-send)."),
    Setting("raw_max_bytes", 25 * 1024 * 1024, _as_int,
            "Largest raw original (a whole email, a webhook body) kept for agents; a larger "
            "one is cut there and marked so."),
    Setting("trusted_proxies", 0, _as_int,
            "Reverse proxies in front of Loket whose X-Forwarded-For is believed for the client's "
            "address (0: the connecting address; anything else lets clients forge theirs)."),
    Setting("rate_limits", True, _as_bool,
            "Answer 429 to clients over the limits below (false: no limits; for benchmarks)."),
    Setting("rate_limit_open_ticket", "10/minute;60/hour", _as_rate,
            "Tickets opened from one address, web form and API together."),
    Setting("rate_limit_open_ticket_contact", "5/minute;20/hour", _as_rate,
            "Tickets opened for one email address, web form and API together."),
    Setting("rate_limit_tracking", "20/minute;100/hour", _as_rate,
            "Wrong tracking keys (or unknown tickets) one address may try, page and API alike."),
    Setting("rate_limit_api", "300/minute", _as_rate, "API requests from one address."),
    Setting("rate_limit_login", "10/minute;50/hour", _as_rate,
            "Console sign-in attempts from one address."),
    Setting("rate_limit_login_account", "5/minute;30/hour", _as_rate,
            "Console sign-in attempts for one email address, from anywhere."),
    Setting("form_min_seconds", 3, _as_int,
            "A ticket form sent sooner than this after it was shown is asked again "
            "(people cannot fill it in so fast; bots do). 0: no check."),
)


@dataclass
class Config:
    """The resolved settings of one app, core and plugins alike."""

    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    # plugin -> [(short name, full name)], for the values dict and size ``_names_of`` names.
    _plugin_names: dict[str, list[tuple[str, str]]] = field(
        default_factory=dict, init=False, repr=False, compare=False)
    _names_of: tuple[int, int] = field(default=(0, -1), init=False, repr=False, compare=False)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)

    def plugin(self, plugin: str) -> dict[str, Any]:
        """The settings of one plugin, by their short names (a fresh dict, the current values)."""
        values = self.values
        shape = (id(values), len(values))
        if self._names_of != shape:
            self._plugin_names.clear()
            self._names_of = shape
        names = self._plugin_names.get(plugin)
        if names is None:
            # Which settings are the plugin's is worked out once: a mail asks a few times.
            prefix = f"{plugin}."
            names = self._plugin_names[plugin] = [
                (k[len(prefix):], k) for k in values if k.startswith(prefix)]
        return {short: values[name] for short, name in names}


def _env_name(name: str) -> str:
    return "LOKET_" + name.replace(".", "_").upper()


def _read_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"LOKET_CONFIG: no such file {path!r}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"LOKET_CONFIG: {path} is not valid TOML: {exc}") from None
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if key == "plugins" and isinstance(value, dict):
            # [plugins.<name>] tables hold plugin settings; `enabled` there lists plugins.
            for plugin, settings in value.items():
                if plugin == "enabled":
                    flat["plugins"] = settings
                elif isinstance(settings, dict):
                    for short, setting in settings.items():
                        flat[f"{plugin}.{short}"] = setting
        else:
            flat[key.lower()] = value
    return flat


def resolve(
    settings: Iterable[Setting],
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    strict: bool = True,
) -> Config:
    """Resolve settings: defaults < TOML file < LOKET_* variables < explicit overrides.

    Raises ConfigError with one line for the first bad value or unknown key.
    With ``strict=False`` plugin keys (``plugin.name``) are not checked yet:
    the first pass, before the plugins have declared their settings.
    """
    environ = os.environ if environ is None else environ
    overrides = {k.lower(): v for k, v in (overrides or {}).items()}
    toml_path = overrides.pop("config_file", None) or environ.get("LOKET_CONFIG")
    from_file = _read_toml(toml_path) if toml_path else {}

    known = {s.name: s for s in settings}
    for key in list(from_file) + list(overrides):
        if key not in known and (strict or "." not in key):
            origin = toml_path if key in from_file else "config"
            raise ConfigError(f"{key}: unknown setting (in {origin})")

    config = Config()
    for setting in known.values():
        env_name = _env_name(setting.name)
        if setting.name in overrides:
            raw, source = overrides[setting.name], "config"
        elif env_name in environ:
            raw, source = environ[env_name], env_name
        elif setting.name in from_file:
            raw, source = from_file[setting.name], str(toml_path)
        else:
            config.values[setting.name] = setting.default
            config.sources[setting.name] = "default"
            continue
        try:
            config.values[setting.name] = setting.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{env_name}: {exc} (from {source})") from None
        config.sources[setting.name] = source
    return config


def ensure_instance(config: Config) -> Path:
    """Fill in the instance folder, database URL and secret key where unset."""
    instance = Path(config["instance_path"] or os.path.join(os.getcwd(), "instance")).resolve()
    instance.mkdir(parents=True, exist_ok=True)
    config.values["instance_path"] = str(instance)
    if not config["database_url"]:
        config.values["database_url"] = f"sqlite:///{instance / 'loket.db'}"
    if not config["public_url"]:
        config.values["public_url"] = public_url_for(config["bind"])
    if not config["attachments_path"]:
        config.values["attachments_path"] = str(instance / "attachments")
    if not config["secret_key"]:
        config.values["secret_key"] = _instance_secret(instance / "secret_key")
    if config["default_language"] not in config["languages"]:
        raise ConfigError(
            f"LOKET_DEFAULT_LANGUAGE: {config['default_language']!r} is not one of "
            f"LOKET_LANGUAGES ({', '.join(config['languages'])})")
    return instance


def _instance_secret(path: Path) -> str:
    """Read the generated secret key, creating it (mode 0600) on first run."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another worker won the race: use its key
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key
