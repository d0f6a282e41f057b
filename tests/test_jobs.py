"""The job queue for real: a plugin's job run by a huey consumer process, retries, and autoclose."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core import db, hookimpl
from core.builtin import close_stale_resolved
from core.models import IdentityKind, Status, Ticket, TicketEvent, UserType, utcnow
from core.services import tickets as svc
from tests.processes import desk_env

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

    env = desk_env(state, db_url)
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
    # A queue of its own: another test run on the same Redis must not take this job.
    _run_job_through_worker(make_app, tmp_path, db_url, jobs="redis", redis_url=REDIS_URL,
                            jobs_name=f"loket-test-{uuid.uuid4().hex[:8]}")


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


# -- Periodic tasks: never two runs at once, retried, a dead holder does not keep the lock ----

import threading  # noqa: E402  (grouped with the tests that use it)

RUNS: list[str] = []
RUNNING = threading.Event()
FINISH = threading.Event()


class PeriodicPlugin:
    """A periodic task that waits until told to finish, and one that fails on its first run."""

    @hookimpl
    def register_jobs(self, jobs: Any) -> None:
        from core.jobs import crontab

        @jobs.periodic(crontab(minute="*/5"), name="tests.slow_periodic")
        def slow_periodic() -> str:
            RUNS.append("slow")
            RUNNING.set()
            assert FINISH.wait(20), "the test never let the run finish"
            return "done"

        @jobs.periodic(crontab(minute="*/5"), name="tests.flaky_periodic", retry_delay=1)
        def flaky_periodic() -> None:
            RUNS.append("flaky")
            if RUNS.count("flaky") == 1:
                raise RuntimeError("the first run fails on purpose")


def _redis_or_skip() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis is not reachable at {REDIS_URL}: {exc}")


JOB_BACKENDS = [pytest.param({"jobs": "sqlite"}, id="sqlite"),
                pytest.param({"jobs": "immediate"}, id="memory"),
                pytest.param({"jobs": "redis", "redis_url": REDIS_URL}, id="redis",
                             marks=pytest.mark.redis)]


@pytest.fixture
def periodic_app(make_app: Any, request: pytest.FixtureRequest) -> Any:
    settings = request.param
    if settings["jobs"] == "redis":
        _redis_or_skip()
    RUNS.clear()
    RUNNING.clear()
    FINISH.clear()
    app = make_app(extra_plugins=(PeriodicPlugin(),), **settings)
    yield app
    FINISH.set()


@pytest.mark.parametrize("periodic_app", JOB_BACKENDS, indirect=True)
def test_a_periodic_run_that_finds_the_last_one_still_going_is_skipped(periodic_app: Any) -> None:
    task = periodic_app.extensions["loket"].jobs.tasks["tests.slow_periodic"]
    results: list[Any] = []
    first = threading.Thread(target=lambda: results.append(task.call_local()))
    first.start()
    try:
        assert RUNNING.wait(10)
        assert task.call_local() is None  # skipped, not failed, not waiting
        assert RUNS == ["slow"]
    finally:
        FINISH.set()
        first.join(10)
    assert results == ["done"]
    assert task.call_local() == "done"  # the lock went with the run
    assert RUNS == ["slow", "slow"]


@pytest.mark.parametrize("periodic_app", JOB_BACKENDS[:1], indirect=True)
def test_a_periodic_run_that_fails_is_retried(periodic_app: Any) -> None:
    jobs = periodic_app.extensions["loket"].jobs
    huey = jobs.huey
    huey.flush()
    huey.execute(jobs.tasks["tests.flaky_periodic"].s())
    assert RUNS == ["flaky"]
    (retry,) = huey.scheduled()  # the failure went back on the queue, a little later
    assert retry.name == "tests.flaky_periodic" and retry.retries == 2
    assert huey.read_schedule(retry.eta) == [retry]  # as the consumer takes it when due
    huey.execute(retry, timestamp=retry.eta)
    assert RUNS == ["flaky", "flaky"]
    assert huey.scheduled() == [] and huey.pending_count() == 0
    # core's own periodic task is declared the same way
    autoclose = jobs.tasks["core.autoclose_resolved"].s()
    assert autoclose.retries == 3


def hold_lock_main(name: str) -> None:
    """A worker that takes a periodic task's lock and then hangs (until it is killed)."""
    from core import create_app

    jobs = create_app().extensions["loket"].jobs
    with jobs.run_lock(name) as acquired:
        print("held" if acquired else "busy", flush=True)
        time.sleep(60)


def test_a_killed_worker_does_not_keep_the_lock_on_sqlite(make_app: Any, db_url: str) -> None:
    app = make_app(jobs="sqlite")
    state = app.extensions["loket"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOKET_")}
    env.update({"LOKET_INSTANCE_PATH": state.config["instance_path"],
                "LOKET_DATABASE_URL": db_url, "LOKET_SECRET_KEY": "test-secret-key",
                "LOKET_PLUGINS": "", "LOKET_JOBS": "sqlite"})
    proc = subprocess.Popen(
        [sys.executable, "-c",
         "from tests.test_jobs import hold_lock_main; hold_lock_main('core.autoclose_resolved')"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"held"
        with state.jobs.run_lock("core.autoclose_resolved") as acquired:
            assert not acquired  # another process holds it
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        with state.jobs.run_lock("core.autoclose_resolved") as acquired:
            assert acquired  # the kernel let go with the process
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.redis
def test_a_killed_worker_does_not_keep_the_lock_on_redis(make_app: Any) -> None:
    _redis_or_skip()
    app = make_app(jobs="redis", redis_url=REDIS_URL,
                   jobs_name=f"loket-test-{uuid.uuid4().hex[:8]}")
    jobs = app.extensions["loket"].jobs
    conn = jobs.huey.storage.conn
    key = f"{jobs.huey.name}.run-lock.tests.expiring"
    conn.delete(key)
    with jobs.run_lock("tests.expiring", seconds=1) as acquired:
        assert acquired
        assert 0 < conn.pttl(key) <= 1000  # a holder killed now loses it within a second
        with jobs.run_lock("tests.expiring", seconds=1) as second:
            assert not second
        time.sleep(1.2)  # bounded: the lock's expiry, as a killed worker's would run out
        with jobs.run_lock("tests.expiring", seconds=1) as after_expiry:
            assert after_expiry
    assert conn.get(key) is None


def test_autoclose_run_twice_at_once_closes_each_ticket_once(make_app: Any) -> None:
    app = make_app(autoclose_days=7)
    with app.app_context(), db.connection():
        tickets = [_resolved_ticket(f"Solved {n}", f"c{n}@example.com") for n in range(12)]
        for ticket in tickets:
            _resolved_days_ago(ticket, 8)
        answered = tickets[0]
        # The customer wrote again after the list was read: autoclose must leave it open.
        svc.add_customer_reply(answered, "Actually it broke again.")

    counts: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with app.app_context(), db.connection():
                counts.append(close_stale_resolved())
        except BaseException as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    assert sum(counts) == 11
    with app.app_context(), db.connection():
        assert close_stale_resolved() == 0
        assert Ticket.get_by_id(answered.id).status == Status.OPEN
        closings = (TicketEvent.select().where((TicketEvent.kind == "status")
                                               & (TicketEvent.new_value == Status.CLOSED)))
        assert closings.count() == 11
