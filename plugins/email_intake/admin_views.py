"""The console's mailbox pages: set up mailboxes, read their fetch state, test a connection.

Admins only. Passwords are write-only: the form has empty password fields that
replace the stored (encrypted) password only when filled in; neither the
password nor its ciphertext is ever put on a page.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_admin import expose
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup
from wtforms import PasswordField, SelectField
from wtforms.validators import Optional, ValidationError

from admin.base import AdminForm, SecuredModelView
from core.models import utcnow

from .mailboxes import AFTER_INGEST, SECURITY, Mailbox

SMTP_SECURITY = ("starttls", "ssl", "none")


def _test_button(view: Any, context: Any, model: Mailbox, name: str) -> Markup:
    # A POST form per row (CSRF token included): testing signs in to a server.
    return Markup(
        '<form method="post" action="{}" class="d-inline">'
        '<input type="hidden" name="csrf_token" value="{}">'
        '<input type="hidden" name="id" value="{}">'
        '<button type="submit" class="btn btn-sm btn-secondary">Test connection</button>'
        "</form>").format(url_for(".test_view"), generate_csrf(), model.id)


def _name_link(view: Any, context: Any, model: Mailbox, name: str) -> Markup:
    return Markup('<a href="{}">{}</a>').format(url_for(".details", mailbox_id=model.id),
                                                model.name)


def _error(view: Any, context: Any, model: Mailbox, name: str) -> str:
    if not model.last_error:
        return ""
    return f"{model.last_error[:300]} ({model.failures} in a row)"


def _uid_state(view: Any, context: Any, model: Mailbox, name: str) -> str:
    if model.uidvalidity is None:
        return "not read yet"
    return f"UIDVALIDITY {model.uidvalidity}, last UID {model.last_uid}"


class MailboxView(SecuredModelView):
    """Mailboxes read over IMAP (admins only)."""

    column_list = ("name", "address", "enabled", "imap_host", "folder", "state", "fetched",
                   "last_success_at", "last_error", "lease_owner", "test")
    column_labels = {"imap_host": "IMAP server", "state": "Fetch state",
                     "last_success_at": "Last success", "lease_owner": "Read by",
                     "test": ""}
    column_formatters = {"test": _test_button, "last_error": _error, "state": _uid_state,
                         "name": _name_link}
    column_searchable_list = ("name", "address")
    column_filters = ("enabled",)
    column_default_sort = "name"
    form_columns = ("name", "address", "enabled", "imap_host", "imap_port", "imap_security",
                    "imap_user", "new_password", "folder", "after_ingest", "move_to",
                    "default_category", "department", "from_name", "from_address",
                    "smtp_host", "smtp_port", "smtp_security", "smtp_user",
                    "new_smtp_password")
    form_extra_fields = {
        "imap_security": SelectField("IMAP security", choices=[(s, s) for s in SECURITY],
                                     default="ssl"),
        "new_password": PasswordField(
            "IMAP password", validators=[Optional()],
            description="Stored encrypted, never shown. Leave empty to keep the current one."),
        "after_ingest": SelectField("After a message is stored",
                                    choices=[("seen", "flag it as seen"),
                                             ("move", "move it to the folder below")],
                                    default="seen"),
        "smtp_security": SelectField("SMTP security", choices=[(s, s) for s in SMTP_SECURITY],
                                     default="starttls"),
        "new_smtp_password": PasswordField(
            "SMTP password", validators=[Optional()],
            description="Only with an SMTP server of this mailbox's own. Stored encrypted."),
    }
    form_args = {
        "imap_port": {"description": "0: 993 with ssl, 143 with starttls."},
        "from_name": {"description": "Replies on this mailbox's tickets go out under this "
                                     "name (empty: the desk's)."},
        "from_address": {"description": "… and from this address (empty: the mailbox's)."},
        "smtp_host": {"description": "Empty: replies go through the desk's SMTP server."},
    }

    def on_model_change(self, form: Any, model: Mailbox, is_created: bool) -> None:
        for name in ("new_password", "new_smtp_password"):
            model.__dict__.pop(name, None)
        model.name = (model.name or "").strip()
        model.address = (model.address or "").strip().lower()
        if "@" not in model.address:
            raise ValidationError("The mailbox address must be an email address.")
        if model.imap_security not in SECURITY or model.after_ingest not in AFTER_INGEST:
            raise ValidationError("Choose the security and what happens after ingest.")
        if model.after_ingest == "move" and not (model.move_to or "").strip():
            raise ValidationError("Name the folder stored mail moves to.")
        if model.imap_port is None or not 0 <= model.imap_port <= 65535:
            raise ValidationError("The IMAP port must be between 0 and 65535.")
        if form.new_password.data:
            model.set_password(form.new_password.data)
        elif is_created:
            raise ValidationError("A new mailbox needs its IMAP password.")
        if form.new_smtp_password.data:
            model.set_smtp_password(form.new_smtp_password.data)
        # A running reader sees the change and connects again with the new settings.
        model.updated_at = utcnow()

    @expose("/<int:mailbox_id>/")
    def details(self, mailbox_id: int, report: list[str] | None = None,
                report_ok: bool = False) -> Any:
        """One mailbox: its settings (never its passwords), fetch state, last error, failed
        mail, and the result of a connection test run from here."""
        from .failed import FailedMail
        from .mailboxes import MailboxArrival

        box = Mailbox.get_or_none(Mailbox.id == mailbox_id)
        if box is None:
            abort(404)
        failed = list(FailedMail.select().where(FailedMail.mailbox == box.address)
                      .order_by(FailedMail.id.desc()).limit(20))
        arrivals = MailboxArrival.select().where(MailboxArrival.mailbox == box.id).count()
        return self.render("email_intake/mailbox.html", box=box, failed=failed,
                           arrivals=arrivals, report=report, report_ok=report_ok)

    @expose("/test/", methods=("POST",))
    def test_view(self) -> Any:
        from .imap import check_connection

        if not AdminForm(request.form).validate():
            flash("The form expired; please try again.", "error")
            return redirect(url_for(".index_view"))
        raw_id = request.form.get("id", "")
        box = (Mailbox.get_or_none(Mailbox.id == int(raw_id))
               if raw_id.isascii() and raw_id.isdigit() and len(raw_id) < 10 else None)
        if box is None:
            flash("No such mailbox.", "error")
            return redirect(url_for(".index_view"))
        try:
            ok, report = check_connection(box)
        except Exception as exc:  # a password that no longer decrypts, a bad setting
            ok, report = False, [f"Failed: {exc}"]
        if request.form.get("back") == "details":
            # Shown on the mailbox's page itself (a test writes nothing, so no redirect).
            return self.details(box.id, report=report, report_ok=ok)
        flash(f"{box.name}: " + "; ".join(report), "success" if ok else "error")
        return redirect(url_for(".index_view"))
