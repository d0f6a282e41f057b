"""The public billing page: who charged you, the billing centers, and the billing form."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from flask_babel import get_locale
from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    EmailField,
    HiddenField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from core.i18n import _, _l
from core.models import Category, IdentityKind, UserType
from core.services.contacts import is_email_address
from core.services.tickets import Identity, open_ticket

from .centers import active_centers, match_center
from .models import RequestKind
from .money import CURRENCIES, AmountError, parse_amount

bp = Blueprint("billing_desk", __name__, url_prefix="/billing", template_folder="templates")

SEARCH_MAX = 500
DESCRIPTION_MAX = 10_000
FORM_KEY = "billing_form_key"
# Customers ahead of UTC (Manila, Jakarta, Tokyo; Kiribati at +14) may already be at
# tomorrow's date: a charge "today" for them must not read as in the future.
AHEAD_OF_UTC = dt.timedelta(hours=14)
OLDEST_CHARGE = dt.date(2000, 1, 1)

REQUEST_LABELS = {
    RequestKind.REFUND: _l("A refund"),
    RequestKind.CANCEL: _l("Cancel my subscription"),
    RequestKind.RENEW: _l("Renew my subscription"),
    RequestKind.EXPLAIN: _l("Explain a charge"),
}
AMOUNT_ERRORS = {
    "format": _l("Write the amount in digits, with a point before the cents, like 29.99."),
    "negative": _l("The amount must be more than zero."),
    "huge": _l("That amount is too large for one charge. Please check it."),
    "currency": _l("Choose a currency."),
}


def language() -> str:
    locale = get_locale()
    return str(locale) if locale is not None else "en"


def latest_charge_date() -> dt.date:
    return (dt.datetime.now(dt.UTC) + AHEAD_OF_UTC).date()


class BillingForm(FlaskForm):
    """The billing ticket form; Flask-WTF checks the CSRF token."""

    name = StringField(_l("Your name"), validators=[DataRequired(), Length(max=200)])
    email = EmailField(_l("Your email address"),
                       validators=[DataRequired(), Length(max=254)])
    billing_center = SelectField(_l("Billing company on your statement"), choices=[],
                                 validate_choice=True)
    request_kind = RadioField(_l("What would you like us to do?"), validators=[DataRequired()],
                              choices=[SelectChoice(k, v) for k, v in REQUEST_LABELS.items()])
    transaction_id = StringField(_l("Transaction or order id"),
                                 validators=[Optional(), Length(max=120)])
    amount = StringField(_l("Amount charged"), validators=[Optional(), Length(max=24)])
    currency = SelectField(_l("Currency"), choices=[SelectChoice(c) for c in CURRENCIES])
    charged_on = DateField(_l("Date of the charge"), validators=[Optional()])
    description = TextAreaField(_l("Anything else we should know?"),
                                validators=[DataRequired(), Length(max=DESCRIPTION_MAX)],
                                render_kw={"rows": 6})
    submission = HiddenField(validators=[Optional(), Length(max=64)])
    # People never see it (hidden, out of the tab order); bots fill it in.
    website = StringField(_l("Leave this field empty"), validators=[Optional()],
                          render_kw={"autocomplete": "off", "tabindex": "-1"})

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.billing_center.choices = [SelectChoice("", _("I don't know"))] + [
            SelectChoice(center.name) for center in active_centers()]

    def validate_email(self, field: Any) -> None:
        if not is_email_address((field.data or "").strip()):
            raise ValidationError(_("Please enter a valid email address, like "
                                    "name@example.com."))

    def validate_amount(self, field: Any) -> None:
        if not (field.data or "").strip():
            return
        try:
            self.amount_value = parse_amount(field.data, self.currency.data)
        except AmountError as exc:
            if exc.code == "decimals" and exc.currency is not None:
                if exc.currency.decimals == 0:
                    raise ValidationError(_("%(code)s amounts have no decimals: write whole "
                                            "numbers, like 150000.",
                                            code=exc.currency.code)) from None
                raise ValidationError(_("%(code)s amounts have at most %(places)s decimals.",
                                        code=exc.currency.code,
                                        places=exc.currency.decimals)) from None
            raise ValidationError(AMOUNT_ERRORS.get(exc.code, AMOUNT_ERRORS["format"])) \
                from None

    def validate_charged_on(self, field: Any) -> None:
        if field.data is None:
            return
        if field.data > latest_charge_date():
            raise ValidationError(_("The date of the charge cannot be in the future."))
        if field.data < OLDEST_CHARGE:
            raise ValidationError(_("Please check the date of the charge."))

    def validate_website(self, field: Any) -> None:
        if (field.data or "").strip():
            raise ValidationError(_("Please check your answers and send the form again."))


def billing_category() -> Category | None:
    """The billing form's category: the first billing category slug, of the first user type."""
    from . import settings

    for slug in settings()["categories"]:
        found = (Category.select().join(UserType, on=(Category.user_type == UserType.id))
                 .where((Category.slug == slug) & Category.visible & UserType.active)
                 .order_by(UserType.position, UserType.id).first())
        if found is not None:
            return found
    return None


@bp.get("/")
def page() -> str:
    from . import settings

    query = request.args.get("q", "")[:SEARCH_MAX]
    centers = active_centers()
    found = match_center(query, centers) if query.strip() else None
    return render_template("billing_desk/page.html", centers=centers, query=query,
                           found=found, searched=bool(query.strip()),
                           email=settings()["email"])


def _submission_id(nonce: str | None) -> str | None:
    """The form's one-time id, keyed with this browser's secret: a double click opens one
    ticket, and nobody who learns a form's id can make it answer with another's ticket."""
    key = session.get(FORM_KEY)
    if not nonce or not key:
        return None
    secret = f"{current_app.secret_key}|billing|{key}".encode()
    return "billing-form:" + hmac.new(secret, nonce.encode(), hashlib.sha256).hexdigest()[:48]


@bp.route("/new", methods=["GET", "POST"])
def new() -> Any:
    form = BillingForm()
    if request.method == "GET":
        form.submission.data = secrets.token_urlsafe(18)
        session.setdefault(FORM_KEY, secrets.token_urlsafe(18))
        wanted = request.args.get("center", "")
        if any(wanted == choice.value for choice in form.billing_center.choices):
            form.billing_center.data = wanted
    if form.validate_on_submit():
        ticket = _open(form)
        return redirect(url_for("helpcenter.tracking", number=ticket.id, key=ticket.access_key))
    return render_template("billing_desk/new.html", form=form,
                           latest=latest_charge_date().isoformat())


def _open(form: BillingForm) -> Any:
    kind = form.request_kind.data
    center = form.billing_center.data or ""
    form_data: dict[str, Any] = {"request_kind": kind}
    if center:
        form_data["billing_center"] = center
    if (form.transaction_id.data or "").strip():
        form_data["transaction_id"] = form.transaction_id.data.strip()
    amount = getattr(form, "amount_value", None)
    if amount is not None:
        form_data["amount"] = str(amount)
        form_data["currency"] = form.currency.data
    if form.charged_on.data is not None:
        form_data["charged_on"] = form.charged_on.data.isoformat()
    category = billing_category()
    subject = f"{REQUEST_LABELS[kind]}" + (f": {center}" if center else "")
    return open_ticket(
        identity=Identity(kind=IdentityKind.EMAIL, value=form.email.data.strip(),
                          name=form.name.data.strip()),
        subject=subject, text=form.description.data.strip(), channel="web", category=category,
        user_type_id=category.user_type_id if category else None, form_data=form_data,
        language=language(), external_id=_submission_id(form.submission.data))
