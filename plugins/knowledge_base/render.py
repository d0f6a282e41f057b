"""Article bodies: Markdown rendered by markdown-it-py, then sanitised with nh3."""

from __future__ import annotations

import re

import nh3
from markdown_it import MarkdownIt

# Raw HTML in the Markdown is escaped, not passed through; nh3 then keeps only the tags an
# article needs, so even an admin's pasted <script> or onerror= never reaches a visitor.
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")

TAGS = {"a", "b", "blockquote", "br", "code", "em", "h2", "h3", "h4", "hr", "i", "li", "ol",
        "p", "pre", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul"}
ATTRIBUTES = {"a": {"href", "title"}, "td": {"style"}, "th": {"style"}}


def markdown_to_html(text: str) -> str:
    """Safe HTML for an article body (links get rel=noopener noreferrer nofollow)."""
    html = _markdown.render(text or "")
    return nh3.clean(html, tags=TAGS, attributes=ATTRIBUTES,
                     url_schemes={"http", "https", "mailto"},
                     link_rel="noopener noreferrer nofollow", strip_comments=True,
                     filter_style_properties={"text-align"})


_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_INLINE = re.compile(r"[*_`#>|]+")
_LIST_ITEM = re.compile(r"^\s*(?:[-+]|\d+\.)\s+", re.M)


def excerpt(text: str, length: int = 160) -> str:
    """The first words of a Markdown body as plain text, for result lists.

    Markdown's marks are dropped by pattern rather than by rendering: it runs for every
    suggestion while a customer types, and the result is escaped where it is shown.
    """
    plain = _LIST_ITEM.sub(" ", _LINK.sub(r"\1", (text or "")[: length * 3]))
    plain = _INLINE.sub("", plain)
    plain = " ".join(plain.split())
    if len(plain) <= length:
        return plain
    return plain[:length].rsplit(" ", 1)[0] + "…"
