"""The console and CLI side of the social plugin: accounts, the reply window, help-center links."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from core import db as core_db
from core import hookimpl
from core.hookspecs import ChannelSpec
from core.models import Ticket
from core.services.tickets import Identity, open_ticket

from .processes import desk_env
from .test_admin_helpers import csrf_token, sign_in

REPO = Path(__file__).resolve().parents[1]


class Kiosk:
    """A channel with a two-hour reply window, owned by no real platform: the page is generic."""

    @hookimpl
    def register_channels(self) -> list[ChannelSpec]:
        return [ChannelSpec("kiosk", "Kiosk", can_push=True, identity_kind="kiosk",
                            reply_window=dt.timedelta(hours=2))]


def _console(make_app: Any, **config: Any) -> tuple[Any, Any, Any]:
    app = make_app(plugins=["social"], extra_plugins=(Kiosk(),), **config)
    app.config["WTF_CSRF_ENABLED"] = True
    with app.app_context(), core_db.connection():
        from .factories import build_desk

        desk = build_desk()
    return app, app.test_client(), desk


def test_the_ticket_page_shows_the_time_left_and_warns_outside_the_window(make_app):
    app, client, desk = _console(make_app)
    with app.app_context(), core_db.connection():
        ticket = open_ticket(identity=Identity("kiosk", "k-1", name="Kim"), subject="Help",
                             text="My card is stuck", channel="kiosk", category=desk.login)
        web = open_ticket(identity=Identity("email", "w@example.test"), subject="Web",
                          text="hello", category=desk.login)
    sign_in(client, "admin@desk.test")
    page = client.get(f"/admin/ticket/{ticket.id}/").get_data(as_text=True)
    assert re.search(r"Reply window: 1 h 5\d min left", page)
    assert "Send reply" in page and "Outside the reply window" not in page
    with app.app_context(), core_db.connection():
        Ticket.update(last_customer_message_at=ticket.last_customer_message_at
                      - dt.timedelta(hours=5)).where(Ticket.id == ticket.id).execute()
    page = client.get(f"/admin/ticket/{ticket.id}/").get_data(as_text=True)
    assert "Outside the reply window" in page
    assert re.search(r"closed (2 h 59|3 h 0) min ago", page)
    assert "Send outside the window" in page
    # A channel without a window shows neither.
    page = client.get(f"/admin/ticket/{web.id}/").get_data(as_text=True)
    assert "reply window" not in page.lower()


def test_admins_add_accounts_in_the_console_secrets_are_write_only_and_the_url_is_shown(make_app):
    from plugins.social import vault
    from plugins.social.models import SocialAccount

    app, client, desk = _console(make_app)
    sign_in(client, "admin@desk.test")
    token = csrf_token(client, "/admin/social_accounts/new/")
    response = client.post("/admin/social_accounts/new/", data={
        "csrf_token": token, "name": "Payouts bot", "platform": "telegram",
        "handle": "payouts_bot", "enabled": "y", "token": "999:SECRET-BOT-TOKEN",
        "template_language": "en"})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    with app.app_context(), core_db.connection():
        account = SocialAccount.get(SocialAccount.name == "Payouts bot")
        assert "SECRET-BOT-TOKEN" not in account.secrets  # encrypted at rest
        assert vault.secret(account, "token") == "999:SECRET-BOT-TOKEN"
        webhook_secret = vault.secret(account, "webhook_secret")
        assert len(webhook_secret) >= 24  # made for it
    listing = client.get("/admin/social_accounts/").get_data(as_text=True)
    assert f"http://desk.test/social/telegram/{account.slug}" in listing
    edit = client.get(f"/admin/social_accounts/edit/?id={account.id}").get_data(as_text=True)
    assert "SECRET-BOT-TOKEN" not in edit and webhook_secret not in edit
    # Saving with the secret fields empty keeps the secrets.
    token = csrf_token(client, f"/admin/social_accounts/edit/?id={account.id}")
    client.post(f"/admin/social_accounts/edit/?id={account.id}", data={
        "csrf_token": token, "name": "Payouts bot", "platform": "telegram",
        "handle": "payouts_bot", "template_language": "en"})
    with app.app_context(), core_db.connection():
        account = SocialAccount.get_by_id(account.id)
        assert vault.secret(account, "token") == "999:SECRET-BOT-TOKEN"
        assert not account.enabled
    client.get("/admin/logout")
    sign_in(client, "agent@desk.test")
    assert client.get("/admin/social_accounts/").status_code == 403
    assert client.get("/admin/social_inbox/").status_code == 403


def test_enabled_accounts_appear_on_the_help_center_as_links_to_the_conversation(make_app):
    from plugins.social import vault
    from plugins.social.models import SocialAccount

    app = make_app(plugins=["social"])
    with app.app_context(), core_db.connection():
        for platform, handle, enabled in (("telegram", "loket_bot", True),
                                          ("whatsapp", "+62 811 000 111", True),
                                          ("messenger", "loket.page", False)):
            account = SocialAccount(platform=platform, name=platform, handle=handle,
                                    enabled=enabled)
            vault.write(account, {"token": "t"})
            account.save()
    page = app.test_client().get("/").get_data(as_text=True)
    assert 'href="https://t.me/loket_bot"' in page
    assert 'href="https://wa.me/62811000111"' in page
    assert "m.me/" not in page
    assert "Message us on Telegram" in page


def test_loket_social_add_reads_secrets_from_stdin_and_prints_the_webhook_url(make_app, db_url):
    from plugins.social import vault
    from plugins.social.models import SocialAccount

    app = make_app(plugins=["social"])
    env = desk_env(app.extensions["loket"], db_url, LOKET_PLUGINS="social")
    result = subprocess.run(
        [sys.executable, "-m", "core.cli", "social", "add", "whatsapp", "--name", "WA Jakarta",
         "--handle", "+62 811 000 111", "--external-id", "1122334455667",
         "--template", "follow_up", "--template-language", "id"],
        input="token=EAAG-secret-token\napp_secret=meta-app-secret\n", text=True,
        capture_output=True, cwd=REPO, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    with app.app_context(), core_db.connection():
        account = SocialAccount.get(SocialAccount.name == "WA Jakarta")
        assert vault.secret(account, "token") == "EAAG-secret-token"
        assert vault.secret(account, "app_secret") == "meta-app-secret"
        assert account.template_name == "follow_up" and account.template_language == "id"
    assert f"webhook URL: http://desk.test/social/whatsapp/{account.slug}" in result.stdout
    assert "EAAG-secret-token" not in result.stdout
    # Missing secrets are refused, naming what is missing.
    missing = subprocess.run(
        [sys.executable, "-m", "core.cli", "social", "add", "telegram", "--name", "Bot",
         "--secrets-from", "env"], text=True, capture_output=True, cwd=REPO,
        env={**env, "LOKET_SOCIAL_ACCOUNT_TOKEN": ""}, timeout=120)
    assert missing.returncode != 0
    assert "LOKET_SOCIAL_ACCOUNT_TOKEN" in missing.stderr
    assert os.environ.get("LOKET_SOCIAL_ACCOUNT_TOKEN") is None


def test_every_customer_facing_string_of_the_plugin_has_indonesian_and_filipino():
    from babel.messages.extract import extract_from_file
    from babel.messages.pofile import read_po

    plugin = REPO / "plugins" / "social"
    wanted = set()
    for path in plugin.rglob("*.py"):
        if "migrations" not in path.parts:
            for _line, message, _comments, _context in extract_from_file("python", str(path)):
                wanted.add(message)
    assert "Message us on Telegram" in wanted
    for language in ("id", "fil"):
        with open(plugin / "translations" / language / "LC_MESSAGES" / "messages.po",
                  "rb") as fh:
            catalogue = read_po(fh)
        done = {m.id for m in catalogue if m.id and m.string}
        assert wanted <= done, (language, wanted - done)
        assert not list(catalogue.check())
