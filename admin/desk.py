"""What admins shape: user types, categories and their form fields, departments, staff, contacts."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from flask import flash, g, redirect, request, url_for
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.model import typefmt
from markupsafe import Markup
from wtforms import BooleanField, PasswordField, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length, Optional, Regexp, ValidationError

from core.models import (
    CannedReply,
    Category,
    CategoryField,
    Contact,
    ContactIdentity,
    Department,
    FieldKind,
    IdentityKind,
    Priority,
    Role,
    Staff,
    StaffDepartment,
    Ticket,
    UserType,
    utcnow,
)
from core.numbers import parse_id
from core.passwords import MIN_PASSWORD_LENGTH, hash_password
from core.services import names as names_kept
from core.services.contacts import add_identity
from core.services.tickets import Actor, merge_contacts

from .base import ADMIN_ONLY, STAFF, AdminForm, SecuredModelView, current_staff

SLUG = [Regexp(r"^[a-z0-9][a-z0-9-]*$", message="Lower-case letters, digits and dashes only.")]
FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def human_time(value: dt.datetime | None, now: dt.datetime | None = None) -> Markup:
    """A stored UTC time as agents read it: "3 h ago" or "in 2 days", the full time on hover."""
    if value is None:
        return Markup("")
    now = now or utcnow()
    seconds = (now - value).total_seconds()
    span = abs(seconds)
    if span < 60:
        relative = "just now"
    else:
        for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
            if span >= size:
                amount = int(span // size)
                words = f"{amount} {'day' if unit == 'days' and amount == 1 else unit}"
                break
        relative = f"{words} ago" if seconds > 0 else f"in {words}"
    # Digits, month names and the words above only: nothing here needs escaping (the
    # inbox shows two of these a row, and Markup.format escaped each part at some cost).
    # The title as strftime's "%b %Y %H:%M" writes it in the C locale, without strftime
    # (the inbox writes a hundred of these a page).
    return Markup(f'<time datetime="{value.isoformat(timespec="seconds")}Z" '
                  f'title="{value.day} {_MONTHS[value.month]} {value.year} '
                  f'{value.hour:02d}:{value.minute:02d} UTC">{relative}</time>')


_MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
           "Dec")


# Every console list shows times through human_time, never as raw database values.
TIME_FORMATTERS = {**typefmt.BASE_FORMATTERS,
                   dt.datetime: lambda view, value, name: human_time(value)}


class DeskModelView(SecuredModelView):
    """A list and form of the desk's set-up; times read as agents read them."""

    column_type_formatters = TIME_FORMATTERS


def _choices(values: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(value, value.replace("_", " ")) for value in values]


def _select(label: str, choices: list[tuple[str, str]], default: str | None = None) -> Any:
    # Flask-Admin's peewee forms ignore form_choices (the field stays a text box), so a
    # field with fixed values is replaced by a select of its own.
    return SelectField(label, choices=choices, default=default)


def category_labels() -> dict[int, str]:
    """Every category by its place, "Member › Payments › Refunds": two categories may share
    a name under different user types or parents. Made once per change of a name."""
    return request_names().made("labels", _labels)


def departments() -> list[tuple[int, str, bool]]:
    """Every department as (id, name, active), by name."""
    return request_names().made("departments", lambda names: [
        (d_id, name, active) for d_id, name, active, _slug in names.departments])


def staff_names() -> list[tuple[int, str, bool]]:
    """Every staff member as (id, name, active), by name."""
    return request_names().made("staff", lambda names: [
        (s_id, name, active) for s_id, name, active, _email in names.staff])


def request_names() -> names_kept.Names:
    """The names this request shows: the process's kept ones when the stamp the session's
    look-up read (``names_stamp``) is theirs, else read once for the request."""
    found = g.get("_loket_names")
    if found is None:
        found = g._loket_names = names_kept.read(g.get("_loket_names_stamp"))
    return found


def names_stamp(stamp: int | None) -> None:
    """Note the names' stamp the request's session look-up read (admin.auth)."""
    g._loket_names_stamp = stamp


def kept_by_names(what: str, make: Callable[[], Any]) -> Any:
    """``make()``, a value made only from the names and ``what``, kept with them: the
    console's escaped names and filter choices, once per change of a name in each worker."""
    return request_names().made(what, lambda _names: make())


def _labels(names: names_kept.Names) -> dict[int, str]:
    categories = names.categories
    labels = {}
    for category_id, (_name, _parent, user_type_name, _slug) in categories.items():
        parts, node_id, seen = [], category_id, set()
        while node_id and node_id in categories and node_id not in seen:  # a loop ends here
            seen.add(node_id)
            name, node_id = categories[node_id][:2]
            parts.append(name)
        labels[category_id] = " › ".join([user_type_name, *reversed(parts)])
    return labels


def category_label(category: Category | None) -> str:
    return "" if category is None else category_labels().get(category.id, category.name)


def _category_formatter(view: Any, context: Any, model: Any, name: str) -> str:
    return category_label(getattr(model, name))


class UserTypeView(DeskModelView):
    roles = ADMIN_ONLY
    column_list = ("position", "name", "slug", "active")
    column_default_sort = [("position", False), ("name", False)]
    form_columns = ("name", "slug", "description", "position", "active")
    form_args = {"slug": {"validators": SLUG}}
    column_searchable_list = ("name", "slug")

    def delete_in_use(self, model: UserType) -> str | None:
        if Category.select().where(Category.user_type == model).exists():
            return f"User type {model.name} still has categories; move or delete them first."
        if Ticket.select().where(Ticket.user_type == model).exists():
            return f"Tickets use user type {model.name}; deactivate it instead."
        return None


class CategoryView(DeskModelView):
    roles = ADMIN_ONLY
    column_list = ("user_type", "parent", "position", "name", "slug", "default_department",
                   "default_priority", "visible", "updated_at")
    column_default_sort = [("user_type", False), ("parent", False), ("position", False)]
    column_searchable_list = ("name", "slug")
    column_filters = ("visible", "default_priority")
    form_columns = ("user_type", "parent", "name", "slug", "description", "position",
                    "default_department", "default_priority", "visible")
    form_extra_fields = {"default_priority": _select(
        "Default priority", [(p, p.capitalize()) for p in Priority.ALL], Priority.NORMAL)}
    form_args = {"slug": {"validators": SLUG}, "parent": {"get_label": category_label}}
    column_formatters = {"parent": _category_formatter}
    inline_models = [(CategoryField, {
        # "id" must be there for Flask-Admin's peewee inline save; empty for new rows.
        "form_columns": ("id", "name", "label", "required", "choices", "help_text",
                         "position"),
        # Inline forms take no form_choices: the kind is a select of its own.
        "form_extra_fields": {"kind": SelectField("Kind", choices=_choices(FieldKind.ALL),
                                                  default=FieldKind.TEXT)},
        "form_args": {
            "id": {"validators": [Optional()]},
            "name": {"validators": [Regexp(FIELD_NAME, message="Field names: lower-case "
                                           "letters, digits and _ (e.g. transaction_id).")]},
            "choices": {"description": "For kind choice: one choice per line."}},
    })]

    def on_model_change(self, form: Any, model: Category, is_created: bool) -> None:
        if model.parent_id is not None:
            parent = Category.get_by_id(model.parent_id)
            if parent.user_type_id != model.user_type_id:
                raise ValidationError("The parent category belongs to another user type.")
            seen = {model.id} if model.id else set()
            node: Category | None = parent
            while node is not None:
                if node.id in seen:
                    raise ValidationError("A category cannot be inside itself.")
                seen.add(node.id)
                node = Category.get_or_none(Category.id == node.parent_id) \
                    if node.parent_id else None
        # The help center's cached forms read this to know they are stale.
        model.updated_at = utcnow()

    def delete_in_use(self, model: Category) -> str | None:
        if Ticket.select().where(Ticket.category == model).exists():
            return (f"Category {model.name} is used by tickets and cannot be deleted; "
                    "hide it instead (untick Visible).")
        if Category.select().where(Category.parent == model).exists():
            return f"Category {model.name} has sub-categories; move or delete them first."
        return None


class DepartmentView(DeskModelView):
    roles = ADMIN_ONLY
    column_list = ("name", "slug", "email", "escalates_to", "active")
    column_default_sort = "name"
    column_searchable_list = ("name", "slug")
    form_columns = ("name", "slug", "email", "escalates_to", "active")
    form_args = {"slug": {"validators": SLUG}}

    def on_model_change(self, form: Any, model: Department, is_created: bool) -> None:
        if model.id is not None and model.escalates_to_id == model.id:
            raise ValidationError("A department cannot escalate to itself.")

    def delete_in_use(self, model: Department) -> str | None:
        if Ticket.select().where(Ticket.department == model).exists():
            return (f"Department {model.name} has tickets and cannot be deleted; "
                    "deactivate it instead.")
        if Category.select().where(Category.default_department == model).exists():
            return (f"Department {model.name} is the default of some categories; "
                    "change them first.")
        return None


def _department_choices() -> list[tuple[str, str]]:
    return [(str(d.id), d.name) for d in Department.select().order_by(Department.name)]


class StaffView(DeskModelView):
    roles = ADMIN_ONLY
    # Hashes and tokens never leave the database.
    column_list = ("name", "email", "role", "active", "last_login_at", "failed_logins",
                   "locked_until")
    column_searchable_list = ("name", "email")
    column_filters = ("role", "active")
    column_default_sort = "name"
    form_columns = ("name", "email", "role", "active", "language", "locked_until",
                    "departments", "new_password")
    form_extra_fields = {
        "role": _select("Role", _choices(Role.ALL), Role.AGENT),
        "new_password": PasswordField(
            "New password", validators=[Optional()],
            description=f"At least {MIN_PASSWORD_LENGTH} characters. Leave empty to keep "
                        "the current one."),
        "departments": SelectMultipleField("Departments", choices=_department_choices,
                                           coerce=int),
    }
    form_widget_args = {"locked_until": {"placeholder": "empty: not locked"}}
    can_delete = False  # agents leave an audit trail; deactivate them instead

    def on_form_prefill(self, form: Any, id: Any) -> None:
        staff = Staff.get_by_id(id)
        form.departments.data = sorted(staff.department_ids())

    def on_model_change(self, form: Any, model: Staff, is_created: bool) -> None:
        model.email = (model.email or "").strip().lower()
        for name in ("new_password", "departments"):
            model.__dict__.pop(name, None)
        password = form.new_password.data or ""
        if is_created and not password:
            raise ValidationError("A new staff member needs a password.")
        if password:
            try:
                model.password_hash = hash_password(password)
            except ValueError as exc:
                raise ValidationError(str(exc)) from None
        me = current_staff()
        if me is not None and model.id == me.id and (model.role != Role.ADMIN or not model.active):
            raise ValidationError("You cannot remove your own admin role or deactivate yourself.")
        if model.locked_until is None:
            model.failed_logins = 0

    def after_model_change(self, form: Any, model: Staff, is_created: bool) -> None:
        wanted = set(form.departments.data or [])
        StaffDepartment.delete().where((StaffDepartment.staff == model)
                                       & (StaffDepartment.department.not_in(wanted))).execute()
        have = model.department_ids()
        for department_id in sorted(wanted - have):
            StaffDepartment.create(staff=model, department=department_id)


class IdentityForm(AdminForm):
    kind = SelectField("Kind", choices=[
        (k, k) for k in (IdentityKind.EMAIL, IdentityKind.TELEGRAM, IdentityKind.WHATSAPP,
                         IdentityKind.MESSENGER, IdentityKind.CHAT, IdentityKind.PLATFORM)])
    value = StringField("Value", validators=[DataRequired(), Length(max=254)])
    verified = BooleanField("Verified")


class ContactView(DeskModelView):
    roles = ADMIN_ONLY
    column_list = ("id", "name", "email", "language", "user_type", "merged_into", "created_at")
    column_searchable_list = ("name", "email")
    column_default_sort = ("id", True)
    column_filters = ("language",)
    form_columns = ("name", "email", "language", "user_type")
    # Identities are added through core.services.contacts.add_identity (normalised, refused
    # when another contact has one, contact_identified fired), never edited as raw rows.
    edit_template = "loket_admin/contact_edit.html"
    simple_list_pager = True

    def render(self, template: str, **kwargs: Any) -> Any:
        model = kwargs.get("model")
        if template == self.edit_template and model is not None:
            kwargs["identities"] = list(ContactIdentity.select().where(
                ContactIdentity.contact == model).order_by(ContactIdentity.id))
            kwargs["identity_form"] = IdentityForm()
        return super().render(template, **kwargs)

    @expose("/identity/", methods=("POST",))
    def add_identity_view(self) -> Any:
        form = IdentityForm(request.form)
        contact = Contact.get_or_none(Contact.id == parse_id(request.form.get("contact", "")))
        if contact is None:
            flash("No such contact.", "error")
            return redirect(url_for(".index_view"))
        back = redirect(url_for(".edit_view", id=contact.id))
        if not form.validate():
            for errors in form.errors.values():
                for error in errors:
                    flash(str(error), "error")
            return back
        try:
            add_identity(contact, form.kind.data, form.value.data, verified=form.verified.data)
        except ValueError as exc:
            flash(str(exc), "error")
        else:
            flash("Identity added.", "success")
        return back

    def delete_in_use(self, model: Contact) -> str | None:
        if Ticket.select().where(Ticket.contact == model).exists():
            return (f"{model} has tickets and cannot be deleted; merge them into "
                    "another contact instead.")
        return None

    @action("merge", "Merge contacts")
    def action_merge(self, ids: Any) -> Any:
        contacts = list(Contact.select().where(Contact.id << [parse_id(i) for i in ids])
                        .order_by(Contact.id))
        if len(contacts) < 2:
            flash("Select at least two contacts to merge.", "error")
            return None
        return self.render("loket_admin/contact_merge.html", contacts=contacts,
                           form=AdminForm(), return_url=url_for(".index_view"))

    @expose("/merge/", methods=("POST",))
    def merge_view(self) -> Any:
        form = AdminForm(request.form)
        if not form.validate():
            flash("The form expired; please try again.", "error")
            return redirect(url_for(".index_view"))
        ids = {n for n in map(parse_id, request.form.getlist("contact")) if n is not None}
        keep_id = parse_id(request.form.get("keep", ""))
        keep = Contact.get_or_none(Contact.id == keep_id) if keep_id in ids else None
        if keep is None:
            flash("Choose which contact to keep.", "error")
            return redirect(url_for(".index_view"))
        merged = 0
        for duplicate in Contact.select().where(Contact.id << sorted(ids - {keep.id})):
            merge_contacts(keep, duplicate, Actor.agent(current_staff()))
            merged += 1
        flash(f"Merged {merged} contact(s) into {keep}.", "success")
        return redirect(url_for(".index_view"))


class CannedReplyView(DeskModelView):
    """Prepared answers: agents keep their departments' and the shared ones."""

    roles = STAFF
    column_list = ("title", "department", "language", "created_by", "created_at")
    column_searchable_list = ("title", "body")
    column_default_sort = "title"
    form_columns = ("title", "body", "department", "language")
    form_extra_fields = {"language": _select("Language", [
        ("en", "English"), ("id", "Indonesian"), ("fil", "Filipino")], "en")}
    form_widget_args = {"body": {"rows": 8}}

    def get_query(self) -> Any:
        query = CannedReply.select()
        staff = current_staff()
        if staff is not None and not staff.is_admin:
            query = query.where(CannedReply.department.is_null()
                                | CannedReply.department.in_(list(staff.department_ids())))
        return query

    def get_one(self, id: Any) -> Any:
        return self.get_query().where(CannedReply.id == id).first()

    def on_model_change(self, form: Any, model: CannedReply, is_created: bool) -> None:
        staff = current_staff()
        if staff is not None and not staff.is_admin:
            if model.department_id is not None and model.department_id not in \
                    staff.department_ids():
                raise ValidationError("You can only keep replies for your own departments.")
        if is_created and staff is not None:
            model.created_by = staff
