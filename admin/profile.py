"""Every staff member's own profile: name, language and password."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, url_for
from flask_admin import expose
from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional

from core.db import write_transaction
from core.models import Staff
from core.passwords import MIN_PASSWORD_LENGTH, hash_password, verify_password

from .auth import end_sessions
from .base import STAFF, SecuredBaseView, current_staff


class ProfileForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    language = SelectField("Language", choices=[("en", "English"), ("id", "Indonesian"),
                                                ("fil", "Filipino")])
    current_password = PasswordField("Current password", validators=[Optional()])
    new_password = PasswordField(
        "New password", validators=[Optional(), Length(min=MIN_PASSWORD_LENGTH, max=1024)])
    confirm = PasswordField("New password again",
                            validators=[EqualTo("new_password", "The passwords differ.")])


class ProfileView(SecuredBaseView):
    roles = STAFF

    @expose("/", methods=("GET", "POST"))
    def index(self) -> Any:
        staff = current_staff()
        assert staff is not None
        form = ProfileForm(obj=staff)
        if form.validate_on_submit():
            updates: dict[Any, Any] = {Staff.name: form.name.data.strip(),
                                       Staff.language: form.language.data}
            if form.new_password.data:
                if not verify_password(staff.password_hash, form.current_password.data or ""):
                    form.current_password.errors = ["The current password is not right."]
                    return self.render("loket_admin/profile.html", form=form, staff=staff)
                updates[Staff.password_hash] = hash_password(form.new_password.data)
            with write_transaction():  # the new password and the ended sessions together
                Staff.update(updates).where(Staff.id == staff.id).execute()
                if form.new_password.data:
                    end_sessions(staff.id)  # this one too: every device signs in again
            flash("Profile saved." + (" Sign in again with the new password."
                                      if form.new_password.data else ""), "success")
            return redirect(url_for(".index"))
        return self.render("loket_admin/profile.html", form=form, staff=staff)
