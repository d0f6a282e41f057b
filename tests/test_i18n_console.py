"""Admins translate the desk's set-up in the console; customers read it at once."""

from __future__ import annotations

import re
from typing import Any

from core.models import CategoryField, FieldKind, Translation

from .test_admin_helpers import post, sign_in


def test_an_admin_translates_a_category_and_the_help_center_shows_it(
        desk: Any, client: Any) -> None:
    sign_in(client, "admin@desk.test")
    index = client.get("/admin/translations/").get_data(as_text=True)
    assert "Registration and login" in index and "Form questions" in index
    url = f"/admin/translations/Category/{desk.login.id}"
    page = client.get(url).get_data(as_text=True)
    assert "Name — Bahasa Indonesia" in page and "Description — Filipino" in page
    answer = post(client, url, {"name__id": "Pendaftaran dan masuk",
                                "name__fil": "Registration at pag-login",
                                "description__id": "", "description__fil": ""},
                  token_from=url)
    assert answer.status_code == 302
    rows = {(t.field, t.language): t.text for t in Translation.select()}
    assert rows == {("name", "id"): "Pendaftaran dan masuk",
                    ("name", "fil"): "Registration at pag-login"}
    assert "Pendaftaran dan masuk" in client.get("/help/member/?lang=id").get_data(as_text=True)

    # An emptied box removes the translation: customers read the original again.
    post(client, url, {"name__id": "", "name__fil": "Registration at pag-login"},
         token_from=url)
    assert {(t.field, t.language) for t in Translation.select()} == {("name", "fil")}
    assert "Registration and login" in client.get("/help/member/?lang=id").get_data(
        as_text=True)


def test_choices_need_one_line_per_choice(desk: Any, client: Any) -> None:
    field = CategoryField.create(category=desk.login, name="device", label="Device",
                                 kind=FieldKind.CHOICE, choices="Phone\nComputer", position=2)
    sign_in(client, "admin@desk.test")
    url = f"/admin/translations/CategoryField/{field.id}"
    answer = post(client, url, {"choices__id": "Ponsel", "label__id": "Perangkat"},
                  token_from=url)
    assert answer.status_code == 200
    assert "Give 2 lines, one per choice" in answer.get_data(as_text=True)
    assert not Translation.select().exists()


def test_only_admins_translate_and_only_with_the_forms_token(desk: Any, client: Any) -> None:
    url = f"/admin/translations/UserType/{desk.member.id}"
    assert client.get(url).status_code == 302  # to the sign-in
    sign_in(client, "agent@desk.test")
    assert client.get(url).status_code == 403
    client.get("/admin/logout")
    sign_in(client, "admin@desk.test")
    assert client.post(url, data={"name__id": "Anggota"}).status_code == 400  # no CSRF token
    assert not Translation.select().exists()
    assert client.get("/admin/translations/Staff/1").status_code == 404
    page = client.get(url).get_data(as_text=True)
    assert re.search(r"Original: Member", page)
