"""Customer HTML made safe to show an agent, and plain text made into HTML."""

from __future__ import annotations

import re

import nh3
from markupsafe import Markup, escape

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "div", "em", "h1", "h2", "h3", "h4", "hr",
    "i", "li", "ol", "p", "pre", "s", "span", "strong", "sub", "sup", "table", "tbody", "td",
    "th", "thead", "tr", "u", "ul",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "td": {"colspan", "rowspan"},
                      "th": {"colspan", "rowspan"}}


def clean_html(html: str) -> str:
    """Keep structure and links; drop scripts, styles, event handlers and remote images.

    Remote images are dropped because they would tell the sender when an agent
    opened the message.
    """
    return nh3.clean(
        html or "",
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


_URL = re.compile(r"https?://[^\s<>\"']+")


def text_to_html(text: str) -> Markup:
    """Escape plain text, keep its line breaks and make bare links clickable."""
    escaped = str(escape(text or ""))

    def link(match: re.Match[str]) -> str:
        url = match.group(0)
        return f'<a href="{url}" rel="noopener noreferrer nofollow">{url}</a>'

    linked = _URL.sub(link, escaped)
    return Markup(linked.replace("\r\n", "\n").replace("\n", "<br>\n"))


def storable(text: str | None) -> str:
    """Text every database can hold: no NUL characters, no unpaired surrogates.

    Real mail carries both (a broken charset, a C string cut short); PostgreSQL
    refuses them, and a message must never be lost over one bad character.
    """
    if not text:
        return ""
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text
