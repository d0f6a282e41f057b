"""JSON API v1 (placeholder until the API lands)."""

from flask import Blueprint

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")
