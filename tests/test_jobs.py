"""The job queue for real: a plugin's job run by a huey consumer process, retries, and autoclose."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core import db, hookimpl
from core.builtin import close_stale_resolved
from core.models import IdentityKind, Status, Ticket, TicketEvent, UserType, utcnow
from core.services import tickets as svc

REPO = Path(__file__).resolve().parents[1]
REDIS_URL = os.environ.get("LOKET_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


class JobPlugin:
    """Declares one job: it fails on its first attempt when asked to, then writes a row."""

    @hookimpl
    def register_jobs(self, jobs: Any) -> None:
        @jobs.task(name="tests.remember", retries=2, retry_delay=1, backoff=1.0)
        def remember(slug: str, fail_first: str = "") -> None:
            if fail_first and not os.path.exists(fail_first):
                Path(fail_first).write_text("the first attempt failed")
                raise RuntimeError("first attempt fails on purpose")
            # A database write proves the job runs inside the app with a connection.
            UserType.create(slug=slug, name=f"made by a job ({slug})")


def worker_main() -> None:
    """The worker process: `loket worker`'s code path, with the test plugin registered."""
    import logging

    from core import create_app

    logging.basicConfig(level=logging.INFO)
    app = create_app(extra_plugins=(JobPlugin(),))
    app.extensions["loket"].jobs.run_worker(workers=1, periodic=False)


def _wait_for(check: Callable[[], bool], timeout: float, proc: subprocess.Popen[bytes],
              log: Path) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        assert proc.poll() is None, f"worker died:\n{log.read_text()}"
        time.sleep(0.2)
    return False


def _run_job_through_worker(make_app: Any, tmp_path: Path, db_url: str,
                            **jobs_config: str) -> None:
    app = make_app(extra_plugins=(JobPlugin(),), **jobs_config)
    state = app.extensions["loket"]
    state.jobs.huey.flush()  # nothing left over from an earlier run on a shared Redis
    marker = tmp_path / "failed-once"
    state.jobs.tasks["tests.remember"]("from-a-job", fail_first=str(marker))
    assert state.jobs.huey.pending_count() == 1

    env = {k: v for k, v in os.environ.items() if not k.startswith("LOKET_")}
    env.update({
        "LOKET_INSTANCE_PATH": state.config["instance_path"],
        "LOKET_DATABASE_URL": db_url,
        "LOKET_SECRET_KEY": "test-secret-key",
        "LOKET_PLUGINS": "",
        "LOKET_JOBS": state.config["jobs"],
        "LOKET_REDIS_URL": state.config["redis_url"],
    })
    log = tmp_path / "worker.log"

    def made() -> bool:
        with app.app_context(), db.connection():
            return UserType.select().where(UserType.slug == "from-a-job").exists()

    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from tests.test_jobs import worker_main; worker_main()"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        assert _wait_for(made, 30, proc, log), f"the job never ran:\n{log.read_text()}"
        proc.send_signal(signal.SIGINT)  # huey's graceful stop
        assert proc.wait(timeout=20) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert marker.read_text() == "the first attempt failed"
    assert "first attempt fails on purpose" in text  # the failure was logged...
    assert "Requeueing" in text  # ...and the job went back on the queue
    with app.app_context(), db.connection():
        assert UserType.select().where(UserType.slug == "from-a-job").count() == 1
    assert state.jobs.huey.pending_count() == 0


def test_register_jobs_job_runs_in_a_worker_and_is_retried(make_app: Any, tmp_path: Path,
                                                    db_url: str) -> None:
    _run_job_through_worker(make_app, tmp_path, db_url, jobs="sqlite")


@pytest.mark.redis
def test_register_jobs_job_runs_in_a_worker_on_redis(make_app: Any, tmp_path: Path,
                                              db_url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis is not reachable at {REDIS_URL}: {exc}")
    _run_job_through_worker(make_app, tmp_path, db_url, jobs="redis", redis_url=REDIS_URL)


job_plugin = JobPlugin()  # what the test entry point "remember" names


def test_jobs_declared_by_disabled_plugins_do_not_exist(make_app: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    from core import plugins

    # Installed like any plugin distribution: an entry point in the loket.plugins group.
    remember = importlib.metadata.EntryPoint("remember", f"{__name__}:job_plugin",
                                             plugins.ENTRY_POINT_GROUP)
    installed = {**plugins.installed_plugins(), "remember": remember}
    monkeypatch.setattr(plugins, "installed_plugins", lambda: installed)
    enabled = make_app(plugins=["remember"])
    assert "tests.remember" in enabled.extensions["loket"].jobs.tasks
    disabled = make_app()
    assert "tests.remember" not in disabled.extensions["loket"].jobs.tasks
    assert "core.autoclose_resolved" in disabled.extensions["loket"].jobs.tasks


# -- Autoclose -------------------------------------------------------------------------------


def _resolved_ticket(subject: str, email: str) -> Ticket:
    ticket = svc.open_ticket(identity=svc.Identity(IdentityKind.EMAIL, email, email=email),
                             subject=subject, text="It works now, thanks.")
    return svc.change_status(ticket, Status.RESOLVED, svc.SYSTEM)


def _resolved_days_ago(ticket: Ticket, days: float) -> None:
    # Test set-up only: the services stamp resolved_at with the current time.
    Ticket.update(resolved_at=utcnow() - dt.timedelta(days=days)).where(
        Ticket.id == ticket.id).execute()


def test_autoclose_closes_only_tickets_resolved_long_ago(make_app: Any) -> None:
    app = make_app(autoclose_days=7)
    with app.app_context(), db.connection():
        old = _resolved_ticket("Old and solved", "old@example.com")
        recent = _resolved_ticket("Solved yesterday", "new@example.com")
        waiting = svc.open_ticket(identity=svc.Identity(IdentityKind.EMAIL, "w@example.com"),
                                  subject="Still open", text="Hello?")
        _resolved_days_ago(old, 8)
        _resolved_days_ago(recent, 1)
        Ticket.update(updated_at=utcnow() - dt.timedelta(days=30)).where(
            Ticket.id == waiting.id).execute()

    # Through the periodic task itself: it brings its own app context and connection.
    app.extensions["loket"].jobs.tasks["core.autoclose_resolved"].call_local()

    with app.app_context(), db.connection():
        statuses = {t.subject: t.status for t in Ticket.select()}
        assert statuses == {"Old and solved": Status.CLOSED, "Solved yesterday": Status.RESOLVED,
                            "Still open": Status.NEW}
        event = TicketEvent.get((TicketEvent.ticket == old.id) & (TicketEvent.kind == "status")
                                & (TicketEvent.new_value == Status.CLOSED))
        assert (event.old_value, event.actor_kind) == (Status.RESOLVED, "system")
        assert Ticket.get_by_id(old.id).closed_at is not None
        assert close_stale_resolved() == 0  # nothing left to do


def test_autoclose_can_be_switched_off(make_app: Any) -> None:
    app = make_app(autoclose_days=0)
    with app.app_context(), db.connection():
        ticket = _resolved_ticket("Old and solved", "old@example.com")
        _resolved_days_ago(ticket, 400)
        assert close_stale_resolved() == 0
        assert Ticket.get_by_id(ticket.id).status == Status.RESOLVED


def test_autoclose_uses_the_given_clock(make_app: Any) -> None:
    app = make_app(autoclose_days=7)
    with app.app_context(), db.connection():
        ticket = _resolved_ticket("Solved today", "t@example.com")
        assert close_stale_resolved(now=utcnow() + dt.timedelta(days=6)) == 0
        assert close_stale_resolved(now=utcnow() + dt.timedelta(days=8)) == 1
        assert Ticket.get_by_id(ticket.id).status == Status.CLOSED
