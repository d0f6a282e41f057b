"""Email channel: shows the support address now; mailboxes and SMTP replies come next."""

from __future__ import annotations

from core import hookimpl
from core.hookspecs import ContactOption
from core.i18n import _
from core.settings import Setting

PLUGIN = "email_intake"


def _address(value: object) -> str:
    text = str(value or "").strip()
    if text and ("@" not in text or " " in text or text.startswith("@") or text.endswith("@")):
        raise ValueError(f"expected an email address, got {text!r}")
    return text


@hookimpl
def plugin_settings() -> list[Setting]:
    return [Setting("address", "", _address,
                    "The support address customers may write to; empty hides the option.")]


@hookimpl
def contact_channels(language: str) -> list[ContactOption]:
    from core.state import loket

    address = loket().config.plugin(PLUGIN)["address"]
    if not address:
        return []
    return [ContactOption(kind="email", label=_("Email us"), url=f"mailto:{address}",
                          description=address, order=30)]
