"""The console's live-chat view: waiting and active chats, accept, reply, transfer, close."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, jsonify, redirect, request, url_for
from flask_admin import expose

from admin.base import STAFF, SecuredView, current_staff
from core.models import CannedReply, Department, Message, Staff, Ticket, utcnow
from core.services import access
from core.services.tickets import Actor, ServiceError, public_thread
from core.state import loket

from . import desk
from .models import AgentPresence, Chat, ChatState


class LiveChatView(SecuredView):
    roles = STAFF

    def _chats(self, staff: Staff, states: tuple[str, ...]) -> list[tuple[Chat, Ticket]]:
        rows = (Chat.select(Chat, Ticket).join(Ticket, on=(Chat.ticket == Ticket.id))
                .where(Chat.state.in_(states)).order_by(Chat.handed_over_at, Chat.id))
        return [(c, c.ticket) for c in rows if _may_see(staff, c)]

    @expose("/")
    def index(self) -> Any:
        staff = current_staff()
        presence = AgentPresence.get_or_none(AgentPresence.staff == staff.id)
        now = utcnow()
        waiting = self._chats(staff, (ChatState.WAITING, ChatState.OFFLINE))
        period = desk.day_range(request.args.get("from", ""), request.args.get("to", ""))
        active = [(c, t) for c, t in self._chats(staff, (ChatState.ACTIVE,))
                  if c.agent_id == staff.id or staff.is_admin]
        return self.render("livechat/console.html", staff=staff, presence=presence,
                           waiting=waiting, active=active, now=now,
                           limit=desk.capacity(staff), report=desk.report(*period),
                           report_from=request.args.get("from", "")[:10],
                           report_to=request.args.get("to", "")[:10])

    @expose("/availability", methods=("POST",))
    def availability(self) -> Any:
        staff = current_staff()
        limit = request.form.get("max_chats", "").strip()
        desk.set_available(staff, request.form.get("available") == "1",
                           int(limit) if limit.isdigit() else None)
        return redirect(url_for(".index"))

    def _chat(self, chat_id: int) -> Chat:
        chat = Chat.get_or_none(Chat.id == chat_id)
        if chat is None or not _may_see(current_staff(), chat):
            abort(404)
        return chat

    @expose("/<int:chat_id>")
    def chat(self, chat_id: int) -> Any:
        chat = self._chat(chat_id)
        ticket = Ticket.get_by_id(chat.ticket_id)
        staff = current_staff()
        typing = (chat.visitor_typing_at is not None
                  and (utcnow() - chat.visitor_typing_at).total_seconds() < 6)
        desk.agent_read(chat, staff)
        canned = CannedReply.select().where(
            (CannedReply.department.is_null()) | (CannedReply.department == ticket.department_id))
        return self.render("livechat/console_chat.html", chat=chat, ticket=ticket,
                           thread=public_thread(ticket), staff=staff, typing=typing,
                           canned=list(canned), agents=_colleagues(staff),
                           departments=list(Department.select().where(Department.active)),
                           mine=chat.agent_id == staff.id)

    @expose("/<int:chat_id>/feed")
    def feed(self, chat_id: int) -> Any:
        """What the open chat page adds without a reload: later messages, typing, state."""
        chat = self._chat(chat_id)
        ticket = Ticket.get_by_id(chat.ticket_id)
        after = request.args.get("after", "0")
        after_id = int(after) if after.isdigit() else 0
        names = {"contact": ticket.requester_name or "Visitor"}
        messages = [{"id": m.id, "author": m.author_kind, "text": m.body_text,
                     "who": (m.staff.name if m.staff_id else
                             names.get(m.author_kind, m.author_kind.capitalize())),
                     "at": m.created_at.strftime("%H:%M:%S"), "delivery": m.delivery_state,
                     "files": [{"name": a.filename,
                                "url": url_for("tickets.attachment", number=ticket.id,
                                               attachment_id=a.id)} for a in m.attachments]}
                    for m in public_thread(ticket) if m.id > after_id]
        typing = (chat.visitor_typing_at is not None
                  and (utcnow() - chat.visitor_typing_at).total_seconds() < 6)
        desk.agent_read(chat, current_staff())
        return jsonify({"messages": messages, "typing": typing, "state": chat.state})

    @expose("/<int:chat_id>/typing", methods=("POST",))
    def typing(self, chat_id: int) -> Any:
        """The agent types a reply: the visitor sees "… is typing" (CSRF-checked like any
        form; the page sends its token in X-CSRFToken)."""
        desk.agent_typing(self._chat(chat_id), current_staff())
        return "", 204

    @expose("/<int:chat_id>/act", methods=("POST",))
    def act(self, chat_id: int) -> Any:
        chat = self._chat(chat_id)
        staff = current_staff()
        action = request.form.get("action")
        try:
            if action == "accept":
                desk.accept(chat, staff)
            elif action == "reply":
                if chat.agent_id != staff.id:
                    raise ServiceError("accept the chat before you reply")
                desk.agent_reply(chat, staff, request.form.get("text", ""),
                                 attachments=_agent_files())
            elif action == "transfer":
                agent_id = request.form.get("agent", "")
                department_id = request.form.get("department", "")
                to_agent = Staff.get_or_none(Staff.id == int(agent_id)) if agent_id.isdigit() \
                    else None
                desk.transfer(chat, staff, to_agent=to_agent,
                              to_department=int(department_id) if department_id.isdigit()
                              else None)
            elif action == "close":
                desk.close(chat, Actor.agent(staff))
            else:
                abort(400)
        except ServiceError as exc:
            flash(str(exc), "error")
        if action == "close" or (action == "transfer" and Chat.get_by_id(chat.id).agent_id
                                 != staff.id):
            return redirect(url_for(".index"))
        return redirect(url_for(".chat", chat_id=chat.id))


def _agent_files() -> list[Any]:
    """The agent's files, under the desk's attachment rules (the visitor gets links)."""
    from core.attachments import AttachmentRejected, Storage

    config = loket().config
    uploads = [f for f in request.files.getlist("files") if f and f.filename]
    if len(uploads) > config["upload_max_files"]:
        raise ServiceError(f"at most {config['upload_max_files']} files at once")
    try:
        return [Storage(config["attachments_path"]).save(
            f.stream, f.filename or "", max_bytes=config["upload_max_bytes"],
            allowed_types=config["upload_allowed_types"]) for f in uploads]
    except AttachmentRejected as exc:
        raise ServiceError(str(exc)) from exc


def _may_see(staff: Staff, chat: Chat) -> bool:
    if chat.offered_to_id == staff.id or chat.agent_id == staff.id:
        return True
    return access.can_see(staff, Ticket.get_by_id(chat.ticket_id))


def _colleagues(staff: Staff) -> list[Staff]:
    return list(Staff.select().join(AgentPresence, on=(AgentPresence.staff == Staff.id))
                .where(AgentPresence.available & Staff.active & (Staff.id != staff.id)))


def last_message(ticket: Ticket) -> Message | None:
    return (Message.select().where(Message.ticket == ticket).order_by(Message.id.desc())
            .first())
