"""The ticket form's fields bound from kept state: the same page, the same errors, less work."""

from __future__ import annotations

import re
from typing import Any

import pytest
from wtforms.csrf.core import CSRFTokenField
from wtforms.fields.choices import SelectChoice
from wtforms.fields.core import Field

from core.models import Translation
from core.services.answers import Question
from core.web import forms

from .test_web_helpcenter import (
    LOGIN_FORM,
    REFUNDS_FORM,
    add_questions,
    counts,
    csrf_token,
    form_data,
    post_ticket,
)

LANGUAGES = ("en", "id", "fil")


def _wtforms_binding(monkeypatch: Any) -> None:
    """Every field constructed by WTForms itself, as before fields were kept."""
    monkeypatch.setattr(forms, "bind_kept",
                        lambda form, unbound, options: unbound.bind(form=form, **options))


def _comparable(html: str) -> str:
    # A new submission id and a new signed stamp for every form shown; nothing else may differ.
    return re.sub(r'(name="(?:submission|shown_at)"[^>]*value=)"[^"]*"', r'\1"…"', html)


def _translate_questions(desk: Any) -> None:
    from core.models import CategoryField

    center = CategoryField.get(CategoryField.name == "billing_center")
    Translation.create(model="CategoryField", row_id=center.id, field="label", language="id",
                       text="Pusat penagihan")
    Translation.create(model="CategoryField", row_id=center.id, field="choices",
                       language="id", text="Epoch (kartu)\nCCBill (kartu)")
    Translation.create(model="CategoryField", row_id=center.id, field="help_text",
                       language="fil", text="Ang nasa statement")


def _pages(client: Any, language: str) -> list[str]:
    """The form shown, then sent back with an error in every kind of field."""
    shown = client.get(f"{REFUNDS_FORM}?lang={language}").text
    bad = form_data(email="not-an-address", subject="x" * 300, description="",
                    extra_billing_center="PayPal", extra_incident_at="yesterday",
                    extra_email="rina@", extra_transaction_id="")
    sent = post_ticket(client, f"{REFUNDS_FORM}?lang={language}",
                       dict(bad, csrf_token=csrf_token(shown)))
    assert sent.status_code == 200
    return [_comparable(shown), _comparable(sent.text)]


@pytest.mark.parametrize("language", LANGUAGES)
def test_kept_fields_render_the_form_and_its_errors_byte_for_byte(desk: Any, client: Any,
                                                                  monkeypatch: Any,
                                                                  language: str) -> None:
    add_questions(desk.refunds)
    _translate_questions(desk)
    _pages(client, language)  # the first form of a process binds its fields as WTForms does
    kept = _pages(client, language)
    with monkeypatch.context() as patched:
        _wtforms_binding(patched)
        fresh = _pages(client, language)
    assert kept == fresh
    sent = kept[1]
    for message in ("Please enter a valid email address", "At most 250 characters.",
                    "This field is required.", "Choose one of the offered answers.",
                    "Enter a date and time, like 2024-05-01T14:30."):
        assert message in sent or language != "en"
    assert counts() == (0, 0, 0, 0)


def test_a_second_form_constructs_only_its_csrf_field(desk: Any, client: Any,
                                                      monkeypatch: Any) -> None:
    add_questions(desk.refunds)
    client.get(REFUNDS_FORM)
    made: list[type] = []
    construct = Field.__init__

    def counted(self: Field, *args: Any, **kwargs: Any) -> None:
        made.append(type(self))
        construct(self, *args, **kwargs)

    monkeypatch.setattr(Field, "__init__", counted)
    page = client.get(REFUNDS_FORM)
    assert page.status_code == 200 and 'name="extra_billing_center"' in page.text
    # The CSRF field is made for each form (it holds that form's token); the other 14
    # (8 of every ticket form, the category's 6 questions) are bound from what their first
    # binding left.
    assert made == [CSRFTokenField]
    made.clear()
    with monkeypatch.context() as patched:
        _wtforms_binding(patched)
        client.get(REFUNDS_FORM)
    assert len(made) == 15  # as WTForms binds them


def test_the_csrf_check_is_as_strict_with_kept_fields(desk: Any, client: Any) -> None:
    data = form_data(extra_registered_email="rina@example.com")
    token = csrf_token(client.get(LOGIN_FORM).text)
    client.get(LOGIN_FORM)  # fields now kept
    assert post_ticket(client, LOGIN_FORM, data).status_code == 400  # missing
    forged = dict(data, csrf_token=token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"))
    assert post_ticket(client, LOGIN_FORM, forged).status_code == 400
    assert counts() == (0, 0, 0, 0)
    assert post_ticket(client, LOGIN_FORM, dict(data, csrf_token=token)).status_code == 302
    assert counts()[:2] == (1, 1)


def _form(app: Any, questions: list[Question]) -> Any:
    return forms.ticket_form_class(questions)(formdata=None)


def test_what_a_form_changes_in_its_fields_stays_in_that_form(web: Any) -> None:
    questions = [Question("colour", "Colour", "choice", True, ("Red", "Blue"), "Pick one")]
    with web.test_request_context("/"):
        _form(web, questions)
        first = _form(web, questions)
        first.name.render_kw["placeholder"] = "changed"
        first.name.flags.required = False
        first.name.label.text = "Changed"
        first.extra_colour.choices.append(SelectChoice("Green", "Green"))
        second = _form(web, questions)
        assert second.name.render_kw == {"autocomplete": "name"}
        assert second.name.flags.required is True
        assert str(second.name.label.text) == "Your name"
        assert [c.value for c in second.extra_colour.choices] == ["", "Red", "Blue"]
        assert second.name._form is second and second.meta is not first.meta
        assert second.name.meta is second.meta
        # Fields WTForms labels from their name keep that label.
        assert second.submission.label.text == "Submission"
        assert second.shown_at.label.text == "Shown At"


def _stamp(html: str) -> str:
    found = re.search(r'<input[^>]*name="shown_at"[^>]*value="([^"]*)"', html)
    assert found is not None
    return found.group(1)


def test_a_sent_form_keeps_its_stamp_and_signs_none(built: Any, site: Any,
                                                    monkeypatch: Any) -> None:
    from flask import current_app
    from itsdangerous import TimestampSigner

    signed: list[str] = []

    class Counting(TimestampSigner):
        def sign(self, value: Any) -> bytes:
            signed.append(value)
            return super().sign(value)

    monkeypatch.setattr(forms, "_signer", lambda: Counting(current_app.config["SECRET_KEY"],
                                                           salt=forms.SHOWN_AT_SALT))
    stamp = _stamp(site.get(LOGIN_FORM).text)
    assert len(signed) == 1 and forms.seconds_since_shown(stamp) is not None
    again = post_ticket(site, LOGIN_FORM, form_data(name="", shown_at=stamp))
    assert again.status_code == 200 and _stamp(again.text) == stamp
    assert len(signed) == 1  # the stamp sent back is the form's: none signed to be dropped
    missing = post_ticket(site, LOGIN_FORM, form_data(name=""))
    fresh = _stamp(missing.text)
    assert len(signed) == 2 and fresh and forms.seconds_since_shown(fresh) is not None
    empty = post_ticket(site, LOGIN_FORM, form_data(name="", shown_at=""))
    assert _stamp(empty.text) == "" and len(signed) == 2  # as WTForms: what was sent
    assert counts() == (0, 0, 0, 0)


def test_binding_a_ticket_form_asks_no_catalogue(web: Any, monkeypatch: Any) -> None:
    asked: list[str] = []
    real = forms._FormTranslations.gettext
    monkeypatch.setattr(forms._FormTranslations, "gettext",
                        lambda self, string: (asked.append(string), real(self, string))[1])
    with web.test_request_context("/?lang=id"):
        _form(web, [])
        form = _form(web, [])
    # Every field has its label (the hidden ones as WTForms would name them): none is
    # looked up in the catalogues for each form.
    assert asked == []
    assert (form.submission.label.text, form.shown_at.label.text) == ("Submission", "Shown At")
