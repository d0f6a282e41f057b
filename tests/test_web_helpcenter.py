"""The public help center: user types, the category tree, the ticket form and what it creates."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest

from core import db as core_db
from core import hookimpl
from core.hookspecs import ContactOption, Notice
from core.models import (
    Attachment,
    Category,
    CategoryField,
    Contact,
    FieldKind,
    Message,
    Priority,
    Status,
    Ticket,
    UserType,
)

from .samples import EXE, HTML, PDF, PNG


def counts() -> tuple[int, int, int, int]:
    return (Ticket.select().count(), Message.select().count(), Attachment.select().count(),
            Contact.select().count())


def form_data(**extra: Any) -> dict[str, Any]:
    data = {"name": "Rina Customer", "email": "Rina@Example.com", "subject": "Cannot log in",
            "description": "I reset my password twice.\nStill no luck."}
    data.update(extra)
    return data


def upload(content: bytes, name: str) -> tuple[io.BytesIO, str]:
    return (io.BytesIO(content), name)


def post_ticket(client: Any, path: str, data: dict[str, Any]) -> Any:
    return client.post(path, data=data, content_type="multipart/form-data")


LOGIN_FORM = "/help/member/registration-and-login/new"
REFUNDS_FORM = "/help/member/refunds/new"


# -- Home and categories ---------------------------------------------------------------------


def test_home_lists_active_user_types_in_order(built: Any, site: Any) -> None:
    UserType.create(slug="model", name="Independent model", position=0)
    UserType.create(slug="retired", name="Retired type", position=3, active=False)
    page = site.get("/")
    assert page.status_code == 200
    text = page.text
    assert text.index("Independent model") < text.index("Member") < text.index("Studio")
    assert "Retired type" not in text
    assert 'href="/help/member/"' in text
    assert 'href="/static/loket/loket.css"' in text
    assert site.get("/static/loket/loket.css").status_code == 200


def test_categories_tree_is_ordered_and_hides_hidden_branches(built: Any, site: Any) -> None:
    member = built.member
    Category.create(user_type=member, slug="zz-first", name="Shown first", position=0)
    hidden = Category.create(user_type=member, slug="secret", name="Hidden parent", position=3,
                             visible=False)
    Category.create(user_type=member, parent=hidden, slug="under-hidden", name="Under hidden")
    Category.create(user_type=built.payments.user_type, parent=built.payments, slug="chargebacks",
                    name="Chargebacks", position=0)
    page = site.get("/help/member/")
    assert page.status_code == 200
    text = page.text
    order = ["Shown first", "Registration and login", "Payments and subscriptions",
             "Chargebacks", "Refunds"]
    positions = [text.index(name) for name in order]
    assert positions == sorted(positions)
    # Children are nested inside their parent's list item.
    payments_item = text[text.index("Payments and subscriptions"):]
    assert payments_item.index('class="subcategories"') < payments_item.index("Refunds")
    assert "Hidden parent" not in text and "Under hidden" not in text
    assert "Account" not in text  # the studio's category
    assert f'href="{REFUNDS_FORM}"' in text


def test_unknown_or_inactive_user_type_is_404(built: Any, site: Any) -> None:
    UserType.update(active=False).where(UserType.slug == "studio").execute()
    assert site.get("/help/nobody/").status_code == 404
    assert site.get("/help/studio/").status_code == 404
    assert site.get("/help/studio/account/new").status_code == 404


def test_user_type_without_categories_still_renders(built: Any, site: Any) -> None:
    UserType.create(slug="empty", name="Empty type", position=5)
    page = site.get("/help/empty/")
    assert page.status_code == 200
    assert "There are no topics here yet" in page.text


def test_home_without_user_types(web: Any, site: Any) -> None:
    page = site.get("/")
    assert page.status_code == 200
    assert "not open yet" in page.text


# -- The ticket form -------------------------------------------------------------------------


def add_questions(category: Category) -> None:
    CategoryField.create(category=category, name="transaction_id", label="Transaction id",
                         kind=FieldKind.TEXT, required=True, position=2,
                         help_text="It starts with TX.")
    CategoryField.create(category=category, name="incident_at", label="Time of incident",
                         kind=FieldKind.DATETIME, position=3)
    CategoryField.create(category=category, name="billing_center", label="Billing center",
                         kind=FieldKind.CHOICE, required=True, choices="Epoch\nCCBill\n\n",
                         position=1)
    CategoryField.create(category=category, name="screenshot", label="Screenshot",
                         kind=FieldKind.FILE, position=4)
    CategoryField.create(category=category, name="notes", label="Anything else",
                         kind=FieldKind.TEXTAREA, position=5)
    CategoryField.create(category=category, name="email", label="Account email",
                         kind=FieldKind.EMAIL, position=6)


def test_form_shows_the_category_questions_in_order(built: Any, site: Any) -> None:
    add_questions(built.refunds)
    page = site.get(REFUNDS_FORM)
    assert page.status_code == 200
    text = page.text
    labels = ["Billing center", "Transaction id", "Time of incident", "Screenshot",
              "Anything else", "Account email"]
    positions = [text.index(label) for label in labels]
    assert positions == sorted(positions)
    assert 'type="datetime-local"' in text
    assert '<option value="Epoch">Epoch</option>' in text
    assert "It starts with TX." in text
    assert re.search(r'<input[^>]*multiple[^>]*name="attachments"|<input[^>]*name="attachments"'
                     r'[^>]*multiple', text)
    assert 'enctype="multipart/form-data"' in text
    # The admin's "email" question does not shadow the customer's own address.
    assert 'name="email"' in text and 'name="extra_email"' in text
    assert "Refunds" in text and "Payments and subscriptions" not in text.split("<main")[0]


def test_required_question_is_enforced(built: Any, site: Any) -> None:
    page = post_ticket(site, LOGIN_FORM, form_data())  # registered_email is required
    assert page.status_code == 200
    assert "This field is required." in page.text
    assert 'aria-invalid="true"' in page.text
    assert counts() == (0, 0, 0, 0)


@pytest.mark.parametrize("field, value, message", [
    ("email", "not-an-address", "valid email address"),
    ("email", "", "This field is required."),
    ("name", "", "This field is required."),
    ("subject", "   ", "This field is required."),
    ("description", "", "This field is required."),
    ("extra_registered_email", "rina@", "valid email address"),
])
def test_bad_input_redisplays_the_form_and_creates_nothing(built: Any, site: Any, field: str,
                                                           value: str, message: str) -> None:
    data = form_data(extra_registered_email="rina@example.com")
    data[field] = value
    page = post_ticket(site, LOGIN_FORM, data)
    assert page.status_code == 200
    assert message in page.text
    assert counts() == (0, 0, 0, 0)
    # What the customer typed is still there.
    assert "Cannot log in" in page.text or field == "subject"


def test_choice_and_datetime_are_validated(built: Any, site: Any) -> None:
    add_questions(built.refunds)
    data = form_data(extra_billing_center="PayPal", extra_transaction_id="TX1",
                     extra_incident_at="yesterday at noon")
    page = post_ticket(site, REFUNDS_FORM, data)
    assert page.status_code == 200
    assert "Choose one of the offered answers." in page.text
    assert "Enter a date and time, like 2024-05-01T14:30." in page.text
    assert counts() == (0, 0, 0, 0)


def test_submission_creates_one_ticket_routed_by_category(built: Any, site: Any,
                                                         spy: Any) -> None:
    add_questions(built.refunds)
    data = form_data(
        extra_billing_center="CCBill", extra_transaction_id=" TX-42 ",
        extra_incident_at="2024-05-01T13:45", extra_notes="", extra_email="",
        extra_screenshot=upload(PNG, "screen shot.png"),
        attachments=[upload(PDF, "statement.pdf"), upload(b"plain words\n", "notes.txt")])
    response = post_ticket(site, REFUNDS_FORM, data)
    assert response.status_code == 302
    assert counts() == (1, 1, 3, 1)
    ticket = Ticket.get()
    assert response.headers["Location"] == f"/t/{ticket.id}/{ticket.access_key}"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert ticket.channel == "web"
    assert ticket.subject == "Cannot log in"
    assert ticket.category_id == built.refunds.id
    assert ticket.user_type_id == built.member.id
    # Refunds has no department of its own: routing takes its parent's.
    assert ticket.department_id == built.support.id
    assert ticket.priority == Priority.NORMAL
    assert ticket.status == Status.NEW
    assert ticket.language == "en"
    # The one stored form of a date-time (the API stores the same); unanswered questions
    # are left out.
    assert ticket.form_data == {
        "billing_center": "CCBill", "transaction_id": "TX-42",
        "incident_at": "2024-05-01T13:45:00", "screenshot": "screen shot.png"}
    assert ticket.contact.email == "rina@example.com"
    assert ticket.contact.name == "Rina Customer"
    message = Message.get()
    assert message.body_text.startswith("I reset my password twice.")
    files = {a.filename: a for a in Attachment.select()}
    assert set(files) == {"screen shot.png", "statement.pdf", "notes.txt"}
    assert files["screen shot.png"].field_name == "screenshot"
    assert files["screen shot.png"].content_type == "image/png"
    assert files["statement.pdf"].field_name == ""
    assert all(a.message_id == message.id for a in files.values())
    assert spy.names().count("ticket_created") == 1

    # POST/redirect/GET: the tracking page says the ticket was received, once.
    page = site.get(response.headers["Location"])
    assert page.status_code == 200
    assert "We received your request" in page.text
    assert f"Your ticket number is {ticket.id}." in page.text
    assert f"http://desk.test/t/{ticket.id}/{ticket.access_key}" in page.text
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    again = site.get(response.headers["Location"])
    assert "We received your request" not in again.text


def test_category_department_and_priority(built: Any, site: Any) -> None:
    response = post_ticket(site, "/help/member/payments-and-subscriptions/new", form_data())
    assert response.status_code == 302
    ticket = Ticket.get()
    assert ticket.department_id == built.support.id
    assert ticket.priority == Priority.HIGH
    assert ticket.form_data == {}


def test_category_without_department_or_fields(built: Any, site: Any) -> None:
    Category.create(user_type=built.studio, slug="other", name="Something else", position=9)
    assert site.get("/help/studio/other/new").status_code == 200
    response = post_ticket(site, "/help/studio/other/new", form_data())
    assert response.status_code == 302
    ticket = Ticket.get()
    assert ticket.department_id is None
    assert ticket.user_type_id == built.studio.id


def test_language_of_the_ticket_is_the_page_language(built: Any, site: Any) -> None:
    response = post_ticket(site, LOGIN_FORM + "?lang=fil",
                           form_data(extra_registered_email="rina@example.com"))
    assert response.status_code == 302
    assert Ticket.get().language == "fil"
    assert Contact.get().language == "fil"


@pytest.mark.parametrize("path", [
    "/help/member/no-such-topic/new",          # unknown category
    "/help/studio/registration-and-login/new",  # a category of another user type
    "/help/nobody/registration-and-login/new",  # unknown user type
])
def test_unknown_category_is_404(built: Any, site: Any, path: str) -> None:
    assert site.get(path).status_code == 404
    assert post_ticket(site, path, form_data()).status_code == 404
    assert counts() == (0, 0, 0, 0)


def test_hidden_category_and_child_of_hidden_parent_are_404(built: Any, site: Any) -> None:
    Category.update(visible=False).where(Category.id == built.payments.id).execute()
    assert site.get("/help/member/payments-and-subscriptions/new").status_code == 404
    assert site.get(REFUNDS_FORM).status_code == 404
    assert post_ticket(site, REFUNDS_FORM, form_data()).status_code == 404
    assert counts() == (0, 0, 0, 0)


# -- Attachments on the form -----------------------------------------------------------------


def test_too_many_files_is_a_form_error(make_app: Any) -> None:
    app = make_app(upload_max_files=2)
    app.config["WTF_CSRF_ENABLED"] = False
    from core import db as core_db

    from .factories import build_desk

    with app.app_context(), core_db.connection():
        build_desk()
        client = app.test_client()
        files = [upload(PNG + bytes([i]), f"shot{i}.png") for i in range(3)]
        page = post_ticket(client, LOGIN_FORM, form_data(
            extra_registered_email="rina@example.com", attachments=files))
        assert page.status_code == 200
        assert "You can attach at most 2 files." in page.text
        assert "Cannot log in" in page.text
        assert counts() == (0, 0, 0, 0)


def test_oversize_file_is_a_form_error(make_app: Any) -> None:
    app = make_app(upload_max_bytes=1024)
    app.config["WTF_CSRF_ENABLED"] = False
    from core import db as core_db

    from .factories import build_desk

    with app.app_context(), core_db.connection():
        build_desk()
        client = app.test_client()
        page = post_ticket(client, LOGIN_FORM, form_data(
            extra_registered_email="rina@example.com",
            attachments=[upload(PDF + b"x" * 2000, "big.pdf")]))
        assert page.status_code == 200
        assert "big.pdf is larger than" in page.text
        assert counts() == (0, 0, 0, 0)
        # The whole request over MAX_CONTENT_LENGTH is core's 413 page.
        huge = b"x" * (app.config["MAX_CONTENT_LENGTH"] + 10)
        page = post_ticket(client, LOGIN_FORM, form_data(
            extra_registered_email="rina@example.com", attachments=[upload(huge, "huge.txt")]))
        assert page.status_code == 413
        assert "too large" in page.text
        assert counts() == (0, 0, 0, 0)


@pytest.mark.parametrize("content, name", [(EXE, "setup.exe"), (EXE, "photo.png"),
                                           (b"", "empty.png")])
def test_disallowed_file_type_is_a_form_error(built: Any, site: Any, content: bytes,
                                              name: str) -> None:
    page = post_ticket(site, LOGIN_FORM, form_data(
        extra_registered_email="rina@example.com", attachments=[upload(content, name)]))
    assert page.status_code == 200
    assert name in page.text
    assert ("not accepted" in page.text) or ("is empty" in page.text)
    assert counts() == (0, 0, 0, 0)


def test_file_question_goes_through_attachment_checks(built: Any, site: Any) -> None:
    CategoryField.create(category=built.login, name="screenshot", label="Screenshot",
                         kind=FieldKind.FILE, required=True, position=2)
    data = form_data(extra_registered_email="rina@example.com")
    page = post_ticket(site, LOGIN_FORM, data)
    assert "Please attach a file." in page.text
    page = post_ticket(site, LOGIN_FORM, dict(data, extra_screenshot=upload(EXE, "shot.png")))
    assert "shot.png: this type of file is not accepted" in page.text
    assert counts() == (0, 0, 0, 0)


def test_html_disguised_as_png_is_judged_by_content(make_app: Any) -> None:
    """The name says PNG; the bytes say markup. It is never taken for an image."""
    app = make_app(upload_allowed_types=["image/png", "image/jpeg"])
    app.config["WTF_CSRF_ENABLED"] = False
    from core import db as core_db

    from .factories import build_desk

    with app.app_context(), core_db.connection():
        build_desk()
        page = post_ticket(app.test_client(), LOGIN_FORM, form_data(
            extra_registered_email="rina@example.com", attachments=[upload(HTML, "cat.png")]))
        assert page.status_code == 200
        assert "cat.png: this type of file is not accepted" in page.text
        assert counts() == (0, 0, 0, 0)


# -- CSRF ------------------------------------------------------------------------------------


def csrf_token(html: str) -> str:
    """The value of the page's first csrf_token input, whatever the order of its attributes."""
    for tag in re.findall(r"<input\b[^>]*>", html):
        if 'name="csrf_token"' in tag:
            match = re.search(r'value="([^"]+)"', tag)
            assert match, f"a CSRF input without a value: {tag}"
            return match.group(1)
    raise AssertionError("no CSRF token on the page")


def test_csrf_missing_or_forged_token_is_refused(desk: Any, client: Any) -> None:
    data = form_data(extra_registered_email="rina@example.com")
    missing = post_ticket(client, LOGIN_FORM, data)
    assert missing.status_code == 400
    assert "Your form expired" in missing.text
    client.get(LOGIN_FORM)  # a session, with its own token
    forged = post_ticket(client, LOGIN_FORM, dict(data, csrf_token="forged." + "A" * 40))
    assert forged.status_code == 400
    assert counts() == (0, 0, 0, 0)


def test_csrf_token_from_another_session_is_refused(desk: Any, client: Any, app: Any) -> None:
    other = app.test_client()
    token = csrf_token(other.get(LOGIN_FORM).text)
    client.get(LOGIN_FORM)
    page = post_ticket(client, LOGIN_FORM, form_data(
        extra_registered_email="rina@example.com", csrf_token=token))
    assert page.status_code == 400
    assert counts() == (0, 0, 0, 0)


def test_csrf_real_token_works(desk: Any, client: Any) -> None:
    token = csrf_token(client.get(LOGIN_FORM).text)
    response = post_ticket(client, LOGIN_FORM, form_data(
        extra_registered_email="rina@example.com", csrf_token=token))
    assert response.status_code == 302
    assert counts()[:2] == (1, 1)
    tracking = client.get(response.headers["Location"])
    # The tracking page's forms carry a token that works too.
    token = csrf_token(tracking.text)
    ticket = Ticket.get()
    reply = client.post(f"/t/{ticket.id}/{ticket.access_key}/reply",
                        data={"text": "More detail", "csrf_token": token})
    assert reply.status_code == 302
    assert Message.select().count() == 2
    forged = client.post(f"/t/{ticket.id}/{ticket.access_key}/resolve", data={})
    assert forged.status_code == 400
    assert Ticket.get().status == Status.NEW


# -- Security headers, language, plugins -----------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/help/member/", LOGIN_FORM, "/help/nobody/"])
def test_security_headers_on_public_pages(desk: Any, client: Any, path: str) -> None:
    page = client.get(path)
    csp = page.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    # Public pages may be cached by the browser; only private ones say no-store.
    assert page.headers.get("Cache-Control") != "no-store"
    # No inline script, style element or style attribute that the CSP would block.
    assert "<script" not in page.text and "<style" not in page.text
    assert " style=" not in page.text and " onclick=" not in page.text


def test_language_switcher_sets_html_lang(desk: Any, client: Any) -> None:
    page = client.get("/?lang=id")
    assert '<html lang="id">' in page.text
    assert 'href="?lang=fil"' in page.text and "Bahasa Indonesia" in page.text
    # Remembered for the next page, without ?lang=.
    assert '<html lang="id">' in client.get("/help/member/").text
    assert '<html lang="en">' in client.get("/help/member/?lang=en").text
    # Other query arguments are kept by the switcher.
    page = client.get("/help/member/?x=1&lang=fil")
    assert '<html lang="fil">' in page.text
    assert 'href="?x=1&amp;lang=id"' in page.text


class Channels:
    """A plugin that offers channels and notices, recording what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[Any, Any, str]] = []
        self.pages: list[str] = []

    @hookimpl
    def contact_channels(self, user_type: Any, category: Any,
                         language: str) -> list[ContactOption]:
        self.asked.append((user_type and user_type.slug, category and category.slug, language))
        where = category.slug if category is not None else (user_type.slug if user_type else "home")
        return [ContactOption(kind="telegram", label=f"Telegram for {where}",
                              url="https://t.me/desk_bot", order=5)]

    @hookimpl
    def public_notices(self, page: str, user_type: Any, category: Any) -> list[Notice]:
        self.pages.append(page)
        return [Notice(text=f"Planned maintenance ({page})", level="warning")]


def test_contact_channels_on_every_page(make_app: Any) -> None:
    plugin = Channels()
    app = make_app(extra_plugins=(plugin,))
    app.config["WTF_CSRF_ENABLED"] = False
    from core import db as core_db

    from .factories import build_desk

    with app.app_context(), core_db.connection():
        build_desk()
        client = app.test_client()
        home = client.get("/?lang=id").text
        assert "Telegram for home" in home and 'href="https://t.me/desk_bot"' in home
        assert "Telegram for member" in client.get("/help/member/").text
        form = client.get(LOGIN_FORM).text
        assert "Telegram for registration-and-login" in form
        assert plugin.asked == [(None, None, "id"), ("member", None, "id"),
                                ("member", "registration-and-login", "id")]
        response = post_ticket(client, LOGIN_FORM, form_data(
            extra_registered_email="rina@example.com"))
        assert response.status_code == 302
        assert len(plugin.asked) == 3  # a successful submission builds no page


class Outage:
    @hookimpl
    def public_notices(self, page: str, user_type: Any, category: Any) -> list[Notice]:
        if page == "tracking":
            return [Notice(text="Replies are slow today", level="outage",
                           url="https://status.example/")]
        return []


def test_public_notices_shown_on_home_form_and_tracking(make_app: Any) -> None:
    plugin = Channels()
    app = make_app(extra_plugins=(plugin, Outage()))
    app.config["WTF_CSRF_ENABLED"] = False
    from core import db as core_db

    from .factories import build_desk

    with app.app_context(), core_db.connection():
        build_desk()
        client = app.test_client()
        home = client.get("/").text
        assert "Planned maintenance (home)" in home
        assert 'class="notice notice-warning"' in home
        form = client.get(LOGIN_FORM).text
        assert "Planned maintenance (form)" in form
        response = post_ticket(client, LOGIN_FORM, form_data(
            extra_registered_email="rina@example.com"))
        tracking = client.get(response.headers["Location"]).text
        assert "Planned maintenance (tracking)" in tracking
        assert "Replies are slow today" in tracking
        assert 'role="alert"' in tracking and 'href="https://status.example/"' in tracking
        assert plugin.pages == ["home", "form", "tracking"]


def test_email_intake_shows_its_address(make_app: Any) -> None:
    app = make_app(plugins=["email_intake"], **{"email_intake.address": "help@desk.test"})
    with app.app_context():
        page = app.test_client().get("/")
    assert page.status_code == 200
    assert 'href="mailto:help@desk.test"' in page.text
    assert "help@desk.test" in page.text


def test_livechat_link_and_chat_page(make_app: Any) -> None:
    app = make_app(plugins=["livechat"])
    from core import db as core_db

    from .factories import build_desk

    with app.app_context(), core_db.connection():
        build_desk()
        client = app.test_client()
        form = client.get(LOGIN_FORM).text
        chat_link = "/chat/?user_type=member&amp;category=registration-and-login"
        assert f'href="{chat_link}"' in form
        chat = client.get(chat_link.replace("&amp;", "&"))
        assert chat.status_code == 200
        assert "Chat with us" in chat.text
        assert f'href="{LOGIN_FORM}"' in chat.text  # the offline fallback leads to the form
        assert 'href="/static/loket/loket.css"' in chat.text  # it extends the help center base
        assert "Chat with us" in client.get("/").text


def test_no_plugins_no_channels(desk: Any, client: Any) -> None:
    page = client.get("/")
    assert "mailto:" not in page.text and "/chat/" not in page.text
    assert "Other ways to reach us" not in page.text


def test_ticket_form_class_is_built_once_per_definition(built: Any) -> None:
    from core.web.forms import ticket_form_class

    rows = list(built.login.fields)
    assert ticket_form_class(rows) is ticket_form_class(list(built.login.fields))
    CategoryField.update(label="Email you registered with").execute()
    changed = ticket_form_class(list(built.login.fields))
    assert changed is not ticket_form_class(rows)


def test_email_check() -> None:
    from core.services.contacts import is_email_address as looks_like_email

    for good in ["a@b.co", "first.last+tag@mail.example.org", "ibu@surat.co.id",
                 "nama@contoh.indonesia"]:
        assert looks_like_email(good), good
    for bad in ["", "a", "a@", "@b.co", "a@b", "a b@c.co", "a@b..co", "Rina <r@x.co>",
                "a@-b.co", "a@b.c", "a@@b.co"]:
        assert not looks_like_email(bad), bad


class QueryLog:
    """Counts the SQL statements peewee runs while it is active."""

    def __init__(self) -> None:
        import logging

        self.statements: list[str] = []
        self.logger = logging.getLogger("peewee")
        self.handler = logging.Handler()
        self.handler.emit = self._caught  # type: ignore[method-assign]

    def _caught(self, record: Any) -> None:
        # Not the WAL checkpoint a SQLite writer runs after every CHECKPOINT_EVERY commits of its
        # process (core.db): housekeeping after the commit, and which submission meets it
        # depends on the tests before.
        if "wal_checkpoint" not in str(record.msg):
            self.statements.append(str(record.msg))

    def __enter__(self) -> QueryLog:
        import logging

        self.level = self.logger.level
        self.logger.setLevel(logging.DEBUG)
        self.logger.addHandler(self.handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self.level)

    def selects(self) -> int:
        return sum(1 for sql in self.statements if "SELECT" in sql.upper()[:20])


def test_submission_runs_few_queries(built: Any, site: Any) -> None:
    """The form POST is benchmarked: category, its parents and its questions, then the service."""
    add_questions(built.refunds)
    data = form_data(extra_billing_center="Epoch", extra_transaction_id="TX1",
                     submission="form-1")
    with QueryLog() as log:
        response = post_ticket(site, REFUNDS_FORM, data)
    assert response.status_code == 302
    # 3 here (the category, its parent, its questions), 3 in the service (the form
    # sent before?, the contact's identity, the routed department), SQL compiled once.
    assert log.selects() <= 6, log.statements
    assert len(log.statements) <= 12, log.statements


def _submission_of(page: str) -> str:
    import re

    match = re.search(r'name="submission" type="hidden" value="([^"]+)"', page) or re.search(
        r'id="submission" name="submission" type="hidden" value="([^"]+)"', page)
    assert match, "the form carries a submission id"
    return match.group(1)


def test_the_same_form_sent_twice_opens_one_ticket(built: Any, web: Any) -> None:
    """A double click, or a retry after a dropped connection, must not open a second ticket."""
    browser = web.test_client()
    submission = _submission_of(browser.get("/help/studio/account/new").text)
    assert submission != _submission_of(browser.get("/help/studio/account/new").text)
    data = form_data(submission=submission)
    first = post_ticket(browser, "/help/studio/account/new", dict(data))
    again = post_ticket(browser, "/help/studio/account/new", dict(data))
    assert first.status_code == again.status_code == 302
    assert first.headers["Location"] == again.headers["Location"]
    assert Ticket.select().count() == 1 and Message.select().count() == 1

    # Another browser sending the same id gets its own ticket, never the first one's link.
    stranger = web.test_client()
    stranger.get("/help/studio/account/new")
    other = post_ticket(stranger, "/help/studio/account/new", dict(data))
    assert other.status_code == 302 and other.headers["Location"] != first.headers["Location"]
    assert Ticket.select().count() == 2


def test_a_sent_form_leaves_the_session_unsigned_and_its_page_says_we_got_it_once(
        make_app: Any) -> None:
    """The submission names its form's id in the redirect instead of writing the session:
    Flask neither signs the session again nor sends it back. The tracking page says "we got
    it" to the browser whose session the id is bound to, once."""
    from .factories import build_desk

    app = make_app()  # CSRF on, as a browser meets it
    with app.app_context(), core_db.connection():
        build_desk()
    browser = app.test_client()
    page = browser.get("/help/studio/account/new").text
    data = form_data(submission=_submission_of(page), csrf_token=csrf_token(page))
    sent = post_ticket(browser, "/help/studio/account/new", data)
    assert sent.status_code == 302
    assert "Set-Cookie" not in sent.headers  # the session as it was: not signed again
    location = sent.headers["Location"]
    with app.app_context(), core_db.connection():
        ticket = Ticket.get()
    assert location.startswith(f"/t/{ticket.id}/{ticket.access_key}?sent=")
    said = "We received your request"
    # Another browser with the link, or this one with another form's id: not said.
    assert said not in app.test_client().get(location).text
    forged = f"/t/{ticket.id}/{ticket.access_key}?sent=" + _submission_of(
        browser.get("/help/studio/account/new").text)
    assert said not in browser.get(forged).text
    first = browser.get(location)
    assert said in first.text and f"Your ticket number is {ticket.id}." in first.text
    assert said not in browser.get(location).text  # once
    # The form sent twice (a double click) goes to the same page, which has said it.
    again = post_ticket(browser, "/help/studio/account/new", data)
    assert again.headers["Location"] == location and "Set-Cookie" not in again.headers
    assert said not in browser.get(location).text
    with app.app_context(), core_db.connection():
        assert Ticket.select().count() == 1


def test_a_tracking_link_with_a_sent_id_and_a_ticket_from_another_channel(
        built: Any, site: Any) -> None:
    # The first message's id is the channel's own text (a mail's Message-ID, any letters):
    # the page compares it as bytes, and a made-up id is no form's.
    from core.models import IdentityKind
    from core.services.tickets import Identity, open_ticket

    ticket = open_ticket(identity=Identity(IdentityKind.EMAIL, "rina@example.com"),
                         subject="By mail", text="Hello", channel="email",
                         external_id="<ünïcode-id@mail.example>")
    site.get("/help/member/registration-and-login/new")  # a session with a form key
    page = site.get(f"/t/{ticket.id}/{ticket.access_key}?sent=made-up")
    assert page.status_code == 200 and "We received your request" not in page.text


def test_answer_length_limits_come_from_the_one_check(web: Any) -> None:
    from core.services.answers import Question, check_answers

    for kind in (FieldKind.TEXT, FieldKind.TEXTAREA, FieldKind.EMAIL):
        question = Question("q", "Q", kind, False, (), "")
        limit = FieldKind.MAX_LENGTH[kind]
        with web.test_request_context():
            if kind != FieldKind.EMAIL:  # a 254-character address is rarely a valid one
                assert check_answers([question], {"q": "a" * limit})[1] == {}
            _, errors = check_answers([question], {"q": "a" * (limit + 1)})
        assert errors == {"q": f"At most {limit} characters."}


# -- What every page is built from ---------------------------------------------------------------


def test_fixed_links_follow_the_script_root_they_are_served_under(web: Any) -> None:
    """helpcenter.fixed_url keeps a link per script root: a desk mounted under a prefix
    never hands out the links of one served at the root, nor the other way round."""
    from core.web.helpcenter import fixed_url

    for _round in range(2):
        with web.test_request_context("/", base_url="http://desk.test/desk"):
            assert fixed_url("helpcenter.home") == "/desk/"
            assert fixed_url("helpcenter.static", filename="loket.css") == (
                "/desk/static/loket/loket.css")
        with web.test_request_context("/"):
            assert fixed_url("helpcenter.home") == "/"
            assert fixed_url("helpcenter.static", filename="loket.css") == "/static/loket/loket.css"


def test_translated_words_on_a_page_are_escaped_and_formatted(web: Any) -> None:
    """Templates' ``_()`` (core.i18n) as Jinja's new-style one: what goes into the words
    is escaped on an HTML page, and the words are always a format string."""
    from flask import render_template_string

    template = '{{ _("Ticket %(number)s", number=value) }}|{{ _("100%% sure") }}'
    with web.test_request_context("/?lang=id"):
        assert render_template_string(template, value="<b>7</b>") == (
            "Tiket &lt;b&gt;7&lt;/b&gt;|100% sure")
        env = web.jinja_env.overlay(autoescape=False)
        assert env.from_string(template).render(value="<b>7</b>") == "Tiket <b>7</b>|100% sure"
