"""The environment a worker or server process started by a test needs to reach the test's desk."""

from __future__ import annotations

import os
import time
from typing import Any


def desk_env(state: Any, db_url: str, **settings: str) -> dict[str, str]:
    """This process's environment without LOKET_* variables, plus the app's own desk.

    ``settings`` are further ``LOKET_*`` values, by their variable names.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOKET_")}
    env.update({
        "LOKET_INSTANCE_PATH": state.config["instance_path"],
        "LOKET_DATABASE_URL": db_url,
        "LOKET_SECRET_KEY": "test-secret-key",
        "LOKET_PLUGINS": "",
        "LOKET_JOBS": state.config["jobs"],
        "LOKET_REDIS_URL": state.config["redis_url"],
        "LOKET_JOBS_NAME": state.config["jobs_name"],
        "LOKET_PUBLIC_URL": state.config["public_url"],
    })
    env.update(settings)
    return env


def wait_for(check: Any, timeout: float, what: str, log_path: Any) -> None:
    """Poll ``check()`` until it is true; after ``timeout`` seconds fail with the process log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}:\n{log_path.read_text()}")
