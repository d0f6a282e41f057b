"""The chat entry page."""

from __future__ import annotations

from flask import Blueprint, render_template, request

bp = Blueprint("livechat", __name__, url_prefix="/chat", template_folder="templates")


def agents_online() -> int:
    """Agents available for chat. No presence exists yet, so nobody is online."""
    return 0


@bp.get("/")
def start() -> str:
    return render_template("livechat/offline.html", online=agents_online(),
                           user_type=request.args.get("user_type", ""),
                           category=request.args.get("category", ""))
