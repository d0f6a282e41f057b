"""The help center blueprint (placeholder until the web pages land)."""

from flask import Blueprint

bp = Blueprint("helpcenter", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static/loket")
