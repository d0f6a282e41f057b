"""Old searches and article views are forgotten after the days kept: the job, the command."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from core import db as core_db
from core.cli import main
from plugins.knowledge_base import demo
from plugins.knowledge_base.models import (
    Article,
    Search,
    SuggestionShown,
    View,
    VisitorTicket,
    Vote,
    utcnow,
)
from plugins.knowledge_base.retention import prune

from .factories import build_desk


def _history(old: int, new: int) -> None:
    """``old`` rows 400 days back and ``new`` rows from yesterday in each history table."""
    from core.models import Ticket

    article = Article.select().first()
    tickets = list(Ticket.select().limit(1))
    now = utcnow()
    for age, count in ((dt.timedelta(days=400), old), (dt.timedelta(days=1), new)):
        for n in range(count):
            at = now - age
            Search.create(query=f"q{n}", language="en", results=0, created_at=at)
            View.create(article=article, visitor=f"v{age.days}-{n}", source="search",
                        created_at=at)
            SuggestionShown.create(article=article, visitor=f"v{age.days}-{n}", created_at=at)
            Vote.create(article=article, visitor=f"v{age.days}-{n}", helpful=True, created_at=at)
    if tickets:  # one old visitor ticket (a ticket carries at most one)
        VisitorTicket.create(visitor="v400-0", ticket=tickets[0], created_at=now - dt.timedelta(
            days=400))


def _counts() -> dict[str, int]:
    return {model.__name__: model.select().count()
            for model in (Search, View, SuggestionShown, VisitorTicket, Vote)}


@pytest.fixture
def kb(make_app: Any) -> Any:
    app = make_app(plugins=["knowledge_base"])
    with app.test_request_context("/"), core_db.connection():
        build_desk()
        demo.load()
        yield app


def test_rows_older_than_the_days_kept_go_in_batches_and_votes_stay(kb):
    _history(old=5, new=3)
    seen: list[tuple[str, int]] = []
    deleted = prune(30, batch=2, progress=lambda name, count: seen.append((name, count)))
    assert deleted == {"searches": 5, "article views": 5, "suggestions shown": 5,
                       "visitors' tickets": 0}
    assert ("searches", 2) in seen and ("searches", 4) in seen and ("searches", 5) in seen
    assert _counts() == {"Search": 3, "View": 3, "SuggestionShown": 3, "VisitorTicket": 0,
                         "Vote": 8}
    assert prune(30) == dict.fromkeys(deleted, 0)  # a second run finds nothing: idempotent


def test_zero_days_keeps_everything(kb):
    _history(old=2, new=1)
    before = _counts()
    assert sum(prune(0).values()) == 0
    assert _counts() == before


def test_the_nightly_job_uses_the_history_days_setting(make_app):
    app = make_app(plugins=["knowledge_base"], **{"knowledge_base.history_days": "500"})
    with app.test_request_context("/"), core_db.connection():
        build_desk()
        demo.load()
        _history(old=2, new=1)
    task = app.extensions["loket"].jobs.tasks["knowledge_base.prune_history"]
    task.call_local()  # 500 days: the 400-day-old rows stay
    with app.app_context(), core_db.connection():
        assert Search.select().count() == 3
    app.extensions["loket"].config.values["knowledge_base.history_days"] = 90
    task.call_local()
    with app.app_context(), core_db.connection():
        assert Search.select().count() == 1 and View.select().count() == 1


def test_the_history_days_setting_is_checked():
    from plugins.knowledge_base import _as_days

    assert _as_days("0") == 0 and _as_days("30") == 30
    with pytest.raises(ValueError):
        _as_days("-1")


def test_loket_kb_prune_reports_progress_and_totals(tmp_path: Path, db_url: str,
                                                     monkeypatch: pytest.MonkeyPatch):
    for name in list(os.environ):
        if name.startswith("LOKET_") and name != "LOKET_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    for name, value in {"LOKET_INSTANCE_PATH": str(tmp_path / "instance"),
                        "LOKET_DATABASE_URL": db_url, "LOKET_JOBS": "immediate",
                        "LOKET_PLUGINS": "knowledge_base"}.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"], catch_exceptions=False).exit_code == 0
    from core import create_app

    app = create_app()
    with app.test_request_context("/"), core_db.connection():
        build_desk()
        demo.load()
        _history(old=3, new=2)
    app.extensions["loket"].database.close()
    result = runner.invoke(main, ["kb", "prune", "--days", "30", "--batch", "2"],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "searches: 2 deleted…" in result.output and "searches: 3 deleted…" in result.output
    assert ("Kept the last 30 days; deleted searches 3, article views 3, suggestions shown 3, "
            "visitors' tickets 0.") in result.output
    with app.app_context(), core_db.connection():
        assert Search.select().count() == 2
    monkeypatch.setenv("LOKET_KNOWLEDGE_BASE_HISTORY_DAYS", "0")
    result = runner.invoke(main, ["kb", "prune"], catch_exceptions=False)
    assert "kept for ever" in result.output
