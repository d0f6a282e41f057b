"""The failed-mail list in the console: admins only, retry (POST with CSRF) and download."""

from __future__ import annotations

from typing import Any

from flask import Response, abort, flash, redirect, request
from flask_admin import expose

from admin.base import SecuredView

from .failed import FailedMail, retry

PAGE = 50


class FailedMailView(SecuredView):
    """Mail that became no ticket message; the raw original stays until retried."""

    @expose("/")
    def index(self) -> Any:
        try:
            page = max(0, min(int(request.args.get("page", 0)), 100_000))
        except ValueError:
            abort(400)
        rows = list(FailedMail.select(
            FailedMail.id, FailedMail.received_at, FailedMail.via, FailedMail.mailbox,
            FailedMail.outcome, FailedMail.reason, FailedMail.sender, FailedMail.subject,
            FailedMail.raw_size, FailedMail.retried_at, FailedMail.retry_outcome,
            FailedMail.ticket_number)
            .order_by(FailedMail.id.desc()).offset(page * PAGE).limit(PAGE))
        return self.render("email_intake/failed.html", rows=rows, page=page, size=PAGE)

    def _row(self, row_id: int) -> FailedMail:
        row = FailedMail.get_or_none(FailedMail.id == row_id)
        if row is None:
            abort(404)
        return row

    @expose("/<int:row_id>/retry", methods=("POST",))
    def retry(self, row_id: int) -> Any:
        outcome = retry(self._row(row_id))
        flash(f"Mail {row_id} ingested again: {outcome}.", "info")
        return redirect(self.get_url(".index"))

    @expose("/<int:row_id>/raw")
    def raw(self, row_id: int) -> Any:
        """The original as received, downloaded; never served inline."""
        row = self._row(row_id)
        response = Response(bytes(row.raw), mimetype="application/octet-stream")
        response.headers["Content-Disposition"] = f'attachment; filename="failed-mail-{row.id}.eml"'
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
        return response
