"""Contact identities in the console go through the contact service, as a channel's would."""

from __future__ import annotations

from typing import Any

from core.models import ContactIdentity

from .test_admin_helpers import csrf_token, new_ticket, sign_in


def _identities(contact: Any) -> list[tuple[str, str]]:
    return [(i.kind, i.value) for i in ContactIdentity.select().where(
        ContactIdentity.contact == contact).order_by(ContactIdentity.id)]


def test_admin_adds_an_identity_normalised_with_its_hook(desk: Any, client: Any,
                                                         spy: Any) -> None:
    contact = new_ticket(desk.login, email="ana@example.test").contact
    other = new_ticket(desk.login, email="bob@example.test").contact
    sign_in(client, "admin@desk.test")
    page = client.get(f"/admin/contacts/edit/?id={contact.id}").get_data(as_text=True)
    assert "ana@example.test" in page and "Add identity" in page
    token = csrf_token(client, f"/admin/contacts/edit/?id={contact.id}")
    added = client.post("/admin/contacts/identity/", data={
        "csrf_token": token, "contact": contact.id, "kind": "email",
        "value": "  Ana.Work@Example.TEST "})
    assert added.status_code == 302
    assert _identities(contact) == [("email", "ana@example.test"),
                                    ("email", "ana.work@example.test")]
    assert ("email", "ana.work@example.test") in [
        (c["kind"], c["value"]) for c in spy.of("contact_identified")]
    # Someone else's address is refused, not moved; nonsense is refused too.
    for value in ("bob@example.test", "not an address"):
        client.post("/admin/contacts/identity/", data={
            "csrf_token": token, "contact": contact.id, "kind": "email", "value": value})
    assert len(_identities(contact)) == 2
    assert _identities(other) == [("email", "bob@example.test")]


def test_identity_form_needs_csrf_and_an_admin(desk: Any, client: Any) -> None:
    contact = new_ticket(desk.login, email="ana@example.test").contact
    sign_in(client, "admin@desk.test")
    assert client.post("/admin/contacts/identity/", data={
        "contact": contact.id, "kind": "email", "value": "x@example.test"}).status_code == 400
    agent = client.application.test_client()
    sign_in(agent, "agent@desk.test")
    assert agent.post("/admin/contacts/identity/", data={
        "csrf_token": csrf_token(agent, "/admin/profile/"), "contact": contact.id,
        "kind": "email", "value": "x@example.test"}).status_code == 403
    assert len(_identities(contact)) == 1
