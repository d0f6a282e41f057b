"""The billing desk in the console: centers, phrases, thresholds, the ticket panel, the report."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import defaultdict
from typing import Any

from flask import Response, abort, flash, redirect, render_template, url_for
from flask_admin import expose
from flask_wtf import FlaskForm
from markupsafe import Markup
from peewee import JOIN
from wtforms import SelectField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from admin import charts
from admin.base import ADMIN_ONLY, STAFF, SecuredBaseView, SecuredModelView, current_staff
from core.hookspecs import Panel
from core.models import IdentityKind, Staff, Ticket, utcnow
from core.services import tickets as service
from core.services.access import can_see, ticket_scope
from core.services.contacts import is_email_address
from core.state import loket

from .models import (
    BillingCase,
    BillingCenter,
    BillingPhrase,
    DisputeThreshold,
    PhraseKind,
    RequestKind,
    slugify,
)
from .money import CURRENCIES, format_amount
from .words import LANGUAGES, tokens

CATEGORY = "Billing"
REPORT_WEEKS = 12
FORWARD_MAX = 20_000


def _select(label: str, choices: list[tuple[str, str]], default: str | None = None) -> Any:
    # Flask-Admin's peewee forms ignore form_choices: a fixed list gets a select of its own.
    return SelectField(label, choices=[SelectChoice(v, t) for v, t in choices], default=default)


class BillingCenterView(SecuredModelView):
    roles = ADMIN_ONLY
    column_list = ("position", "name", "descriptors", "email", "phone", "department", "active")
    column_default_sort = [("position", False), ("name", False)]
    column_searchable_list = ("name", "descriptors")
    form_columns = ("name", "slug", "descriptors", "email", "phone", "website", "notes",
                    "department", "position", "active")
    # Made from the name when left empty (on_model_change), so not required on the form.
    form_args = {"slug": {"validators": [Optional(), Length(max=64)]}}
    column_descriptions = {
        "descriptors": "What card statements print for this center, one per line "
                       "(EPOCH.COM, EPOCH *SUPPORT); aliases customers use too.",
        "department": "Who works its tickets; empty: the billing department.",
        "slug": "Its tag on tickets; made from the name when left empty.",
    }

    def on_model_change(self, form: Any, model: BillingCenter, is_created: bool) -> None:
        model.slug = slugify(model.slug or model.name)
        model.email = (model.email or "").strip()
        model.website = (model.website or "").strip()
        if model.email and not is_email_address(model.email):
            raise ValidationError(f"{model.email!r} is not an email address.")
        if model.website and not re.match(r"^https?://[^\s/]+", model.website):
            raise ValidationError("The web page must start with http:// or https://.")
        short = [d for d in model.descriptor_list()
                 if len("".join(re.findall(r"[^\W\d_]+", d))) < 3]
        if short:
            raise ValidationError("A descriptor needs at least three letters (it would match "
                                  f"too much): {', '.join(short)}")
        model.updated_at = utcnow()

    def delete_in_use(self, model: BillingCenter) -> str | None:
        if BillingCase.select().where(BillingCase.center == model).exists():
            return f"Tickets name {model.name}; deactivate it instead."
        return None


class BillingPhraseView(SecuredModelView):
    roles = ADMIN_ONLY
    column_list = ("text", "language", "kind", "request_kind", "active")
    column_default_sort = [("language", False), ("kind", False), ("text", False)]
    column_searchable_list = ("text",)
    column_filters = ("language", "kind", "active")
    form_columns = ("text", "language", "kind", "request_kind", "active")
    form_extra_fields = {
        "language": _select("Language", [(code, code) for code in LANGUAGES], "en"),
        "kind": _select("Kind", [(k, k) for k in PhraseKind.ALL], PhraseKind.STRONG),
        "request_kind": _select("Request kind", [("", "—")] + [(k, k) for k in RequestKind.ALL],
                                ""),
    }
    column_descriptions = {
        "kind": "strong: billing on its own (refund). weak: only beside a context word "
                "(cancel). context: makes a weak word count (card). chargeback: billing, "
                "escalated at once.",
        "text": "A word or phrase; inflected and affixed forms match too (refund: refunded; "
                "tagihan: ditagih; bayad: nagbayad).",
    }

    def on_model_change(self, form: Any, model: BillingPhrase, is_created: bool) -> None:
        model.text = " ".join((model.text or "").split())
        if not tokens(model.text):
            raise ValidationError("A phrase needs at least one word.")


class DisputeThresholdView(SecuredModelView):
    roles = ADMIN_ONLY
    column_list = ("currency", "amount")
    form_columns = ("currency", "amount")
    form_extra_fields = {"currency": _select("Currency", [(c, c) for c in CURRENCIES])}
    column_descriptions = {"amount": "A dispute above this amount is escalated at once."}

    def on_model_change(self, form: Any, model: DisputeThreshold, is_created: bool) -> None:
        if model.amount is None or model.amount <= 0:
            raise ValidationError("The threshold must be more than zero.")


# -- The panel on the ticket page, and forwarding to the center ------------------------------


class ForwardForm(FlaskForm):
    center = SelectField("Billing center", choices=[], validate_choice=False)
    text = TextAreaField("Message to the billing center",
                         validators=[DataRequired(), Length(max=FORWARD_MAX)])


def email_can_send() -> bool:
    return bool(loket().channels.pushing_to(IdentityKind.EMAIL))


def _forward_text(ticket: Ticket, case: BillingCase | None) -> str:
    lines = [f"Hello, we ask for your help with a charge (our ticket #{ticket.id}).", ""]
    if case is not None:
        if case.transaction_id:
            lines.append(f"Transaction or order id: {case.transaction_id}")
        if case.amount is not None:
            lines.append(f"Amount: {format_amount(case.amount, case.currency)}")
        if case.charged_on:
            lines.append(f"Date of the charge: {case.charged_on.isoformat()}")
        if case.request_kind:
            lines.append(f"The customer asks for: {case.request_kind}")
    if ticket.contact.email:
        lines.append(f"Customer's email address: {ticket.contact.email}")
    lines += ["", "Thank you."]
    return "\n".join(lines)


def billing_panel(ticket: Ticket, staff: Staff) -> Panel | None:
    """The case and the center's contact, with the forward form, for a billing ticket."""
    case = BillingCase.get_or_none(BillingCase.ticket == ticket.id)
    if case is None:
        return None
    center = case.center if case.center_id else None
    centers = [c for c in BillingCenter.select().where(BillingCenter.active)
               .order_by(BillingCenter.position, BillingCenter.name) if c.email]
    form = ForwardForm(formdata=None, center=str(center.id) if center else "",
                       text=_forward_text(ticket, case))
    form.center.choices = [SelectChoice(str(c.id), f"{c.name} <{c.email}>") for c in centers]
    html = render_template("billing_desk/panel.html", ticket=ticket, case=case, center=center,
                           form=form, can_forward=email_can_send() and bool(centers),
                           amount=format_amount(case.amount, case.currency)
                           if case.amount is not None else "")
    return Panel(title="Billing", html=Markup(html), order=10)


class BillingForwardView(SecuredBaseView):
    """POST /admin/billing-forward/<number>: the panel's forward form."""

    roles = STAFF

    def is_visible(self) -> bool:
        return False

    @expose("/")
    def index(self) -> Any:
        return redirect(url_for("tickets.index_view"))

    @expose("/<int:number>", methods=("POST",))
    def forward(self, number: int) -> Any:
        staff = current_staff()
        ticket = Ticket.get_or_none(Ticket.id == number)
        # Not found and not yours look the same, as on the ticket page.
        if ticket is None or staff is None or not can_see(staff, ticket):
            abort(404)
        back = redirect(url_for("ticket.page", number=ticket.id))
        form = ForwardForm()
        if not form.validate_on_submit() or not (form.center.data or "").isdigit():
            flash("Choose a billing center and write a message.", "error")
            return back
        # Only to a listed, active center's address: the form cannot name another.
        center = BillingCenter.get_or_none((BillingCenter.id == int(form.center.data[:18]))
                                           & BillingCenter.active)
        if center is None or not center.email:
            flash("That billing center has no email address.", "error")
            return back
        try:
            service.forward_by_email(ticket, staff, center.email, form.text.data,
                                     subject=f"[#{ticket.id}] {ticket.subject}")
        except service.ServiceError as exc:
            flash(str(exc), "error")
        else:
            flash(f"Forwarded to {center.name} ({center.email}); the mail is queued and its "
                  "state shows on the ticket.", "success")
        return back


# -- The report ------------------------------------------------------------------------------


def _week(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def report_data(staff: Staff, weeks: int = REPORT_WEEKS,
                now: dt.datetime | None = None) -> dict[str, Any]:
    """Billing tickets per week, by center and by request kind, as the viewer may see them."""
    now = now or utcnow()
    first = _week(now.date()) - dt.timedelta(weeks=weeks - 1)
    labels = [(first + dt.timedelta(weeks=i)).isoformat() for i in range(weeks)]
    index = {label: i for i, label in enumerate(labels)}
    query = (BillingCase.select(BillingCase.created_at, BillingCase.request_kind,
                                BillingCenter.name.alias("name"))
             .join(Ticket, on=(BillingCase.ticket == Ticket.id))
             .switch(BillingCase)
             .join(BillingCenter, JOIN.LEFT_OUTER, on=(BillingCase.center == BillingCenter.id))
             .where(BillingCase.created_at >= dt.datetime.combine(first, dt.time())))
    scope = ticket_scope(staff)
    if scope is not None:
        query = query.where(scope)
    by_center: dict[str, list[int]] = defaultdict(lambda: [0] * weeks)
    by_kind: dict[str, list[int]] = defaultdict(lambda: [0] * weeks)
    for row in query.dicts():
        slot = index.get(_week(row["created_at"].date()).isoformat())
        if slot is None:
            continue
        by_center[row["name"] or "(unknown)"][slot] += 1
        by_kind[row["request_kind"] or "(not said)"][slot] += 1
    kinds = [k for k in RequestKind.ALL if k in by_kind] + sorted(
        k for k in by_kind if k not in RequestKind.ALL)
    return {"weeks": labels,
            "centers": {name: by_center[name] for name in sorted(by_center)},
            "kinds": {kind: by_kind[kind] for kind in kinds}}


def _cell(value: Any) -> Any:
    # A spreadsheet runs a cell that starts with = + - @ as a formula.
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else value


def to_csv(weeks: list[str], series: dict[str, list[int]], what: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["week", what, "tickets"])
    for name, values in series.items():
        for week, count in zip(weeks, values, strict=True):
            writer.writerow([week, _cell(name), count])
    return out.getvalue()


class BillingReportView(SecuredBaseView):
    """Billing tickets by center and by request kind over the last weeks, with their CSV."""

    roles = STAFF
    CHARTS = {"centers": "billing center", "kinds": "request kind"}

    @expose("/")
    def index(self) -> Any:
        staff = current_staff()
        data = report_data(staff)
        short = [w[5:] for w in data["weeks"]]
        return self.render(
            "billing_desk/report.html", weeks=REPORT_WEEKS,
            centers_chart=charts.stacked_bars("Billing tickets per week by billing center",
                                              short, data["centers"]),
            kinds_chart=charts.stacked_bars("Billing tickets per week by request kind", short,
                                            data["kinds"]))

    @expose("/<chart>.csv")
    def csv(self, chart: str) -> Any:
        if chart not in self.CHARTS:
            abort(404)
        data = report_data(current_staff())
        body = to_csv(data["weeks"], data[chart], self.CHARTS[chart])
        response = Response(body, mimetype="text/csv")
        response.headers["Content-Disposition"] = (
            f'attachment; filename="billing-{chart}-{data["weeks"][-1]}.csv"')
        return response


def views() -> list[Any]:
    return [
        BillingCenterView(BillingCenter, name="Billing centers", category=CATEGORY,
                          endpoint="billing_centers"),
        BillingPhraseView(BillingPhrase, name="Billing phrases", category=CATEGORY,
                          endpoint="billing_phrases"),
        DisputeThresholdView(DisputeThreshold, name="Dispute thresholds", category=CATEGORY,
                             endpoint="billing_thresholds"),
        BillingReportView(name="Billing report", category=CATEGORY, endpoint="billing_report",
                          url="billing-report"),
        BillingForwardView(name="Forward to billing center", endpoint="billing_forward",
                           url="billing-forward"),
    ]


__all__ = ["billing_panel", "report_data", "to_csv", "views"]
