from core.models import Ticket


def test_app_builds_and_migrates(ctx):
    assert Ticket.select().count() == 0
