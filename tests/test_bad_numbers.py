"""Over-large, negative and non-numeric values anywhere a number goes answer 400 or 404, never 5xx.

The walk covers every rule of ``app.url_map`` (help center, API, console, plugins), anonymously
and signed in as an admin, on the test database (SQLite or PostgreSQL: PostgreSQL refuses
out-of-range integers where SQLite does not).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from core import db as core_db
from core.models import Role
from core.numbers import MAX_ID, parse_id, parse_page
from core.passwords import new_api_token

from .factories import PASSWORD, build_desk
from .test_admin_helpers import new_ticket

PLUGINS = ["email_intake", "billing_desk", "social", "livechat", "knowledge_base"]
HUGE = "99999999999999999999"
BAD_NUMBERS = [HUGE, str(MAX_ID + 1), "999999999999999", "-1", "abc", "1e9", "0"]
CRLF = "%0d%0aSet-Cookie:%20x=1"


def test_parse_id_takes_only_ids_the_database_can_hold() -> None:
    assert parse_id("42") == 42
    assert parse_id(7) == 7
    assert parse_id(str(MAX_ID)) == MAX_ID
    for bad in (str(MAX_ID + 1), HUGE, "-1", "0", "", "abc", "１２", " 1", None, True, 1.5):
        assert parse_id(bad) is None, bad


def test_parse_page_refuses_negative_and_absurd_pages() -> None:
    assert parse_page(None) == 0
    assert parse_page("3") == 3
    for bad in ("-1", HUGE, "999999999999999", "x"):
        assert parse_page(bad) is None, bad


@pytest.fixture
def walk(make_app: Any) -> Any:
    app = make_app(plugins=PLUGINS)
    app.config["WTF_CSRF_ENABLED"] = False  # the walk is about numbers, not tokens
    app.config["PROPAGATE_EXCEPTIONS"] = False  # a failure is counted as its 500, not raised
    with app.app_context(), core_db.connection():
        desk = build_desk()
        ticket = new_ticket(desk.login)
        token, hashed = new_api_token()
        desk.admin.api_token_hash = hashed
        desk.admin.save()
        assert desk.admin.role == Role.ADMIN
        facts = {"number": ticket.id, "key": ticket.access_key, "token": token}
    return app, facts


def _fill(rule: Any, facts: dict[str, Any], bad: str | None, target: str | None) -> str:
    """The rule's URL with ``bad`` in argument ``target`` and valid values elsewhere."""
    marker = 7654321  # built through the rule's converters, then swapped for the bad value
    values: dict[str, Any] = {}
    for name in rule.arguments:
        if name == target:
            values[name] = marker
        elif name == "key":
            values[name] = facts["key"]
        elif name == "filename":
            values[name] = "loket.css"
        elif name in ("number", "id"):
            values[name] = facts["number"]
        else:
            values[name] = 1
    url = rule.build(values, append_unknown=False)[1]
    return url.replace(str(marker), quote(bad or "", safe="")) if target else url


QUERY_ABUSE = [
    *(f"page={n}" for n in BAD_NUMBERS),
    *(f"page_size={n}" for n in BAD_NUMBERS),
    *(f"id={n}" for n in BAD_NUMBERS),
    "&".join(f"flt{i}_{i}={HUGE}" for i in range(40)),
    "&".join(f"flt{i}_{i}=-1" for i in range(40)),
    f"sort={HUGE}", "sort=-1", f"limit={HUGE}", f"number={HUGE}", f"canned={HUGE}",
    f"url={CRLF}", f"id=1&url={CRLF}",
]
FORM_ABUSE = [
    {"assignee": HUGE}, {"assignee": "-1"}, {"department": HUGE}, {"department": "-1"},
    {"rowid": HUGE, "action": "delete"}, {"rowid": [HUGE, "-1"], "action": "close"},
    {"id": HUGE}, {"id": "-1"}, {"id": HUGE, "url": "/admin/\r\nX: y"},
    {"contact": [HUGE, "1"], "keep": HUGE}, {"status": HUGE}, {"priority": HUGE},
    {"list_form_pk": HUGE, "name": "x"}, {"list_form_pk": "-1", "active": "y"},
]
JSON_ABUSE = [{"assignee": int(HUGE)}, {"assignee": -1}, {"department": HUGE},
              {"category": HUGE}, {"user_type": HUGE}]


def _requests(app: Any, facts: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for rule in app.url_map.iter_rules():
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        if rule.endpoint.startswith("loket_auth."):
            # Signing out (or failing to sign in five times) would end the admin's walk.
            methods = [m for m in methods if m == "GET"]
        numeric = [name for name in rule.arguments if name not in ("filename", "key")]
        urls = [_fill(rule, facts, None, None)]
        urls += [_fill(rule, facts, bad, name) for name in numeric for bad in BAD_NUMBERS]
        for method in methods:
            for url in urls:
                found.append((method, url, {}))
            plain = urls[0]
            if method == "GET":
                found += [(method, f"{plain}?{query}", {}) for query in QUERY_ABUSE]
            elif plain.startswith("/api/"):
                found += [(method, plain, {"json": body}) for body in JSON_ABUSE]
            else:
                found += [(method, plain, {"data": form}) for form in FORM_ABUSE]
    return found


def _signed_in_admin(app: Any) -> Any:
    client = app.test_client()
    response = client.post("/admin/login", data={"email": "admin@desk.test",
                                                 "password": PASSWORD})
    assert response.status_code == 302
    return client


def _walk(client: Any, requests: list[tuple[str, str, dict[str, Any]]],
          headers: dict[str, str]) -> list[str]:
    failures = []
    for method, url, extra in requests:
        response = client.open(url, method=method, headers=headers, **extra)
        if response.status_code >= 500:
            failures.append(f"{method} {url} {extra} -> {response.status_code}")
    return failures


def test_no_number_anywhere_makes_a_server_error(walk: Any) -> None:
    app, facts = walk
    requests = _requests(app, facts)
    assert len(requests) > 500  # the walk really covers the map
    failures = _walk(app.test_client(), requests, {})
    admin = _signed_in_admin(app)
    failures += _walk(admin, requests, {"Authorization": f"Bearer {facts['token']}"})
    assert not failures, "\n".join(failures[:40]) + f"\n({len(failures)} in all)"


def test_an_over_large_tracking_number_is_not_found(walk: Any) -> None:
    app, _facts = walk
    client = app.test_client()
    assert client.get(f"/t/{HUGE}/abc").status_code == 404
    assert client.get(f"/t/{MAX_ID + 1}/abc").status_code == 404


def test_a_console_list_refuses_an_absurd_page(walk: Any) -> None:
    app, _facts = walk
    admin = _signed_in_admin(app)
    for view in ("staff", "contacts", "categories", "canned_replies", "departments"):
        assert admin.get(f"/admin/{view}/?page=999999999999999").status_code in (400, 404)
        assert admin.get(f"/admin/{view}/?page=-1").status_code in (400, 404)
        assert admin.get(f"/admin/{view}/?page=1").status_code == 200


def test_a_return_address_with_a_line_break_is_refused(walk: Any) -> None:
    app, _facts = walk
    admin = _signed_in_admin(app)
    response = admin.get(f"/admin/staff/edit/?id=1&url={CRLF}")
    assert response.status_code == 400
    assert "Set-Cookie" not in str(response.headers.get("Location", ""))


def test_the_numbers_the_issue_named_answer_400_or_404(walk: Any) -> None:
    app, facts = walk
    admin = _signed_in_admin(app)
    number = facts["number"]
    refused = {
        "filter": admin.get(f"/admin/tickets/?flt0_4={HUGE}"),
        "assignee": admin.post(f"/admin/ticket/{number}/assign", data={"assignee": HUGE}),
        "department": admin.post(f"/admin/ticket/{number}/department",
                                 data={"department": HUGE}),
        "rowid": admin.post("/admin/contacts/action/", data={"rowid": HUGE, "action": "delete"}),
        "ticket page": admin.get(f"/admin/ticket/{HUGE}/"),
        "tracking": app.test_client().get(f"/t/{HUGE}/abc"),
        "page": admin.get("/admin/departments/?page=-1"),
    }
    assert {name: r.status_code for name, r in refused.items()
            if r.status_code not in (400, 404)} == {}
