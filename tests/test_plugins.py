"""The plugin system end to end: entry points, the enabled list, settings, and each plugin's hooks."""

from __future__ import annotations

import pytest

from core import db as core_db
from core import hookimpl
from core.config import ConfigError
from core.hookspecs import ChannelSpec, ContactOption, DeliveryResult, Suggestion
from core.migrate import status, upgrade
from core.models import Department, Ticket
from core.plugins import PluginError, build_manager, describe, fire, installed_plugins
from core.services import tickets
from core.services.suggestions import suggest
from core.services.tickets import Actor, Identity
from tests import sample_plugin
from tests.factories import build_desk

BUILT_IN = {"email_intake", "billing_desk", "social", "livechat"}


def channels(app, user_type=None, category=None, language="en"):
    with app.test_request_context("/"):
        found = app.extensions["loket"].hook.contact_channels(
            user_type=user_type, category=category, language=language)
        return [option for batch in found for option in batch]


def test_built_in_plugins_are_found_through_entry_points():
    assert BUILT_IN <= set(installed_plugins())


def test_a_plugin_not_enabled_is_never_imported(monkeypatch):
    import importlib.metadata
    import sys

    loaded = []
    real = importlib.metadata.EntryPoint.load

    def spy_load(self):
        loaded.append(self.name)
        return real(self)

    monkeypatch.setattr(importlib.metadata.EntryPoint, "load", spy_load)
    pm = build_manager(["social"])
    assert loaded == ["social"]
    assert pm.get_plugin("social") is not None and pm.get_plugin("livechat") is None
    assert "plugins.social" in sys.modules


def test_unknown_plugin_stops_start_up_with_one_line(make_app):
    with pytest.raises(PluginError) as info:
        make_app(plugins=["sla_reports"])
    assert "LOKET_PLUGINS" in str(info.value) and "\n" not in str(info.value)


def test_misspelt_hook_is_caught_at_start_up(make_app):
    class Typo:
        @hookimpl
        def ticket_creatd(self, ticket):
            pass

    with pytest.raises(PluginError, match="ticket_creatd"):
        make_app(extra_plugins=(Typo(),))


def test_describe_lists_versions_enabled_and_hooks_of_loaded_plugins(make_app):
    app = make_app(plugins=["billing_desk"])
    state = app.extensions["loket"]
    infos = {info.name: info for info in describe(state.pm, state.enabled)}
    assert BUILT_IN | {"console"} <= set(infos)
    billing, social = infos["billing_desk"], infos["social"]
    assert billing.enabled and billing.loaded and billing.version == "0.1.0"
    assert {"route_ticket", "contact_channels", "plugin_settings"} <= set(billing.hooks)
    assert infos["console"].enabled and "mount_console" in infos["console"].hooks
    assert (social.enabled, social.loaded, social.hooks) == (False, False, ())
    assert social.module == "plugins.social" and social.version == "0.1.0"


def test_describe_never_imports_a_disabled_plugin(make_app, monkeypatch):
    import importlib.metadata
    import sys

    app = make_app(plugins=["billing_desk"])
    state = app.extensions["loket"]
    monkeypatch.delitem(sys.modules, "plugins.social", raising=False)
    loaded = []
    real = importlib.metadata.EntryPoint.load
    monkeypatch.setattr(importlib.metadata.EntryPoint, "load",
                        lambda self: loaded.append(self.name) or real(self))
    infos = {info.name: info for info in describe(state.pm, state.enabled)}
    assert infos["social"].module == "plugins.social"
    assert loaded == [] and "plugins.social" not in sys.modules


# -- settings ----------------------------------------------------------------------------


def test_plugin_settings_are_declared_validated_and_read_from_the_environment(make_app,
                                                                          monkeypatch):
    monkeypatch.setenv("LOKET_SOCIAL_TELEGRAM_BOT", "@loket_help_bot")
    app = make_app(plugins=["social"])
    assert app.extensions["loket"].config.plugin("social")["telegram_bot"] == "loket_help_bot"
    monkeypatch.setenv("LOKET_SOCIAL_WHATSAPP_NUMBER", "call me")
    with pytest.raises(ConfigError) as info:
        make_app(plugins=["social"])
    assert str(info.value).startswith("LOKET_SOCIAL_WHATSAPP_NUMBER:")


def test_plugin_settings_of_a_disabled_plugin_are_unknown(make_app):
    with pytest.raises(ConfigError, match="unknown setting"):
        make_app(plugins=[], **{"social.telegram_bot": "x"})


# -- contributions -----------------------------------------------------------------------


def test_register_blueprints_mounts_only_enabled_plugins(make_app):
    on = make_app(plugins=["livechat"]).test_client()
    off = make_app(plugins=[]).test_client()
    assert on.get("/chat/").status_code == 200
    assert off.get("/chat/").status_code == 404


def test_register_models_gets_a_plugin_its_own_migrated_tables(make_app):
    app = make_app(extra_plugins=(sample_plugin,), migrate=False)
    state = app.extensions["loket"]
    assert "tests.sample_plugin" in state.migration_dirs
    done = upgrade(state)
    assert done["tests.sample_plugin"] == ["0001_ratings"]
    assert all(not unit.pending for unit in status(state))
    from tests.sample_plugin.models import SatisfactionRating

    with app.app_context(), core_db.connection():
        desk = build_desk()
        ticket = tickets.open_ticket(identity=Identity("email", "a@b.test"), subject="s",
                                     text="t", category=desk.login)
        SatisfactionRating.create(ticket=ticket, score=5)
        assert SatisfactionRating.select().count() == 1
    assert upgrade(state) == {"core": [], "tests.sample_plugin": []}  # idempotent


def test_contact_channels_email_intake_offers_the_address(make_app):
    app = make_app(plugins=["email_intake"], **{"email_intake.address": "help@desk.test"})
    options = channels(app)
    assert [(o.kind, o.url) for o in options] == [("email", "mailto:help@desk.test")]
    assert channels(make_app(plugins=["email_intake"])) == []  # no address: nothing shown
    with pytest.raises(ConfigError, match="LOKET_EMAIL_INTAKE_ADDRESS"):
        make_app(plugins=["email_intake"], **{"email_intake.address": "not an address"})


def test_contact_channels_social_links_each_configured_messenger(make_app):
    app = make_app(plugins=["social"], **{"social.telegram_bot": "loket_bot",
                                          "social.whatsapp_number": "+62 811-2345-678"})
    urls = [o.url for o in channels(app)]
    assert urls == ["https://t.me/loket_bot", "https://wa.me/628112345678"]


def test_contact_channels_livechat_leads_to_the_chat_page(make_app):
    app = make_app(plugins=["livechat"])
    with app.app_context(), core_db.connection():
        desk = build_desk()
        (option,) = channels(app, desk.member, desk.login)
    assert option.kind == "chat"
    assert option.url == "/chat/?user_type=member&category=registration-and-login"
    page = app.test_client().get(option.url)
    assert page.status_code == 200
    assert b"/help/member/registration-and-login/new" in page.data  # offline: leave a message


def test_contact_channels_billing_desk_only_on_billing_categories(make_app):
    app = make_app(plugins=["billing_desk"], **{"billing_desk.email": "billing@desk.test"})
    with app.app_context(), core_db.connection():
        desk = build_desk()
        assert [o.kind for o in channels(app, desk.member, desk.refunds)] == ["billing"]
        assert channels(app, desk.member, desk.login) == []


def test_route_ticket_billing_desk_sends_payment_tickets_to_billing(make_app):
    app = make_app(plugins=["billing_desk"])
    with app.app_context(), core_db.connection():
        desk = build_desk()
        refund = tickets.open_ticket(identity=Identity("email", "a@b.test"), subject="Refund",
                                     text="I was charged twice", category=desk.refunds)
        login = tickets.open_ticket(identity=Identity("email", "a@b.test"), subject="Login",
                                    text="locked out", category=desk.login)
        assert refund.department_id == desk.billing.id and "billing" in refund.tags
        assert login.department_id == desk.support.id  # core's default still applies


def test_route_ticket_billing_desk_without_its_department_falls_back(make_app):
    app = make_app(plugins=["billing_desk"], **{"billing_desk.department": "finance"})
    with app.app_context(), core_db.connection():
        desk = build_desk()
        assert not Department.select().where(Department.slug == "finance").exists()
        refund = tickets.open_ticket(identity=Identity("email", "a@b.test"), subject="Refund",
                                     text="I was charged twice", category=desk.refunds)
        assert refund.department_id == desk.support.id


def test_mount_console_mounts_the_built_in_console_by_default(make_app):
    client = make_app().test_client()
    page = client.get("/admin/")
    assert page.status_code == 302 and "/admin/login" in page.headers["Location"]


def test_mount_console_is_skipped_when_the_console_is_off(make_app):
    app = make_app(console=False)
    state = app.extensions["loket"]
    assert "console" not in state.enabled and state.pm.get_plugin("console") is None
    client = app.test_client()
    assert client.get("/admin/").status_code == 404
    assert client.get("/admin/login").status_code == 404
    assert client.get("/").status_code == 200  # the help center does not need it
    assert client.get("/api/v1/openapi.json").status_code == 200


def test_mount_console_first_console_wins(make_app):
    mounted = []

    class OtherConsole:
        @hookimpl
        def mount_console(self, app):
            mounted.append(app.name)
            return "other console"

    # Registered after the built-in console, so pluggy asks it first.
    app = make_app(extra_plugins=(OtherConsole(),))
    assert mounted == ["core"]
    assert app.test_client().get("/admin/").status_code == 404  # the built-in one never ran


def test_csrf_exempt_lets_a_plugin_webhook_post_without_a_token(make_app):
    from flask import Blueprint

    from core import csrf_exempt

    webhook = Blueprint("test_webhook", __name__, url_prefix="/test-webhook")
    form = Blueprint("test_form", __name__, url_prefix="/test-form")

    @webhook.post("/whole")
    def whole():
        return "taken"

    @form.post("/one")
    @csrf_exempt
    def one():
        return "taken"

    @form.post("/other")
    def other():
        return "taken"

    csrf_exempt(webhook)

    class Webhooks:
        @hookimpl
        def register_blueprints(self):
            return [webhook, form]

    client = make_app(extra_plugins=(Webhooks(),)).test_client()
    assert client.post("/test-webhook/whole", data="{}").status_code == 200
    assert client.post("/test-form/one", data="{}").status_code == 200
    assert client.post("/test-form/other", data="{}").status_code == 400  # still guarded


def test_contact_channels_with_no_plugins_is_empty(app):
    assert channels(app) == []


def test_suggest_answers_merges_plugins_by_score(make_app):
    class KnowledgeBase:
        @hookimpl
        def suggest_answers(self, query, limit):
            return [Suggestion("Reset your password", "/kb/reset", score=0.9),
                    Suggestion("Two-factor codes", "/kb/2fa", score=0.4)]

    class Forum:
        @hookimpl
        def suggest_answers(self, query, language):
            assert language == "id"
            return [Suggestion("Reset (forum)", "/kb/reset", score=0.95),
                    Suggestion("Login loops", "/forum/7", score=0.5)]

    app = make_app(extra_plugins=(KnowledgeBase(), Forum()))
    with app.app_context():
        found = suggest("lupa password", language="id", limit=2)
        assert [(s.url, s.score) for s in found] == [("/kb/reset", 0.95), ("/forum/7", 0.5)]
        assert suggest("hi", language="id") == []  # too short to search


# -- events ------------------------------------------------------------------------------


def test_fire_isolates_implementations_and_returns_their_errors(app):
    calls = []

    class Loud:
        @hookimpl
        def ticket_created(self, ticket):
            raise ValueError("boom")

    class Quiet:
        @hookimpl
        def ticket_created(self, ticket, message):
            calls.append((ticket, message))

    pm = app.extensions["loket"].pm
    pm.register(Loud())
    pm.register(Quiet())
    errors = fire(pm, "ticket_created", ticket="T", message="M")
    assert [str(e) for e in errors] == ["boom"] and calls == [("T", "M")]


def _spied(make_app, spy):
    app = make_app(extra_plugins=(spy,))
    return app


def test_message_added_fires_for_replies_notes_and_follow_ups(desk, spy):
    ticket = tickets.open_ticket(identity=Identity("email", "c@d.test"), subject="s", text="t",
                                 category=desk.login)
    assert spy.of("message_added") == []  # the first message rides on ticket_created
    tickets.add_customer_reply(ticket, "more")
    tickets.reply(ticket, desk.agent, "answer")
    tickets.add_note(ticket, desk.agent, "note")
    added = spy.of("message_added")
    assert [(m["message"].author_kind, m["message"].is_internal) for m in added] == [
        ("contact", False), ("staff", False), ("staff", True)]


def test_ticket_status_changed_carries_old_new_and_actor(desk, spy):
    ticket = tickets.open_ticket(identity=Identity("email", "c@d.test"), subject="s", text="t",
                                 category=desk.login)
    tickets.change_status(ticket, "open", Actor.agent(desk.agent))
    tickets.customer_resolve(ticket)
    calls = spy.of("ticket_status_changed")
    assert [(c["old"], c["new"]) for c in calls] == [("new", "open"), ("open", "resolved")]
    assert calls[0]["actor"].id == desk.agent.id and calls[1]["actor"] is None


def test_ticket_assigned_reports_old_and_new(desk, spy):
    ticket = tickets.open_ticket(identity=Identity("email", "c@d.test"), subject="s", text="t",
                                 category=desk.login)
    tickets.assign(ticket, desk.agent, Actor.agent(desk.admin))
    tickets.assign(ticket, None, Actor.agent(desk.admin))
    calls = spy.of("ticket_assigned")
    assert calls[0]["old"] is None and calls[0]["new"].id == desk.agent.id
    assert calls[1]["old"].id == desk.agent.id and calls[1]["new"] is None


def test_ticket_updated_lists_each_changed_field(desk, spy):
    ticket = tickets.open_ticket(identity=Identity("email", "c@d.test"), subject="s", text="t",
                                 category=desk.login)
    tickets.update_ticket(ticket, Actor.agent(desk.admin), department=desk.billing,
                          subject="Charged twice")
    (call,) = spy.of("ticket_updated")
    assert set(call["changes"]) == {"department", "subject"}
    assert Ticket.get_by_id(ticket.id).department_id == desk.billing.id


def test_ticket_escalated_follows_the_department_chain(desk, spy):
    ticket = tickets.open_ticket(identity=Identity("email", "c@d.test"), subject="s", text="t",
                                 category=desk.login)
    tickets.escalate(ticket, Actor.agent(desk.agent), "angry")
    tickets.escalate(ticket, Actor.agent(desk.agent), "angrier")  # management is the top
    calls = spy.of("ticket_escalated")
    assert [(c["old"].slug, c["new"].slug, c["level"]) for c in calls] == [
        ("support", "management", 1), ("management", "management", 2)]


def test_ticket_created_fires_once_per_ticket(desk, spy):
    tickets.open_ticket(identity=Identity("email", "c@d.test"), subject="s", text="t",
                        category=desk.login)
    assert len(spy.of("ticket_created")) == 1
    assert spy.of("ticket_created")[0]["message"].body_text == "t"


def test_contact_identified_fires_for_new_identities_only(desk, spy):
    for _ in range(2):
        tickets.open_ticket(identity=Identity("email", "New@Person.test"), subject="s",
                            text="t", category=desk.login)
    (call,) = spy.of("contact_identified")
    assert (call["kind"], call["value"]) == ("email", "new@person.test")


def test_deliver_message_is_asked_only_of_the_channels_owner(make_app):
    asked: dict[str, list[bool]] = {"owner": [], "other": []}

    class Owner:
        @hookimpl
        def register_channels(self):
            return [ChannelSpec("telegram", "Telegram", can_push=True,
                                identity_kind="telegram")]

        @hookimpl
        def deliver_message(self, message):
            asked["owner"].append(message.is_internal)
            return DeliveryResult(state="sent")

    class Other:  # answers deliver_message for everything, but owns no channel
        @hookimpl
        def deliver_message(self, message):
            asked["other"].append(message.is_internal)
            return DeliveryResult(state="sent")

    app = make_app(extra_plugins=(Owner(), Other()))
    with app.app_context(), core_db.connection():
        desk = build_desk()
        ticket = tickets.receive_message(channel="telegram", identity=Identity("telegram", "1"),
                                         text="t", notify=False).ticket
        tickets.add_note(ticket, desk.agent, "internal")
        tickets.reply(ticket, desk.agent, "public")
    assert asked == {"owner": [False], "other": []}


def test_contact_option_defaults():
    option = ContactOption(kind="email", label="Email", url="mailto:x@y")
    assert option.order == 100 and option.description == ""
