"""The job queue: background work with retries and backoff, and periodic tasks.

Embedded default: huey on a SQLite file in the instance folder (no server).
With ``LOKET_REDIS_URL`` set: huey on Redis, so many workers on many hosts
share one queue. ``jobs = "immediate"`` runs each job inline (tests).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

from flask import Flask
from huey import Huey, MemoryHuey, RedisHuey, SqliteHuey, crontab

from . import db

log = logging.getLogger(__name__)

__all__ = ["JobQueue", "crontab", "build_huey", "OUTBOX_RELAY"]

# The outbox's relay (core.outbox): named here so that services can nudge it.
OUTBOX_RELAY = "core.outbox.relay"


def build_huey(config: Any, name: str | None = None) -> Huey:
    # The queue's name keys its data in Redis: desks sharing one Redis need their own.
    name = name or config.get("jobs_name") or "loket"
    mode = config["jobs"]
    if mode == "auto":
        mode = "redis" if config["redis_url"] else "sqlite"
    if mode == "immediate":
        huey = MemoryHuey(name, immediate=True)
    elif mode == "redis":
        if not config["redis_url"]:
            raise ValueError("LOKET_JOBS is redis but LOKET_REDIS_URL is empty")
        huey = RedisHuey(name, url=config["redis_url"])
    else:
        huey = SqliteHuey(name, filename=os.path.join(config["instance_path"], "jobs.db"))
    return huey


class JobQueue:
    """The app's queue. Plugins declare jobs on it in ``register_jobs``."""

    def __init__(self, app: Flask, huey: Huey):
        self.app = app
        self.huey = huey
        self.tasks: dict[str, Any] = {}
        self.relays: list[tuple[str, Callable[[int, int], int], int, float]] = []

    def _in_app(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            with self.app.app_context(), db.connection():
                return fn(*args, **kwargs)

        return run

    def task(self, name: str | None = None, *, retries: int = 5, retry_delay: int = 10,
             backoff: float = 2.0) -> Callable[[Callable[..., Any]], Any]:
        """Declare a job. Call the result to enqueue it; it runs in a worker.

        A job that raises is retried ``retries`` times, waiting ``retry_delay``
        seconds, then ``backoff`` times longer after each failure.
        """

        def decorate(fn: Callable[..., Any]) -> Any:
            job_name = name or f"{fn.__module__}.{fn.__qualname__}"
            wrapped = self.huey.task(retries=retries, retry_delay=retry_delay,
                                     retry_backoff=backoff, name=job_name)(self._in_app(fn))
            self.tasks[job_name] = wrapped
            return wrapped

        return decorate

    def periodic(self, schedule: Callable[..., bool], name: str | None = None, *,
                 retries: int = 3, retry_delay: int = 30,
                 lock_seconds: int = 600) -> Callable[[Callable[..., Any]], Any]:
        """Declare a periodic task; ``schedule`` is ``crontab(...)`` from this module.

        Runs never overlap: a run that finds the previous one still going is skipped
        (it returns None; the next run does the work). A run that raises is retried
        ``retries`` times, ``retry_delay`` seconds apart. The queue hands a job to a
        worker once, so a worker killed mid-run loses that run: a periodic task must
        re-derive its work from the database and be safe to run again.
        ``lock_seconds`` bounds how long a run may hold the lock on Redis (see
        ``run_lock``); keep it longer than a run takes.
        """

        def decorate(fn: Callable[..., Any]) -> Any:
            job_name = name or f"{fn.__module__}.{fn.__qualname__}"

            @functools.wraps(fn)
            def alone(*args: Any, **kwargs: Any) -> Any:
                with self.run_lock(job_name, lock_seconds) as acquired:
                    if not acquired:
                        log.info("%s: the previous run is still going; skipping this one",
                                 job_name)
                        return None
                    return fn(*args, **kwargs)

            wrapped = self.huey.periodic_task(schedule, retries=retries, retry_delay=retry_delay,
                                              name=job_name)(self._in_app(alone))
            self.tasks[job_name] = wrapped
            return wrapped

        return decorate

    def relay(self, fn: Callable[[int, int], int], *, name: str, threads: int = 1,
              idle_seconds: float = 1.0) -> None:
        """Run ``fn(shard, shards)`` over and over in ``threads`` threads of every worker.

        For work whose truth is in the database (the outbox): no job can be
        lost, because there is none. ``fn`` returns how much it did; after a
        pass that did nothing the thread waits ``idle_seconds``.
        """
        self.relays.append((name, fn, max(threads, 1), idle_seconds))

    def nudge(self, name: str) -> None:
        """New work for a relay. Inline job mode (tests, one process) runs one pass now;
        otherwise the workers' relay threads find it on their next poll."""
        if not self.huey.immediate:
            return
        for relay_name, fn, _threads, _idle in self.relays:
            if relay_name == name:
                fn(0, 1)

    def _run_relay(self, name: str, fn: Callable[[int, int], int], shard: int, shards: int,
                   idle_seconds: float, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                with self.app.app_context(), db.connection():
                    done = fn(shard, shards)
            except Exception:
                log.exception("%s failed; trying again shortly", name)
                done = 0
            if not done:
                stop.wait(idle_seconds)

    def run_lock(self, name: str, seconds: int = 600) -> AbstractContextManager[bool]:
        """Hold the run lock of job ``name`` if it is free; yields whether it was taken.

        The lock is the backend's own kind, so a killed worker never leaves it held
        for good: on SQLite (one host) it is a flock() on a file beside the queue,
        which the kernel drops when the holder dies; on Redis (many hosts) a key
        with an expiry of ``seconds``, which a dead holder's lock runs out of; in
        memory (immediate jobs, tests) a thread lock.
        """
        storage = self.huey.storage
        filename = getattr(storage, "filename", None)
        if isinstance(self.huey, RedisHuey):
            return _redis_lock(storage.conn, f"{self.huey.name}.run-lock.{name}", seconds)
        if filename:
            safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)
            return _file_lock(f"{filename}.{safe}.lock")
        with _memory_locks_guard:
            lock = _memory_locks.setdefault((id(self), name), threading.Lock())
        return _thread_lock(lock)

    def run_worker(self, workers: int = 2, periodic: bool = True) -> None:
        """Consume jobs and run the relays until stopped (``loket worker``)."""
        consumer = self.huey.create_consumer(workers=workers, worker_type="thread",
                                             periodic=periodic, check_worker_health=True)
        stop = threading.Event()
        running = []
        for name, fn, threads, idle in self.relays:
            for shard in range(threads):
                thread = threading.Thread(target=self._run_relay, name=f"{name}-{shard}",
                                          args=(name, fn, shard, threads, idle, stop),
                                          daemon=True)
                thread.start()
                running.append(thread)
        try:
            consumer.run()
        finally:
            # Let a send in progress finish, so its outcome is recorded.
            stop.set()
            for thread in running:
                thread.join(timeout=30)


@contextlib.contextmanager
def _file_lock(path: str) -> Iterator[bool]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# Delete the key only if it still holds this run's token: after an expiry another run owns it.
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end"


@contextlib.contextmanager
def _redis_lock(conn: Any, key: str, seconds: int) -> Iterator[bool]:
    token = secrets.token_hex(16)
    if not conn.set(key, token, nx=True, ex=max(int(seconds), 1)):
        yield False
        return
    try:
        yield True
    finally:
        conn.eval(_RELEASE, 1, key, token)


_memory_locks: dict[tuple[int, str], threading.Lock] = {}
_memory_locks_guard = threading.Lock()


@contextlib.contextmanager
def _thread_lock(lock: threading.Lock) -> Iterator[bool]:
    if not lock.acquire(blocking=False):
        yield False
        return
    try:
        yield True
    finally:
        lock.release()
