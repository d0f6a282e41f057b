"""Optional: a language model writes the bot's answer from the retrieved articles only.

Speaks the OpenAI-compatible ``/v1/chat/completions`` protocol (Ollama, vLLM or
a hosted service). With no model configured, or when the model fails or is
slow, the bot lists the articles instead; when the model says the articles do
not cover the question, the bot hands over rather than guessing.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.request
from typing import Any

from core.hookspecs import Suggestion
from core.state import loket

log = logging.getLogger(__name__)

NOT_COVERED = object()
MARKER = "NOT_COVERED"
_LANGUAGE_NAMES = {"en": "English", "id": "Indonesian (formal, using 'Anda')",
                   "fil": "Filipino (Taglish is fine)"}


def answer(question: str, articles: list[Suggestion], language: str) -> Any:
    """The model's answer citing articles as [1], [2]...; ``NOT_COVERED``; or "" (list them)."""
    settings = loket().config.plugin("livechat")
    if not settings["llm_url"] or not settings["llm_model"]:
        return ""
    sources = "\n\n".join(f"[{i}] {a.title} ({a.url})\n{a.excerpt}"
                          for i, a in enumerate(articles, 1))
    system = (
        "You are a help desk assistant. Answer ONLY from the numbered articles below; "
        "cite every fact with its article number like [1]. If the articles do not answer "
        f"the question, reply with exactly {MARKER} and nothing else. Never guess. "
        f"Answer in {_LANGUAGE_NAMES.get(language, 'English')}.\n\nArticles:\n{sources}")
    body = {"model": settings["llm_model"], "temperature": 0,
            "messages": [{"role": "system", "content": system},
                         {"role": "user", "content": question[:4000]}]}
    request = urllib.request.Request(
        settings["llm_url"] + "/v1/chat/completions", data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json",
                 **({"Authorization": f"Bearer {settings['llm_key']}"}
                    if settings["llm_key"] else {})})
    try:
        with urllib.request.urlopen(request, timeout=settings["llm_timeout"]) as response:
            reply = json.loads(response.read(1_000_000))
        text = str(reply["choices"][0]["message"]["content"] or "").strip()
    except Exception as exc:  # slow, down or answering nonsense: the articles still help
        log.warning("livechat: the language model did not answer (%s); listing articles", exc)
        return ""
    if not text or MARKER in text:
        return NOT_COVERED
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", text)}
    if not cited or not cited <= set(range(1, len(articles) + 1)):
        # No citation, or one to an article it was not given: it answered beyond them.
        return NOT_COVERED
    links = "\n".join(f"[{i}] {articles[i - 1].title}: {articles[i - 1].url}"
                      for i in sorted(cited))
    return f"{text}\n\n{links}"
