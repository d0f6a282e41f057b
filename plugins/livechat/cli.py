"""``loket chat``: the live-chat socket server, alone on its host or beside ``loket serve``."""

from __future__ import annotations

import logging

import click
from flask import current_app

from core.state import loket


@click.command("chat")
@click.option("--bind", default=None, metavar="HOST:PORT",
              help="Address to listen on (default: LOKET_LIVECHAT_BIND).")
def chat(bind: str | None) -> None:
    """Serve the live-chat widget's WebSockets (an asyncio process)."""
    from .server import run

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    address = bind or loket().config.plugin("livechat")["bind"]
    host, _, port = address.rpartition(":")
    app = current_app._get_current_object()  # the app the command runs in
    run(app, host.strip("[]") or "127.0.0.1", int(port))
