"""A gunicorn worker compiles the templates before its first request (core.serving.warm)."""

from __future__ import annotations

import gc
import importlib.util
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from core.serving import warm

REPO = Path(__file__).resolve().parent.parent


def _compiled(app: Any) -> set[str]:
    return {template.name for template in app.jinja_env.cache.values()}


def test_warm_compiles_the_console_and_help_center_templates(make_app: Any) -> None:
    app = make_app(plugins=["knowledge_base", "livechat"])
    assert "admin/index.html" not in _compiled(app)
    try:
        count = warm(app)
        compiled = _compiled(app)
        # The pages a first customer or agent would otherwise wait for.
        for name in ("admin/index.html", "loket_admin/ticket_list.html", "loket/tracking.html"):
            assert name in compiled, name
        assert count == len([n for n in app.jinja_env.list_templates()
                             if n.endswith((".html", ".txt", ".xml"))])
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_a_broken_template_is_logged_and_the_rest_still_compile(make_app: Any, tmp_path: Path,
                                                                 caplog: Any) -> None:
    from jinja2 import ChoiceLoader, DictLoader

    app = make_app()
    app.jinja_loader  # noqa: B018 - built lazily
    app.jinja_env.loader = ChoiceLoader([DictLoader({"broken.html": "{% if %}"}),
                                         app.jinja_env.loader])
    try:
        warm(app)
    finally:
        gc.unfreeze()
    assert "broken.html does not compile" in caplog.text
    assert "admin/index.html" in _compiled(app)


def test_gunicorn_conf_warms_each_worker_after_loading_the_app(make_app: Any) -> None:
    spec = importlib.util.spec_from_file_location("loket_gunicorn_conf", REPO / "gunicorn.conf.py")
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    app = make_app()
    try:
        conf.post_worker_init(SimpleNamespace(wsgi=app))
    finally:
        gc.unfreeze()
    assert "admin/index.html" in _compiled(app)
