"""Helpers for the admin console tests: CSRF tokens, signing in, opening tickets."""

from __future__ import annotations

import re
from typing import Any

from core.models import Category, IdentityKind, Ticket
from core.services.tickets import Identity, open_ticket

from .factories import PASSWORD

TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|'
                   r'name="csrf_token" value="([^"]+)"')


def csrf_token(client: Any, url: str = "/admin/login") -> str:
    """A CSRF token for this client's session, read from a page that has a form."""
    response = client.get(url)
    if response.status_code == 302 and url == "/admin/login":  # already signed in
        response = client.get(url := "/admin/profile/")
    html = response.get_data(as_text=True)
    match = TOKEN.search(html)
    assert match, f"no CSRF token on {url}"
    return match.group(1) or match.group(2)


def sign_in(client: Any, email: str, password: str = PASSWORD, next_url: str = "") -> Any:
    token = csrf_token(client)
    return client.post("/admin/login", data={"csrf_token": token, "email": email,
                                             "password": password, "next": next_url})


def post(client: Any, url: str, data: dict[str, Any] | None = None,
         token_from: str = "/admin/profile/") -> Any:
    """POST a console form with a valid CSRF token (the client must be signed in)."""
    payload = dict(data or {})
    payload.setdefault("csrf_token", csrf_token(client, token_from))
    return client.post(url, data=payload)


def new_ticket(category: Category | None, email: str = "cust@example.test",
               subject: str = "Cannot sign in", text: str = "It says my password is wrong",
               channel: str = "web") -> Ticket:
    return open_ticket(identity=Identity(IdentityKind.EMAIL, email, name="Cora Customer"),
                       subject=subject, text=text, category=category, channel=channel)

