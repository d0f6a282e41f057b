"""``loket social``: add accounts, register Telegram's webhook, check credentials."""

from __future__ import annotations

import json
import os
import sys

import click

from core.hookspecs import DeliveryError

from . import accounts, platforms, templates, vault
from .models import SocialAccount

SECRET_ENV = "LOKET_SOCIAL_ACCOUNT_{}"


def _read_secrets(platform: platforms.Platform, source: str) -> dict[str, str]:
    """Secrets from standard input (``name=value`` lines) or LOKET_SOCIAL_ACCOUNT_<NAME>."""
    values: dict[str, str] = {}
    if source == "stdin":
        for line in sys.stdin.read().splitlines():
            name, sep, value = line.partition("=")
            if sep and name.strip():
                values[name.strip().lower()] = value.strip()
    else:
        for name in platform.secret_names + platform.generated:
            value = os.environ.get(SECRET_ENV.format(name.upper()), "")
            if value:
                values[name] = value
    missing = [name for name in platform.secret_names if not values.get(name)]
    if missing:
        where = ("standard input" if source == "stdin" else
                 ", ".join(SECRET_ENV.format(n.upper()) for n in missing))
        raise click.UsageError(f"missing secret(s) {', '.join(missing)} (from {where})")
    return values


@click.group("social")
def social() -> None:
    """Telegram, WhatsApp and Messenger accounts."""


@social.command("add")
@click.argument("platform_name", metavar="PLATFORM", type=click.Choice(platforms.names()))
@click.option("--name", required=True, help="The account's name in the console.")
@click.option("--handle", default="", help="Bot user name, WhatsApp number or page name.")
@click.option("--external-id", default="", help="WhatsApp phone number id; Messenger page id.")
@click.option("--template", "template_name", default="",
              help="WhatsApp: approved template sent outside the 24-hour window.")
@click.option("--template-language", default="en", show_default=True)
@click.option("--template-parameters", default="",
              help="WhatsApp: the ticket values that fill the template's variables {{1}}, "
                   "{{2}}, ... in order, comma-separated: name, number, subject, agent, "
                   "department, reply.")
@click.option("--secrets-from", type=click.Choice(["stdin", "env"]), default="stdin",
              show_default=True,
              help="Read secrets as name=value lines on standard input, or from "
                   "LOKET_SOCIAL_ACCOUNT_TOKEN, _APP_SECRET, _VERIFY_TOKEN. Never from arguments.")
def add(platform_name: str, name: str, handle: str, external_id: str, template_name: str,
        template_language: str, template_parameters: str, secrets_from: str) -> None:
    """Create an account and print the webhook URL to give the platform."""
    platform = platforms.get(platform_name)
    try:
        template_parameters = templates.parse(template_parameters)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    values = {**platform.new_secrets(), **_read_secrets(platform, secrets_from)}
    if SocialAccount.select().where(SocialAccount.name == name).exists():
        raise click.UsageError(f"an account named {name!r} exists already")
    account = SocialAccount(platform=platform_name, name=name, handle=handle.lstrip("@"),
                            external_id=external_id, template_name=template_name,
                            template_language=template_language,
                            template_parameters=template_parameters)
    vault.write(account, values)
    account.save()
    click.echo(f"account {account.id} ({platform.label}) created")
    click.echo(f"webhook URL: {accounts.webhook_url(account)}")
    if "verify_token" in platform.generated:
        click.echo(f"verify token: {vault.secret(account, 'verify_token')}")


@social.command("telegram-webhook")
@click.argument("account_name", metavar="ACCOUNT")
def telegram_webhook(account_name: str) -> None:
    """Register the account's webhook with Telegram (setWebhook with its secret token)."""
    account = accounts.named(account_name)
    if account is None or account.platform != "telegram":
        raise click.UsageError(f"no Telegram account {account_name!r}")
    try:
        answer = platforms.get("telegram").register_webhook(account, accounts.webhook_url(account))
    except DeliveryError as exc:
        raise click.ClickException(f"Telegram refused: {exc}") from None
    click.echo(json.dumps(answer))


@social.command("check")
def check() -> None:
    """Check every enabled account's credentials against its platform."""
    failed = 0
    for account in SocialAccount.select().where(SocialAccount.enabled).order_by(SocialAccount.id):
        platform = platforms.get(account.platform)
        try:
            click.echo(f"ok      {account.name} ({platform.label}): {platform.check(account)}")
        except (DeliveryError, RuntimeError) as exc:
            failed += 1
            click.echo(f"FAILED  {account.name} ({platform.label}): {exc}")
    if failed:
        sys.exit(1)


@social.command("rotate-secrets")
def rotate_secrets() -> None:
    """Re-encrypt every account's secrets under the current key (after a key rotation), so
    the old key can be dropped from LOKET_OLD_SECRET_KEYS or LOKET_SOCIAL_SECRETS_KEY."""
    ring = vault.keyring()
    rewritten = unreadable = 0
    for account in SocialAccount.select().order_by(SocialAccount.id):
        if not account.secrets or ring.is_current(account.secrets):
            continue
        try:
            account.secrets = ring.rotate(account.secrets)
        except ValueError:
            unreadable += 1
            click.echo(f"FAILED  {account.name}: no key opens its secrets; enter them again")
            continue
        account.save(only=[SocialAccount.secrets])
        rewritten += 1
    click.echo(f"{rewritten} account(s) re-encrypted under the current key")
    if unreadable:
        sys.exit(1)
