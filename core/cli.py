"""The ``loket`` command: serve, worker, database migrations, staff accounts, demo data, checks."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click
from flask import Flask

from . import db
from .config import ConfigError, bind_addresses, public_url_mismatch
from .plugins import PluginError

APP_KEY = "loket.app"
REPO_ROOT = Path(__file__).resolve().parent.parent
GUNICORN_CONF = REPO_ROOT / "gunicorn.conf.py"
# What gunicorn serves; create_app() reads the same LOKET_* settings as this command.
WSGI_APP = "core:create_app()"


def fail(message: str, code: int = 1) -> None:
    """Print one line to stderr and stop with ``code``."""
    click.echo(f"loket: {message}", err=True)
    raise click.exceptions.Exit(code)


def get_app(ctx: click.Context | None = None) -> Flask:
    """Build the app once per command line; a bad setting ends it with one line and exit 2."""
    root = (ctx or click.get_current_context()).find_root()
    app = root.meta.get(APP_KEY)
    if app is None:
        from . import create_app

        try:
            app = create_app()
        except (ConfigError, PluginError) as exc:
            fail(str(exc), 2)
        except ValueError as exc:  # a setting combination the factory refuses
            fail(str(exc), 2)
        root.meta[APP_KEY] = app
        database = app.extensions["loket"].database
        root.call_on_close(lambda: database.is_closed() or database.close())
    return app


def enter_app(ctx: click.Context | None = None) -> Flask:
    """Build the app, then hold its app context and a database connection until the command ends."""
    root = (ctx or click.get_current_context()).find_root()
    app = get_app(root)
    if not root.meta.get("loket.entered"):
        root.meta["loket.entered"] = True
        root.with_resource(app.app_context())
        db.bind(app.extensions["loket"].database)
        root.with_resource(db.connection())
    return app


def state(app: Flask) -> Any:
    return app.extensions["loket"]


class LoketGroup(click.Group):
    """The command group; plugin commands come from ``register_commands`` once the app exists.

    The app is built lazily, the first time a name is not a core command, so
    ``loket --help`` and the core commands work whatever the plugins do.
    """

    def _plugin_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        root = ctx.find_root()
        found = root.meta.get("loket.plugin_commands")
        if found is None:
            found = {}
            for commands in state(get_app(root)).pm.hook.register_commands():
                for command in commands or ():
                    if command.name and command.name not in self.commands:
                        found.setdefault(command.name, command)
            root.meta["loket.plugin_commands"] = found
        return found

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = list(super().list_commands(ctx))
        try:
            names += sorted(self._plugin_commands(ctx))
        except click.exceptions.Exit:
            pass  # the help text still lists the core commands; running one reports the error
        return names

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        return self._plugin_commands(ctx).get(cmd_name)


@click.group(cls=LoketGroup)
@click.pass_context
def main(ctx: click.Context) -> None:
    """Loket help desk. Settings come from LOKET_* variables and the LOKET_CONFIG file."""
    name = ctx.invoked_subcommand
    if name and name not in main.commands:
        # A plugin's command: it runs inside the app, with a database connection.
        enter_app(ctx)


# -- Running -----------------------------------------------------------------------------------


def _pending(app: Flask) -> list[str]:
    from .migrate import status

    with db.connection():
        return [f"{unit.unit}: {name}" for unit in status(state(app)) for name in unit.pending]


@main.command()
@click.option("--bind", default=None, metavar="HOST:PORT",
              help="Address to listen on (default: LOKET_BIND or 127.0.0.1:8000).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Web worker processes (default: LOKET_WEB_WORKERS or from the CPU count).")
@click.option("--no-worker", is_flag=True, help="Do not start a job worker beside the web server.")
@click.option("--job-workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Threads of the job worker.")
def serve(bind: str | None, workers: int | None, no_worker: bool, job_workers: int) -> None:
    """Serve the help desk with gunicorn, and run a job worker beside it."""
    if bind:
        os.environ["LOKET_BIND"] = bind  # before the app reads it: public_url may follow it
    app = get_app()
    try:
        pending = _pending(app)
    except Exception as exc:
        fail(f"cannot read the database: {exc}")
    if pending:
        fail(f"{len(pending)} migration(s) pending ({', '.join(pending)}); "
             "run `loket db upgrade` first")
    if state(app).config["jobs"] == "immediate":
        no_worker = True  # jobs run inline; a worker would have nothing to take
    if not state(app).database.is_closed():
        state(app).database.close()

    env = dict(os.environ)
    env["LOKET_BIND"] = state(app).config["bind"]  # gunicorn.conf.py reads it from there
    if workers:
        env["LOKET_WEB_WORKERS"] = str(workers)
    web_cmd = [sys.executable, "-m", "gunicorn"]
    if GUNICORN_CONF.exists():
        web_cmd += ["--config", str(GUNICORN_CONF)]
    else:  # installed without the repository: the settings the config file would read
        for address in bind_addresses(env["LOKET_BIND"]):
            web_cmd += ["--bind", address]
        web_cmd += ["--workers", env.get("LOKET_WEB_WORKERS", "2"),
                    "--worker-class", "core.serving.BufferingThreadWorker", "--threads", "4"]
    web_cmd.append(WSGI_APP)
    # Own sessions: a Ctrl-C reaches this process only, which then stops each child gracefully.
    children = [Child("web", web_cmd, env, signal.SIGTERM, restart=False)]
    if not no_worker:
        worker_cmd = [sys.executable, "-m", "core.cli", "worker", "--workers", str(job_workers)]
        # huey finishes running jobs on SIGINT.
        children.append(Child("worker", worker_cmd, env, signal.SIGINT, restart=True))
    if "livechat" in state(app).enabled:
        # The live-chat sockets live in their own asyncio process (the plugin's `loket chat`);
        # one that dies is started again, and the widgets reconnect and resume.
        chat_cmd = [sys.executable, "-m", "core.cli", "chat"]
        children.append(Child("chat", chat_cmd, env, signal.SIGTERM, restart=True))
    for child in children:
        child.start()
        click.echo(f"loket: {child.name} started (pid {child.proc.pid})", err=True)
    click.echo(f"loket: help center at {state(app).config['public_url']}/", err=True)
    sys.exit(_supervise(children))


class Child:
    """A process `loket serve` runs, and how to stop and (for the job worker) restart it.

    A job worker that dies is started again: the web server keeps serving meanwhile,
    and the work it held is still in the queue or the database. The wait before a
    restart doubles after each quick death (1 s up to a minute), so a worker that
    crashes on start does not spin; one that ran a while starts again at once.
    """

    MIN_DELAY = 1.0
    MAX_DELAY = 60.0
    STABLE_AFTER = 60.0  # up this long: the next death is not part of a crash loop

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], stop_signal: int,
                 restart: bool):
        self.name = name
        self.cmd = cmd
        self.env = env
        self.stop_signal = stop_signal
        self.restart = restart
        self.proc: subprocess.Popen[bytes] = None  # type: ignore[assignment]
        self.started = 0.0
        self.delay = self.MIN_DELAY
        self.restart_at: float | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.cmd, env=self.env, start_new_session=True)
        self.started = time.monotonic()
        self.restart_at = None

    def schedule_restart(self) -> float:
        """When a restartable child died: how long until it starts again."""
        if time.monotonic() - self.started >= self.STABLE_AFTER:
            self.delay = self.MIN_DELAY
        wait = self.delay
        self.delay = min(self.delay * 2, self.MAX_DELAY)
        self.restart_at = time.monotonic() + wait
        return wait


def _supervise(children: list[Child], grace: float = 40.0) -> int:
    """Run until a signal or the web server's exit, restarting a dead job worker; then stop all.

    Returns the exit code: 0 after a signal, the web server's code when it ended.
    """
    stop: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        stop.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    try:
        while not stop and not code:
            for child in children:
                if child.proc.poll() is None:
                    continue
                if not child.restart:
                    click.echo(f"loket: {child.name} exited with code {child.proc.returncode}; "
                               "stopping", err=True)
                    code = child.proc.returncode or 1
                    break
                if child.restart_at is None:
                    wait = child.schedule_restart()
                    click.echo(f"loket: {child.name} exited with code {child.proc.returncode}; "
                               f"restarting it in {wait:.0f} s", err=True)
                elif time.monotonic() >= child.restart_at:
                    child.start()
                    click.echo(f"loket: {child.name} restarted (pid {child.proc.pid})", err=True)
            time.sleep(0.2)
        for child in children:
            if child.proc.poll() is None:
                child.proc.send_signal(child.stop_signal)
        deadline = time.monotonic() + grace
        for child in children:
            try:
                child.proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                click.echo(f"loket: {child.name} did not stop in {grace:.0f}s; killing it",
                           err=True)
                child.proc.kill()
                child.proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code


@main.command()
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Jobs run at the same time (threads).")
@click.option("--no-periodic", is_flag=True,
              help="Do not run periodic tasks here (when another worker runs them).")
def worker(workers: int, no_periodic: bool) -> None:
    """Run background jobs (outbound messages, mailbox polling, periodic tasks) until stopped."""
    app = get_app()
    loket_state = state(app)
    if loket_state.config["jobs"] == "immediate":
        fail("LOKET_JOBS is immediate: jobs run inline, there is nothing for a worker to do")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    loket_state.jobs.run_worker(workers=workers, periodic=not no_periodic)


# -- Database ----------------------------------------------------------------------------------


@main.group("db")
def db_group() -> None:
    """Database schema: apply and list migrations (core first, then each enabled plugin)."""


@db_group.command()
def upgrade() -> None:
    """Apply every pending migration."""
    from . import migrate

    app = enter_app()
    try:
        done = migrate.upgrade(state(app))
    except Exception as exc:
        fail(f"migration failed: {exc}")
    total = 0
    for unit, names in done.items():
        for name in names:
            click.echo(f"{unit}: applied {name}")
            total += 1
    click.echo(f"{total} migration(s) applied." if total else "Database is up to date.")


@db_group.command("status")
def db_status() -> None:
    """List applied and pending migrations per unit."""
    from . import migrate

    app = enter_app()
    pending = 0
    for unit in migrate.status(state(app)):
        click.echo(f"{unit.unit}: {len(unit.applied)} applied, {len(unit.pending)} pending")
        for name in unit.pending:
            click.echo(f"  pending {name}")
        pending += len(unit.pending)
    if pending:
        click.echo("Run `loket db upgrade` to apply them.")


@db_group.command("mark-late")
def mark_late() -> None:
    """Mark late the active tickets past their due time now, as the worker does every minute
    (for a desk with no worker; ``db upgrade`` to 0027 marks those already due itself)."""
    from .services import late

    enter_app()
    total = marked = late.mark()
    while marked:
        marked = late.mark()
        total += marked
    click.echo(f"{total} ticket(s) marked late.")


@db_group.command("rebuild-search")
@click.option("--batch", type=click.IntRange(min=1), default=None,
              help="Tickets a transaction (default 2000).")
def rebuild_search(batch: int | None) -> None:
    """Make the search documents again from the tickets (in batches; the desk may keep
    serving; documents already right are left alone, so running it twice changes nothing)."""
    from .migrate import status
    from .services import search_index

    app = enter_app()
    if any(unit.pending for unit in status(state(app))):
        fail("the database has pending migrations; run `loket db upgrade` first")
    ends = search_index.span()
    length = 0 if ends is None else ends[1] - ends[0] + 1
    try:
        with click.progressbar(length=length, label="Search documents", file=sys.stderr,
                               show_pos=True) as bar:
            done = search_index.rebuild(batch or search_index.BATCH, progress=bar.update)
    except search_index.Stopped as stopped:
        fail(str(stopped))
    click.echo(f"{done.tickets} ticket(s): {done.written} document(s) written, "
               f"{done.removed} of tickets that are gone removed.")
    if not db.is_sqlite():
        click.echo(f"{done.pruned} word(s) no document holds any more removed.")
        click.echo(f"{done.pruned_pairs} pair(s) of a number and the word before it no "
                   "document holds any more removed.")
    if done.retried:
        click.echo(f"{done.retried} transaction(s) undone by PostgreSQL for a concurrent "
                   "write's sake and run again.")


# -- Staff -------------------------------------------------------------------------------------


def _clean_email(value: str) -> str:
    email = value.strip().lower()
    if "@" not in email or " " in email or email.startswith("@") or email.endswith("@"):
        raise click.BadParameter(f"{value!r} is not an email address")
    return email


def _read_password(password: str | None, from_stdin: bool) -> str:
    if password and from_stdin:
        raise click.UsageError("give --password or --password-stdin, not both")
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@main.command("create-admin")
@click.option("--email", required=True, help="Sign-in address.")
@click.option("--name", default=None, help="Display name (required for a new account).")
@click.option("--password", default=None,
              help="Password (visible in the process list; prefer the prompt or --password-stdin).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create_admin(email: str, name: str | None, password: str | None,
                 password_stdin: bool) -> None:
    """Create an admin, or make an existing staff member admin with a new password."""
    from .models import Role, Staff
    from .passwords import hash_password

    email = _clean_email(email)
    password = _read_password(password, password_stdin)
    try:
        password_hash = hash_password(password)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="password") from None
    enter_app()
    with db.write_transaction():
        staff = Staff.get_or_none(Staff.email == email)
        if staff is None:
            if not name:
                raise click.UsageError("--name is required for a new account")
            Staff.create(email=email, name=name, role=Role.ADMIN, password_hash=password_hash)
            click.echo(f"Created admin {email}.")
            return
        staff.password_hash = password_hash
        staff.role = Role.ADMIN
        staff.active = True
        staff.failed_logins = 0
        staff.locked_until = None
        if name:
            staff.name = name
        staff.save()
    click.echo(f"Updated {email}: admin, new password set.")


@main.command("api-token")
@click.option("--email", required=True, help="The staff member the token acts as.")
def api_token(email: str) -> None:
    """Issue a new API token for a staff member (replaces the old one); shown once."""
    from .models import Staff
    from .passwords import new_api_token

    email = _clean_email(email)
    enter_app()
    token, token_hash = new_api_token()
    with db.write_transaction():
        staff = Staff.get_or_none(Staff.email == email)
        if staff is None or not staff.active:
            fail(f"no active staff member with email {email}")
        staff.api_token_hash = token_hash
        staff.save(only=[Staff.api_token_hash])
    click.echo(token)
    click.echo("Keep it now: it is stored hashed and cannot be shown again.", err=True)


# -- Demo data ---------------------------------------------------------------------------------


@main.command()
@click.option("--admin-email", default="admin@loket.test", show_default=True)
@click.option("--admin-password", default=None,
              help="Admin password (default: a random one for a new admin; kept otherwise).")
def demo(admin_email: str, admin_password: str | None) -> None:
    """Fill the desk with realistic demo data (safe to run again)."""
    from . import demo as demo_mod
    from .migrate import status

    app = enter_app()
    if any(unit.pending for unit in status(state(app))):
        fail("the database has pending migrations; run `loket db upgrade` first")
    if admin_password is not None and len(admin_password) < 10:
        raise click.BadParameter("needs at least 10 characters", param_hint="--admin-password")
    email = _clean_email(admin_email)

    def progress(steps: list[Any], label: str) -> Iterator[Any]:
        with click.progressbar(steps, label=label, file=sys.stderr) as bar:
            yield from bar

    result = demo_mod.load_demo(admin_email=email, admin_password=admin_password,
                                progress=progress)
    click.echo(f"Demo desk: {result.user_types} user types, {result.categories} categories, "
               f"{result.staff} staff, {result.tickets_created} new ticket(s) "
               f"({result.tickets_total} demo tickets in all), {result.translations} new "
               "translation(s) of labels.")
    click.echo(f"Admin login: {email}")
    if result.admin_password:
        click.echo(f"Password:    {result.admin_password}")
    else:
        click.echo("Password:    unchanged (pass --admin-password to set a new one)")
    base = state(app).config["public_url"]
    click.echo(f"Help center: {base}/    Admin console: {base}/admin/")


# -- Translations ------------------------------------------------------------------------------


@main.group("i18n")
def i18n_group() -> None:
    """Catalogues of customer-facing text (core and the enabled plugins)."""


def _units(app: Flask) -> list[tuple[str, Path]]:
    from .i18n import CORE_TRANSLATIONS

    found = [("core", CORE_TRANSLATIONS.parent)]
    for name, plugin in state(app).pm.list_name_plugin():
        path = getattr(plugin, "__file__", None)
        if name != "core" and path and Path(path).name == "__init__.py":
            found.append((name, Path(path).parent))
    return found


@i18n_group.command("extract")
@click.argument("folders", nargs=-1, type=click.Path(exists=True, file_okay=False,
                                                       path_type=Path))
def i18n_extract(folders: tuple[Path, ...]) -> None:
    """Write each unit's translations/messages.pot and add new text to its id and fil .po.

    FOLDERS: package folders to extract (default: core and every enabled plugin).
    Exits 1 while any text lacks a translation, so a release step can insist on them.
    """
    from .i18n import update_catalogues

    units = [(f.name, f) for f in folders] or _units(get_app())
    lacking = 0
    for name, folder in units:
        missing = update_catalogues(folder)
        if not missing:
            click.echo(f"{name}: no customer-facing text")
            continue
        lacking += sum(missing.values())
        click.echo(f"{name}: " + ", ".join(f"{language} lacks {count}"
                                             for language, count in missing.items()))
    if lacking:
        fail(f"{lacking} translation(s) missing; fill in the msgstr lines of the .po files")


@i18n_group.command("compile")
def i18n_compile() -> None:
    """Compile the catalogues of core and the enabled plugins now (the desk also does it
    when it starts, whenever a .po is newer than its .mo); a broken .po exits 2."""
    from .i18n import catalogue_sources, compile_catalogues

    app = get_app()  # building the app compiled them already, or failed with the reason
    cache = Path(state(app).config["instance_path"]) / "translations"
    folders = compile_catalogues(catalogue_sources(state(app).pm.list_name_plugin()), cache)
    for folder in folders:
        languages = sorted(p.parent.parent.name for p in folder.glob("*/LC_MESSAGES/*.mo"))
        click.echo(f"{folder}: {', '.join(languages)}")


# -- Plugins and checks ------------------------------------------------------------------------


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins(as_json: bool) -> None:
    """List installed plugins: version, whether enabled here, hooks of the loaded ones."""
    from .plugins import describe

    loket_state = state(get_app())
    infos = describe(loket_state.pm, loket_state.enabled)
    channels = loket_state.channels
    owned = {i.name: channels.owned_by(i.name) for i in infos}
    owned_by_core = channels.owned_by("core")
    if as_json:
        click.echo(json.dumps([
            {"name": i.name, "version": i.version, "module": i.module, "enabled": i.enabled,
             "loaded": i.loaded, "channels": owned[i.name], "hooks": list(i.hooks)}
            for i in infos], indent=2))
        return
    rows = [("NAME", "VERSION", "ENABLED", "CHANNELS", "HOOKS")]
    rows += [(i.name, i.version, "yes" if i.enabled else "no", ",".join(owned[i.name]) or "-",
              ", ".join(i.hooks) if i.loaded else "(not loaded)") for i in infos]
    widths = [max(len(row[col]) for row in rows) for col in range(4)]
    for row in rows:
        click.echo("  ".join(cell.ljust(widths[n]) for n, cell in enumerate(row[:4]))
                   + "  " + row[4])
    click.echo(f"core's own channels: {', '.join(owned_by_core)}")


SECRET_WORDS = ("secret", "password", "token", "key")


def _mask(name: str, value: Any, secret: bool) -> str:
    if isinstance(value, str) and "://" in value:
        parts = urlsplit(value)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
            value = urlunsplit(parts._replace(netloc=netloc))
    if value in ("", None, []):
        return '""' if isinstance(value, str) else repr(value)
    if secret or any(word in name.rsplit(".", 1)[-1] for word in SECRET_WORDS):
        return "*** (set)"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _secret_settings(app: Flask) -> set[str]:
    from .config import CORE_SETTINGS

    names = {s.name for s in CORE_SETTINGS if s.secret}
    for impl in state(app).pm.hook.plugin_settings.get_hookimpls():
        names |= {f"{impl.plugin_name}.{s.name}" for s in (impl.function() or []) if s.secret}
    return names


@main.command()
def check() -> None:
    """Check the configuration, database, migrations and job backend; exit 1 on a problem."""
    from .jobs import build_huey
    from .migrate import status

    app = get_app()
    loket_state = state(app)
    config = loket_state.config
    secrets = _secret_settings(app)
    problems: list[str] = []

    click.echo("Settings (source in brackets):")
    width = max(len(name) for name in config.values)
    for name in sorted(config.values, key=lambda n: ("." in n, n)):
        source = config.sources.get(name, "default")
        if source == "default" and name in ("database_url", "attachments_path"):
            source = "default, in the instance folder"
        elif source == "default" and name == "public_url":
            source = "default, follows bind"
        elif source == "default" and name == "secret_key":
            source = "generated, instance/secret_key"
        click.echo(f"  {name.ljust(width)}  {_mask(name, config[name], name in secrets)}"
                   f"  [{source}]")

    click.echo("Checks:")

    def report(label: str, action: Callable[[], str]) -> None:
        try:
            detail = action()
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            problems.append(label)
            click.echo(f"  FAIL  {label}: {first}")
        else:
            click.echo(f"  ok    {label}: {detail}")

    def database() -> str:
        with db.connection() as conn:
            conn.execute_sql("SELECT 1")
        return "sqlite" if db.is_sqlite(loket_state.database) else "postgresql"

    def migrations() -> str:
        with db.connection():
            units = status(loket_state)
        pending = [f"{u.unit}: {name}" for u in units for name in u.pending]
        if pending:
            raise RuntimeError(f"{len(pending)} pending ({', '.join(pending)}); "
                               "run `loket db upgrade`")
        return ", ".join(f"{u.unit} {len(u.applied)}" for u in units) + " applied"

    def jobs() -> str:
        mode = config["jobs"]
        if mode == "auto":
            mode = "redis" if config["redis_url"] else "sqlite"
        if mode == "immediate":
            return "immediate (jobs run inline; for tests only)"
        huey = build_huey(config)
        if mode == "redis":
            huey.storage.conn.ping()
            return f"redis, {huey.pending_count()} job(s) waiting"
        return f"sqlite ({Path(config['instance_path']) / 'jobs.db'}), " \
               f"{huey.pending_count()} job(s) waiting"

    def attachments() -> str:
        folder = Path(config["attachments_path"])
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK):
            raise RuntimeError(f"{folder} is not writable")
        return f"{folder} writable"

    with app.app_context():
        db.bind(loket_state.database)
        report("database", database)
        report("migrations", migrations)
        report("job queue", jobs)
        report("attachments", attachments)
    mismatch = public_url_mismatch(config)
    if mismatch:
        click.echo(f"  warn  {mismatch}")
    if config["public_url"].startswith("https://") and not config["secure_cookies"]:
        click.echo("  note  public_url is https: set LOKET_SECURE_COOKIES=true")
    if problems:
        click.echo(f"{len(problems)} problem(s): {', '.join(problems)}", err=True)
        raise click.exceptions.Exit(1)
    click.echo("All checks passed.")


if __name__ == "__main__":
    main()
