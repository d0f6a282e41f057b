"""A third-party-style plugin used by the tests: a model of its own with a migration."""

from core import hookimpl


@hookimpl
def register_models():
    from .models import SatisfactionRating

    return [SatisfactionRating]
