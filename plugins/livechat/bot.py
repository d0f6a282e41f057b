"""The assistant that answers a chat first, and knows when to pass it to a person.

It offers articles from ``suggest_answers``, asks whether they solved the
question, and hands over when the visitor asks for a person, when nothing
matches, or after two unhelpful answers, saying so every time. Once a person
has written in the chat it says nothing more. It speaks the visitor's language.
"""

from __future__ import annotations

import re

from flask_babel import force_locale

from core.i18n import _
from core.models import Message, Ticket
from core.services import suggestions

from .desk import human_replied, offer, say
from .models import Chat, ChatState

UNHELPFUL_LIMIT = 2

# What a visitor types to ask for a person or answer yes/no, in the desk's languages.
_PERSON = re.compile(r"\b(human|person|agent|operator|someone|staff|manusia|orang|petugas|"
                     r"operator|cs|tao|ahente)\b", re.I)
_YES = re.compile(r"^\s*(yes|yep|yeah|solved|thanks|thank you|ya|iya|sudah|terima kasih|oo|opo|"
                  r"salamat)\b", re.I)
_NO = re.compile(r"^\s*(no|nope|not really|tidak|belum|bukan|hindi|wala)\b", re.I)


def respond(chat: Chat, text: str) -> list[Message]:
    """The bot's answer to the visitor's message; nothing once a person has replied."""
    if chat.state != ChatState.BOT or human_replied(chat):
        return []
    if _PERSON.search(text):
        return hand_over(chat, "asked")
    if chat.bot_step == "asked":
        if _YES.match(text):
            return _solved(chat)
        if _NO.match(text):
            return unhelpful(chat)
    return _answer(chat, text)


def answer_feedback(chat: Chat, solved: bool) -> list[Message]:
    """The visitor pressed "yes, solved" or "no" under the articles."""
    if chat.state != ChatState.BOT or human_replied(chat) or chat.bot_step != "asked":
        return []
    return _solved(chat) if solved else unhelpful(chat)


def _answer(chat: Chat, text: str) -> list[Message]:
    ticket = Ticket.get_by_id(chat.ticket_id)
    found = suggestions.suggest(text, user_type=ticket.user_type, category=ticket.category,
                                language=chat.language, limit=3)
    if not found:
        return hand_over(chat, "no_match")
    from . import llm

    with force_locale(chat.language):
        written = llm.answer(text, found, chat.language)
        if written is llm.NOT_COVERED:
            return hand_over(chat, "not_covered")
        if written:
            body = written
        else:
            lines = [_("These articles may help:")]
            lines += [f"- {s.title}: {s.url}" for s in found]
            body = "\n".join(lines)
        body += "\n\n" + _("Did this solve your problem? You can also talk to a person at any "
                           "time.")
        chat.bot_step = "asked"
        chat.save(only=[Chat.bot_step])
        return [say(chat, body)]


def _solved(chat: Chat) -> list[Message]:
    chat.bot_step = "done"
    chat.bot_resolved = True
    chat.save(only=[Chat.bot_step, Chat.bot_resolved])
    with force_locale(chat.language):
        return [say(chat, _("I am glad that helped! If you need anything else, just write "
                            "here."))]


def unhelpful(chat: Chat) -> list[Message]:
    chat.unhelpful += 1
    chat.bot_step = "ask"
    chat.save(only=[Chat.unhelpful, Chat.bot_step])
    if chat.unhelpful >= UNHELPFUL_LIMIT:
        return hand_over(chat, "unhelpful")
    with force_locale(chat.language):
        return [say(chat, _("Sorry about that. Could you describe the problem in other words? "
                            "Or ask to talk to a person."))]


def hand_over(chat: Chat, reason: str) -> list[Message]:
    """Pass the chat to a person, visibly; a chat is handed over once, however often asked."""
    from core.models import utcnow

    if chat.handed_over_at is not None and chat.state != ChatState.BOT:
        return []
    with force_locale(chat.language):
        intro = {"asked": _("Of course."),
                 "no_match": _("I could not find an answer to that."),
                 "not_covered": _("Our articles do not cover that, so I will not guess."),
                 "unhelpful": _("I am sorry my answers did not help.")}.get(reason, "")
        chat.handed_over_at = chat.handed_over_at or utcnow()
        chat.handover_reason = chat.handover_reason or reason
        chat.bot_step = "handed"
        chat.save()
        said = [say(chat, intro)] if intro else []
    return said + offer(chat)
