"""The `loket` command, run as an operator would: through click, and as a process for `serve`."""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

import core
from core import db, hookimpl
from core.cli import main
from core.models import Message, Role, Staff, Status, Ticket, TicketEvent, UserType
from core.passwords import hash_token, verify_password

BUILTIN_PLUGINS = {"email_intake", "billing_desk", "social", "livechat"}
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def cli_env(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """LOKET_* variables for a fresh desk: nothing from the outer environment leaks in."""
    for name in list(os.environ):
        if name.startswith("LOKET_") and name != "LOKET_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    env = {"LOKET_INSTANCE_PATH": str(tmp_path / "instance"), "LOKET_DATABASE_URL": db_url,
           "LOKET_JOBS": "immediate"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def loket(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def ok(*args: str, input: str | None = None) -> Result:
    result = loket(*args, input=input)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def desk_db(cli_env: dict[str, str]) -> dict[str, str]:
    ok("db", "upgrade")
    return cli_env


@pytest.fixture
def query(cli_env: dict[str, str]) -> Any:
    """Run ``fn`` against the CLI's database, as a separate app would."""
    apps: list[Any] = []

    def run(fn: Any) -> Any:
        app = core.create_app()
        apps.append(app)
        with app.app_context(), db.connection():
            return fn()

    yield run
    for app in apps:
        app.extensions["loket"].database.close()


# The core unit's scripts, as `loket db status` names them (each branch may add some).
CORE_MIGRATIONS = sorted(p.stem for p in (REPO / "core" / "migrations").glob("0*.py"))
# A fresh desk's pending scripts: core's, then each default plugin's, in the order enabled.
PENDING = [f"core: {name}" for name in CORE_MIGRATIONS] + [
    f"{plugin}: {path.stem}"
    for plugin in ("email_intake", "billing_desk", "social", "livechat")
    for path in sorted((REPO / "plugins" / plugin / "migrations").glob("0*.py"))]


def test_db_upgrade_then_status(cli_env: dict[str, str]) -> None:
    count = len(CORE_MIGRATIONS)
    status = ok("db", "status").output
    assert f"core: 0 applied, {count} pending" in status
    assert "pending 0001_initial" in status

    first = ok("db", "upgrade").output
    assert "core: applied 0001_initial" in first
    assert first.count("core: applied ") == count
    # Enabled plugins' scripts run in the same upgrade.
    assert f"{len(PENDING)} migration(s) applied." in first

    assert "Database is up to date." in ok("db", "upgrade").output
    assert f"core: {count} applied, 0 pending" in ok("db", "status").output


def test_create_admin_then_change_password(desk_db: dict[str, str], query: Any) -> None:
    out = ok("create-admin", "--email", " Ops@Desk.Test ", "--name", "Olga Ops",
             "--password", "first password 1").output
    assert "Created admin ops@desk.test" in out
    # Again for the same address: the password changes, no second account.
    out = ok("create-admin", "--email", "ops@desk.test", "--password-stdin",
             input="second password 2\n").output
    assert "Updated ops@desk.test" in out

    staff = query(lambda: list(Staff.select()))
    assert [(s.email, s.name, s.role) for s in staff] == [("ops@desk.test", "Olga Ops",
                                                           Role.ADMIN)]
    assert verify_password(staff[0].password_hash, "second password 2")
    assert not verify_password(staff[0].password_hash, "first password 1")


def test_create_admin_prompts_and_refuses_short_passwords(desk_db: dict[str, str],
                                                          query: Any) -> None:
    ok("create-admin", "--email", "a@desk.test", "--name", "A",
       input="prompted password\nprompted password\n")
    assert verify_password(query(lambda: Staff.get().password_hash), "prompted password")

    short = loket("create-admin", "--email", "b@desk.test", "--name", "B", "--password", "short")
    assert short.exit_code == 2
    assert "at least 10 characters" in short.output
    new_without_name = loket("create-admin", "--email", "c@desk.test", "--password", "x" * 12)
    assert new_without_name.exit_code == 2
    assert "--name is required" in new_without_name.output


def test_api_token_is_shown_once_and_stored_hashed(desk_db: dict[str, str], query: Any) -> None:
    ok("create-admin", "--email", "bot@desk.test", "--name", "Bot", "--password", "x" * 12)
    result = ok("api-token", "--email", "bot@desk.test")
    token = result.stdout.strip()
    assert token.startswith("lkt_")
    assert query(lambda: Staff.get().api_token_hash) == hash_token(token)
    assert "cannot be shown again" in result.stderr

    missing = loket("api-token", "--email", "nobody@desk.test")
    assert missing.exit_code == 1
    assert "no active staff member" in missing.stderr


def test_demo_fills_the_desk_once(desk_db: dict[str, str], query: Any) -> None:
    first = ok("demo", "--admin-password", "demo password 123").output
    assert "Admin login: admin@loket.test" in first
    assert "Password:    demo password 123" in first
    assert "12 new ticket(s)" in first

    def snapshot() -> dict[str, Any]:
        return {
            "user_types": sorted(u.slug for u in UserType.select()),
            "staff": Staff.select().count(),
            "tickets": Ticket.select().count(),
            "messages": Message.select().count(),
            "events": TicketEvent.select().count(),
            "statuses": {t.status for t in Ticket.select()},
        }

    before = query(snapshot)
    second = ok("demo").output
    assert "0 new ticket(s)" in second
    assert "Password:    unchanged" in second
    assert query(snapshot) == before

    assert before["user_types"] == ["member", "model", "studio"]
    assert before["staff"] == 3
    assert before["tickets"] == 12
    assert before["statuses"] == set(Status.ALL)
    assert before["events"] > before["tickets"]  # the services wrote the audit trail

    def routed() -> dict[str, str]:
        return {t.subject: t.department.slug for t in Ticket.select()}

    departments = query(routed)
    assert departments["Charged after I cancelled"] == "billing"
    assert departments["Two subscriptions on one card"] == "management"  # escalated
    assert departments["My video was taken down by mistake"] == "trust-safety"
    def timeline() -> tuple[int, list[Any]]:
        days = {t.created_at.date() for t in Ticket.select()}
        waits = [t.first_response_at - t.created_at for t in Ticket.select()
                 if t.first_response_at is not None]
        return len(days), waits

    days, waits = query(timeline)
    assert days >= 5  # a history to chart, not twelve tickets opened this second
    assert waits and all(wait.total_seconds() > 0 for wait in waits)
    admin = query(lambda: Staff.get(Staff.email == "admin@loket.test"))
    assert admin.role == Role.ADMIN
    assert verify_password(admin.password_hash, "demo password 123")


def test_demo_generates_a_password_for_a_new_admin(desk_db: dict[str, str], query: Any) -> None:
    out = ok("demo", "--admin-email", "boss@desk.test").output
    password = re.search(r"Password:\s+(\S+)", out).group(1)
    assert len(password) >= 12
    assert verify_password(query(lambda: Staff.get(Staff.email == "boss@desk.test").password_hash),
                           password)


def test_demo_needs_migrations(cli_env: dict[str, str]) -> None:
    result = loket("demo")
    assert result.exit_code == 1
    assert "loket db upgrade" in result.stderr


def test_plugins_table(cli_env: dict[str, str]) -> None:
    out = ok("plugins").output
    lines = out.strip().splitlines()
    assert lines[0].split() == ["NAME", "VERSION", "ENABLED", "CHANNELS", "HOOKS"]
    assert lines[-1] == "core's own channels: web, api, staff"
    rows = {line.split()[0]: line.split(None, 4) for line in lines[1:-1]}
    assert set(rows) >= BUILTIN_PLUGINS
    for name in BUILTIN_PLUGINS:
        assert rows[name][1] == core_version()
        assert rows[name][2] == "yes"
        assert "plugin_settings" in rows[name][4]
    assert "route_ticket" in rows["billing_desk"][4]
    assert rows["email_intake"][3] == "email" and rows["billing_desk"][3] == "-"


def test_plugins_json_follows_loket_plugins(cli_env: dict[str, str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOKET_PLUGINS", "billing_desk")
    found = {p["name"]: p for p in json.loads(ok("plugins", "--json").output)}
    assert set(found) >= BUILTIN_PLUGINS
    assert found["billing_desk"]["enabled"] is True
    assert {name for name in BUILTIN_PLUGINS if found[name]["enabled"]} == {"billing_desk"}
    # A disabled plugin is listed from its metadata, never imported: no hooks to show.
    assert found["livechat"]["loaded"] is False and found["livechat"]["hooks"] == []
    assert "route_ticket" in found["billing_desk"]["hooks"]
    assert found["social"]["version"] == core_version()
    assert found["social"]["module"] == "plugins.social"
    assert found["email_intake"]["channels"] == []  # not enabled here: owns nothing


def core_version() -> str:
    from importlib.metadata import version

    return version("loket")


def test_check_passes_on_a_good_desk(desk_db: dict[str, str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOKET_SECRET_KEY", "a very secret key")
    monkeypatch.setenv("LOKET_JOBS", "sqlite")
    result = ok("check")
    out = result.output
    assert re.search(r"secret_key\s+\*\*\* \(set\)\s+\[LOKET_SECRET_KEY\]", out)
    assert "a very secret key" not in out
    assert re.search(r"upload_max_bytes\s+10485760\s+\[default\]", out)
    assert re.search(r"instance_path\s+\S+\s+\[LOKET_INSTANCE_PATH\]", out)
    assert "ok    database" in out
    assert "ok    migrations" in out
    assert "ok    job queue: sqlite" in out
    assert "All checks passed." in out


def test_check_masks_passwords_in_urls(desk_db: dict[str, str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOKET_REDIS_URL", "redis://:hunter2hunter2@127.0.0.1:1/0")
    monkeypatch.setenv("LOKET_JOBS", "auto")  # Redis, since a URL is set
    result = loket("check")
    assert "hunter2" not in result.output
    assert "redis://:***@127.0.0.1:1/0" in result.output
    # Nothing listens on port 1: the job queue check fails, and so does the command.
    assert "FAIL  job queue" in result.output
    assert result.exit_code == 1


def test_check_reports_pending_migrations(cli_env: dict[str, str]) -> None:
    result = loket("check")
    assert result.exit_code == 1
    assert f"FAIL  migrations: {len(PENDING)} pending ({', '.join(PENDING)})" in result.output


@pytest.mark.parametrize("variable, value, expected", [
    ("LOKET_UPLOAD_MAX_BYTES", "abc", "LOKET_UPLOAD_MAX_BYTES: expected a whole number"),
    ("LOKET_PLUGINS", "email_intake nosuchplugin", "'nosuchplugin' is not installed"),
])
def test_bad_settings_give_one_line_and_exit_2(cli_env: dict[str, str],
                                               monkeypatch: pytest.MonkeyPatch,
                                               variable: str, value: str,
                                               expected: str) -> None:
    monkeypatch.setenv(variable, value)
    for command in (["check"], ["db", "upgrade"], ["serve"], ["plugins"]):
        result = loket(*command)
        assert result.exit_code == 2, (command, result.output)
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert expected in lines[0]
        assert "Traceback" not in result.stderr


def test_help_works_with_a_bad_setting(cli_env: dict[str, str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOKET_UPLOAD_MAX_BYTES", "abc")
    out = ok("--help").output
    for command in ("serve", "worker", "db", "create-admin", "demo", "plugins", "check"):
        assert command in out


def test_serve_refuses_with_pending_migrations(cli_env: dict[str, str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def no_process(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("serve started a process")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    result = loket("serve")
    assert result.exit_code == 1
    assert f"{len(PENDING)} migration(s) pending ({', '.join(PENDING)})" in result.stderr
    assert "loket db upgrade" in result.stderr


def test_worker_refuses_immediate_jobs(desk_db: dict[str, str]) -> None:
    result = loket("worker")
    assert result.exit_code == 1
    assert "nothing for a worker to do" in result.stderr


class CommandPlugin:
    """A plugin with a command of its own; it needs the app and the database."""

    @hookimpl
    def register_commands(self) -> list[click.Command]:
        @click.command("count-tickets")
        @click.option("--status", default=None)
        def count_tickets(status: str | None) -> None:
            """Print how many tickets there are."""
            query = Ticket.select()
            if status:
                query = query.where(Ticket.status == status)
            click.echo(f"{query.count()} ticket(s)")

        return [count_tickets]


def test_register_commands_join_the_group_and_run_in_the_app(
        desk_db: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core, "create_app",
                        functools.partial(core.create_app, extra_plugins=(CommandPlugin(),)))
    assert "count-tickets" in ok("--help").output
    assert ok("count-tickets").output.strip() == "0 ticket(s)"
    ok("demo", "--admin-password", "x" * 12)
    assert ok("count-tickets", "--status", "closed").output.strip() == "2 ticket(s)"
    unknown = loket("no-such-command")
    assert unknown.exit_code == 2
    assert "No such command" in unknown.output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes (its parent has not reaped it yet).
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def test_serve_runs_web_and_worker_and_stops_both(desk_db: dict[str, str], tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "LOKET_JOBS": "sqlite", "LOKET_WEB_WORKERS": "1"}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "core.cli", "serve", "--bind", f"127.0.0.1:{port}",
             "--job-workers", "1"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline and status is None:
            try:
                status = urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/", timeout=2).status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError:
                assert proc.poll() is None, log.read_text()
                time.sleep(0.2)
        assert status is not None, log.read_text()
        # The worker is up when huey says so.
        while time.monotonic() < deadline and "Huey consumer started" not in log.read_text():
            time.sleep(0.2)
        text = log.read_text()
        pids = {name: int(pid) for name, pid in re.findall(r"loket: (\w+) started \(pid (\d+)\)",
                                                            text)}
        assert set(pids) == {"web", "worker"}, text

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=45) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert "Shutting down: Master" in text
    assert "Consumer exiting" in text
    assert not [name for name, pid in pids.items() if _alive(pid)]


# -- The supervisor keeps serving when the job worker dies ------------------------------------


def _serve(tmp_path: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "LOKET_JOBS": "sqlite", "LOKET_WEB_WORKERS": "1"}
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "core.cli", "serve", "--bind", f"127.0.0.1:{port}",
             "--job-workers", "1"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)


def _status(url: str) -> int | None:
    try:
        return urllib.request.urlopen(url, timeout=2).status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def _until(check: Any, timeout: float, proc: subprocess.Popen[bytes], log: Path) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        assert proc.poll() is None, log.read_text()
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout:.0f} s:\n{log.read_text()}")


def test_serve_restarts_a_killed_job_worker_and_keeps_serving(desk_db: dict[str, str],
                                                              tmp_path: Path) -> None:
    port = _free_port()
    home = f"http://127.0.0.1:{port}/"
    log = tmp_path / "serve.log"
    proc = _serve(tmp_path, port, log)
    try:
        _until(lambda: _status(home) == 200, 30, proc, log)
        started = re.compile(r"loket: worker (?:started|restarted) \(pid (\d+)\)")
        first = int(_until(lambda: started.findall(log.read_text()), 30, proc, log)[0])
        _until(lambda: "Huey consumer started" in log.read_text(), 30, proc, log)
        # The start message names where the help center is, as the bind says.
        assert f"help center at http://127.0.0.1:{port}/" in log.read_text()

        os.kill(first, signal.SIGKILL)
        pids = _until(lambda: [int(p) for p in started.findall(log.read_text())][1:], 30,
                      proc, log)
        assert pids[0] != first and _alive(pids[0])
        assert "worker exited with code -9; restarting it in 1 s" in log.read_text()
        assert _status(home) == 200  # the help center never stopped
        assert proc.poll() is None

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=45) == 0, log.read_text()
        assert not _alive(pids[0])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_worker_that_keeps_dying_is_restarted_ever_more_slowly() -> None:
    from core.cli import Child

    child = Child("worker", ["true"], {}, signal.SIGINT, restart=True)
    child.started = time.monotonic()
    waits = [child.schedule_restart() for _ in range(8)]
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60]
    child.started = time.monotonic() - Child.STABLE_AFTER  # it ran a good while this time
    assert child.schedule_restart() == 1


# -- The public URL follows where the desk is served ------------------------------------------


@pytest.mark.parametrize(("bind", "url"), [
    ("127.0.0.1:8077", "http://127.0.0.1:8077"),
    ("0.0.0.0:9000", "http://127.0.0.1:9000"),
    ("[::]:9000", "http://[::1]:9000"),
    ("[::1]:9001", "http://[::1]:9001"),
    ("help.local", "http://help.local:8000"),
    ("unix:/run/loket.sock, 10.0.0.5:81", "http://10.0.0.5:81"),
])
def test_public_url_follows_bind_unless_set(tmp_path: Path, bind: str, url: str) -> None:
    from core.config import CORE_SETTINGS, ensure_instance, resolve

    config = resolve(CORE_SETTINGS, {"instance_path": str(tmp_path)},
                     environ={"LOKET_BIND": bind})
    ensure_instance(config)
    assert config["public_url"] == url
    explicit = resolve(CORE_SETTINGS, {"instance_path": str(tmp_path)},
                       environ={"LOKET_BIND": bind, "LOKET_PUBLIC_URL": "https://help.example"})
    ensure_instance(explicit)
    assert explicit["public_url"] == "https://help.example"


def test_tracking_links_point_where_the_desk_listens(desk_db: dict[str, str], query: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from core.models import IdentityKind
    from core.services.tickets import Identity, open_ticket, tracking_url

    monkeypatch.setenv("LOKET_BIND", "127.0.0.1:8077")

    def link() -> str:
        ticket = open_ticket(identity=Identity(IdentityKind.EMAIL, "rina@example.test"),
                             subject="Port", text="Where is my ticket?")
        return tracking_url(ticket)

    assert query(link).startswith("http://127.0.0.1:8077/t/")


def test_check_warns_when_public_url_is_not_where_the_desk_listens(
        desk_db: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOKET_BIND", "127.0.0.1:8077")
    monkeypatch.setenv("LOKET_PUBLIC_URL", "http://127.0.0.1:8000")
    out = ok("check").output
    assert "warn  public_url http://127.0.0.1:8000 is not where this desk listens" in out
    monkeypatch.setenv("LOKET_PUBLIC_URL", "http://127.0.0.1:8077")
    assert "warn  " not in ok("check").output
    monkeypatch.delenv("LOKET_PUBLIC_URL")
    out = ok("check").output
    assert "warn  " not in out
    assert re.search(r"public_url\s+http://127.0.0.1:8077\s+\[default, follows bind\]", out)
