"""The public help center: choose who you are, pick a category, open a ticket, follow it."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    has_request_context,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from markupsafe import Markup
from peewee import JOIN
from werkzeug.datastructures import FileStorage
from werkzeug.wrappers import Response
from wtforms import Field

from .. import db
from ..attachments import (
    AttachmentRejected,
    Storage,
    StoredFile,
    download,
    find_attachment,
    megabytes,
    rejection_message,
    type_names,
)
from ..hookspecs import CategoryContent, ContactOption, Notice
from ..i18n import LANGUAGE_NAMES, _, current_language, localized, localized_questions
from ..models import (
    Attachment,
    AuthorKind,
    Category,
    FieldKind,
    IdentityKind,
    Message,
    Staff,
    Status,
    Ticket,
    UserType,
)
from ..notifications import email_reaches_customers
from ..numbers import MAX_ID
from ..sanitize import text_to_html
from ..security import check_ticket_form, csrf, ticket_form_token
from ..services import access
from ..services.access import Node
from ..services.answers import questions_of
from ..services.tickets import (
    Identity,
    ServiceError,
    add_customer_reply,
    customer_resolve,
    find_for_customer,
    key_matches,
    open_ticket,
    tracking_url,
)
from ..state import loket
from .forms import ReplyForm, ResolveForm, TicketForm, ticket_form_class

bp = Blueprint("helpcenter", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static/loket")

# The tracking page says "we got it" once, after the redirect from the ticket form. A form
# sent with its submission id names that id in the redirect (``SENT``): the tracking page
# shows the message when the id is this browser's (its HMAC under the session's FORM_KEY is
# the ticket's first message's external id) and remembers, in ``SHOWN``, the ticket it said
# it for. The submission itself then leaves the session as it was, so Flask neither signs it
# again nor sends it back. A form sent without an id (a client that never fetched the form)
# is remembered in the session as before (``SUBMITTED``).
SUBMITTED = "loket_submitted"
SHOWN = "loket_shown"
SENT = "sent"
# A per-session secret that binds a form's submission id to the browser that got it.
FORM_KEY = "loket_form_key"
# The switcher's buttons on a page with a form: the form's text goes back with the choice.
SWITCH_LANGUAGE = "switch_language"


# -- What every public page shows --------------------------------------------------------


@bp.app_context_processor
def _page_globals() -> dict[str, Any]:
    # Functions, not values: admin pages render templates too and need none of this.
    return {"current_language": current_language, "language_links": _language_links,
            "email_notifies": email_reaches_customers, "localized": localized,
            "fixed_url": fixed_url}


def fixed_url(endpoint: str, **values: str) -> str:
    """``url_for`` of a link every page has (the stylesheet, the home page), built once per
    app and script root: werkzeug builds each URL afresh, a few per page.

    Only for fixed values: a link with a ticket's number or key is built with ``url_for``.
    """
    if not has_request_context():
        return url_for(endpoint, **values)
    cache = loket().extras.setdefault("fixed_urls", {})
    key = (request.script_root, endpoint, *sorted(values.items()))
    found = cache.get(key)
    if found is None:
        if len(cache) > 256:  # not fixed after all: keep the memory bounded
            cache.clear()
        found = cache[key] = url_for(endpoint, **values)
    return found


def _language_links() -> list[dict[str, Any]]:
    """The language switcher: plain links (no script) to this page with ?lang=.

    Relative, so it never repeats the path; a page shown in answer to a POST (a
    reply with an error) names the page it belongs to in ``g.page_url``, since a
    GET of the POST's own address would not show it. On a page with a form
    (``g.language_form``, see ``switching_language``) they are buttons that post the
    form to its own address, or to ``g.language_form_url`` when the page is not the
    form's (the tracking page's reply form posts to .../reply).
    """
    current = current_language()
    form = g.get("language_form", "")
    # A reply form's switcher posts back to the reply (language_form_url); a page
    # named by g.page_url is a tracking link's: neither is kept.
    base = g.get("language_form_url", "") if form else g.get("page_url", "")
    languages = loket().config["languages"]
    key = (request.query_string, form, current, tuple(languages))
    found = None if base else _LANGUAGE_LINKS.get(key)
    if found is None:
        args = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"]
        found = [{"code": code, "name": LANGUAGE_NAMES.get(code, code),
                  "href": base + "?" + urlencode(args + [("lang", code)]),
                  "current": code == current, "form": form}
                 for code in languages]
        if not base:  # a page named by g.page_url (a tracking link's) is not kept
            if len(_LANGUAGE_LINKS) > 256:  # query strings are the visitors' to choose
                _LANGUAGE_LINKS.clear()
            _LANGUAGE_LINKS[key] = found
    return found


# The switcher's relative links by what they are made of (the query string, the form, the
# language shown, the languages offered): most pages have no query string, so few entries.
# Shared between requests: read them, never change them.
_LANGUAGE_LINKS: dict[tuple[Any, ...], list[dict[str, Any]]] = {}


def switching_language() -> bool:
    """This POST is the switcher's, from a page with a form: show the form again, unsent.

    On such a page the switcher is a row of submit buttons bound to the form (HTML's
    ``form`` and ``formaction``, no script), so what the visitor typed comes back with
    their choice of language instead of being lost to a plain link. Files cannot be
    sent back to a file input; they have to be chosen again.
    """
    return request.method == "POST" and SWITCH_LANGUAGE in request.form


def _channels(user_type: UserType | None, category: Category | None) -> list[ContactOption]:
    results = loket().hook.contact_channels(user_type=user_type, category=category,
                                            language=current_language())
    options = [option for found in results for option in (found or ())]
    return sorted(options, key=lambda option: (option.order, option.label))


def _notices(page: str, user_type: UserType | None = None,
             category: Category | None = None) -> list[Notice]:
    results = loket().hook.public_notices(page=page, user_type=user_type, category=category)
    return [notice for found in results for notice in (found or ())]


def _category_content(user_type: UserType, category: Category | None,
                      page: str) -> list[CategoryContent]:
    """Blocks plugins show with the categories or a category's form (a knowledge base's headlines)."""
    results = loket().hook.category_content(user_type=user_type, category=category,
                                            language=current_language(), page=page)
    blocks = [block for found in results for block in (found or ())]
    return sorted(blocks, key=lambda block: block.order)


# -- Choosing a user type and a category -------------------------------------------------


@bp.get("/")
def home() -> str:
    user_types = access.active_user_types()
    return render_template("loket/home.html", user_types=user_types,
                           channels=_channels(None, None), notices=_notices("home"))


def category_tree(user_type: UserType) -> list[Node]:
    """The visible categories of a user type in the admin's order (``access.category_tree``)."""
    return access.category_tree([user_type.id])


def _user_type_or_404(slug: str) -> UserType:
    user_type = access.user_type_by_slug(slug)
    if user_type is None:
        abort(404)
    return user_type


@bp.get("/help/<user_type>/")
def categories(user_type: str) -> str:
    chosen = _user_type_or_404(user_type)
    return render_template("loket/categories.html", user_type=chosen,
                           tree=category_tree(chosen), channels=_channels(chosen, None),
                           notices=_notices("home", chosen),
                           content=_category_content(chosen, None, "categories"))


# -- The ticket form ---------------------------------------------------------------------


def _category_or_404(user_type_slug: str, category_slug: str) -> Category:
    """A category the customer may pick (``access.visible_category``), its parents loaded."""
    category = access.visible_category(user_type_slug, category_slug)
    if category is None:
        abort(404)
    return category


@bp.route("/help/<user_type>/<category>/new", methods=["GET", "POST"])
def new_ticket(user_type: str, category: str) -> Any:
    chosen = _category_or_404(user_type, category)
    shown, words = localized_questions({chosen.id: questions_of(chosen.id)})
    form = ticket_form_class(shown[chosen.id], words.get(chosen.id))()
    if request.method == "GET":
        form.submission.data = secrets.token_urlsafe(18)
        session.setdefault(FORM_KEY, secrets.token_urlsafe(18))
    g.language_form = "ticket-form"
    if not switching_language() and form.validate_on_submit():
        ticket = _open_from(form, chosen)
        if ticket is not None:
            g.private_page = True  # the redirect carries the key
            sent = {SENT: form.submission.data} if _submission_id(form.submission.data) else {}
            if not sent:
                session[SUBMITTED] = ticket.id
            return redirect(url_for(".tracking", number=ticket.id, key=ticket.access_key, **sent))
    return render_template(
        "loket/ticket_form.html", form=form, category=chosen, user_type=chosen.user_type,
        channels=_channels(chosen.user_type, chosen),
        notices=_notices("form", chosen.user_type, chosen),
        content=_category_content(chosen.user_type, chosen, "form"),
        **upload_limits())


def _open_from(form: TicketForm, category: Category) -> Ticket | None:
    """Store the files, then open the ticket; None (and field errors) if a file is refused."""
    stored: dict[str, StoredFile] = {}
    attachment_fields: dict[str, str] = {}
    form_data: dict[str, Any] = dict(form.answers)
    ok = True
    for spec, bound in form.extra():
        if spec.kind != FieldKind.FILE:
            continue
        upload = bound.data
        if not isinstance(upload, FileStorage) or not upload.filename:
            continue
        saved = _store(upload, bound)
        if saved is None:
            ok = False
            continue
        stored[saved.sha256] = saved
        attachment_fields[saved.sha256] = spec.name
        form_data[spec.name] = saved.filename
    files = store_uploads(form.attachments)
    if files is None or not ok:
        return None
    for saved in files:
        stored.setdefault(saved.sha256, saved)
    name = form.name.data.strip()
    return open_ticket(
        external_id=_submission_id(form.submission.data),
        identity=Identity(kind=IdentityKind.EMAIL, value=form.email.data, name=name),
        subject=form.subject.data.strip(), text=form.description.data.strip(),
        channel="web", category=category, user_type_id=category.user_type_id,
        form_data=form_data, language=current_language(), attachments=list(stored.values()),
        attachment_fields=attachment_fields)


def _submission_id(nonce: str | None) -> str | None:
    """The form's id as the first message's external id, bound to this browser's session.

    Keyed with a secret this session got with the form, so a stranger who learns or
    guesses a form's id cannot make it answer with someone else's ticket. Without
    that secret (a client that never fetched the form) there is no de-duplication.
    """
    key = session.get(FORM_KEY)
    if not nonce or not key:
        return None
    secret = f"{current_app.secret_key}|{key}".encode()
    return "form:" + hmac.new(secret, nonce.encode(), hashlib.sha256).hexdigest()[:48]


def _uploads(bound: Field) -> list[FileStorage]:
    # Browsers send one empty part for a file input left empty.
    return [f for f in (bound.data or []) if isinstance(f, FileStorage) and f.filename]


def store_uploads(bound: Field) -> list[StoredFile] | None:
    """Store a multiple-file field's files; None (and field errors) if any is refused."""
    uploads = _uploads(bound)
    limit = loket().config["upload_max_files"]
    if len(uploads) > limit:
        bound.errors.append(_("You can attach at most %(count)s files.", count=limit))
        return None
    saved = [_store(upload, bound) for upload in uploads]
    if any(item is None for item in saved):
        return None
    return [item for item in saved if item is not None]


def _store(upload: FileStorage, bound: Field) -> StoredFile | None:
    config = loket().config
    try:
        return Storage(config["attachments_path"]).save(
            upload.stream, upload.filename or "", max_bytes=config["upload_max_bytes"],
            allowed_types=config["upload_allowed_types"])
    except AttachmentRejected as exc:
        bound.errors.append(rejection_message(exc, upload.filename or "",
                                              config["upload_max_bytes"],
                                              config["upload_allowed_types"]))
        return None


# upload_limits() by (language, the three settings): the same words for every visitor.
_UPLOAD_LIMITS: dict[tuple[Any, ...], dict[str, Any]] = {}


def upload_limits() -> dict[str, Any]:
    """What the file inputs say about the limits, in the visitor's language (do not change
    the dict: it is shared)."""
    config = loket().config
    key = (current_language(), config["upload_max_files"], config["upload_max_bytes"],
           tuple(config["upload_allowed_types"]))
    found = _UPLOAD_LIMITS.get(key)
    if found is None:
        if len(_UPLOAD_LIMITS) > 64:  # settings changed many times: start afresh
            _UPLOAD_LIMITS.clear()
        found = _UPLOAD_LIMITS[key] = {
            "max_files": config["upload_max_files"],
            "max_mb": megabytes(config["upload_max_bytes"]),
            "accept": ",".join(config["upload_allowed_types"]),
            "accepted_types": type_names(config["upload_allowed_types"])}
    return found


# -- The private tracking page -----------------------------------------------------------


def _ticket_or_404(number: int, key: str) -> Ticket:
    """The ticket of a tracking link; a wrong key gets exactly the answer of a missing ticket."""
    g.private_page = True  # the key is in the URL: no caching, no Referer
    ticket = find_for_customer(number, key)
    if ticket is None:
        abort(404)
    return ticket


def status_label(status: str) -> str:
    # One translation looked up, not the six of a table built per call.
    match status:
        case Status.NEW:
            return _("Received")
        case Status.OPEN:
            return _("In progress")
        case Status.PENDING:
            return _("Waiting for your reply")
        case Status.ON_HOLD:
            return _("On hold")
        case Status.RESOLVED:
            return _("Resolved")
        case Status.CLOSED:
            return _("Closed")
    return status


@dataclass
class Entry:
    """One message of the public thread, ready to show."""

    message: Message
    author: str
    from_customer: bool
    body: Any
    attachments: list[Attachment]


# The tracking page in one statement and one round trip: the ticket, its category, its
# public messages oldest first (no internal notes, no notifications: the notifications
# repeat what the page shows), each message's agent's name and its attachments. Four to six
# statements before (the ticket, the category, the messages, the attachments, each agent's
# name), each a round trip and a plan on PostgreSQL; the ticket's columns now repeat on each
# of its rows, and ``db.Joined`` makes the ticket (and each message) once.
_tracking_rows = db.Joined(
    "ticket.tracking_page", (Ticket, Category, Message, Staff, Attachment),
    lambda ticket_id: (
        Ticket.select(Ticket, Category, Message, Staff.id, Staff.name, Attachment)
        .join(Category, JOIN.LEFT_OUTER, on=(Category.id == Ticket.category))
        .switch(Ticket)
        .join(Message, JOIN.LEFT_OUTER,
              on=((Message.ticket == Ticket.id) & ~Message.is_internal
                  & (Message.notification == "")))
        .join(Staff, JOIN.LEFT_OUTER, on=(Staff.id == Message.staff))
        .switch(Message)
        .join(Attachment, JOIN.LEFT_OUTER,
              on=((Attachment.message == Message.id) & (Attachment.ticket == Ticket.id)))
        .where(Ticket.id == ticket_id)
        .order_by(Message.created_at, Message.id, Attachment.id)))


@dataclass
class Tracked:
    """What the tracking page shows: the ticket, its category and its public thread."""

    ticket: Ticket
    category: Category | None
    thread: list[Entry]


def _tracked_or_404(number: int, key: str) -> Tracked:
    """The tracking page's ticket and thread, read in one statement; a wrong key gets exactly
    the answer of a missing ticket (``_ticket_or_404``).

    The rows are read before the key is compared (in constant time, ``key_matches``, as
    ``find_for_customer`` does): nothing of them leaves this function when it is wrong.
    """
    g.private_page = True  # the key is in the URL: no caching, no Referer
    rows = _tracking_rows.all(number) if 0 < number <= MAX_ID else []
    if not rows or not key_matches(rows[0][0], key):
        abort(404)
    ticket, category = rows[0][0], rows[0][1]
    thread: list[Entry] = []
    for _ticket, _category, message, staff, attachment in rows:
        if message is None:  # no public message at all: the one row of the outer join
            continue
        if not thread or thread[-1].message is not message:  # rows come message by message
            thread.append(_entry(message, staff))
        if attachment is not None:
            thread[-1].attachments.append(attachment)
    return Tracked(ticket, category, thread)


def _entry(message: Message, staff: Staff | None) -> Entry:
    mine = message.author_kind == AuthorKind.CONTACT
    if mine:
        author = _("You")
    elif staff is not None:
        author = staff.name
    else:
        author = _("Support team")
    # body_html was sanitised before it was stored.
    body = Markup(message.body_html) if message.body_html else text_to_html(message.body_text)
    return Entry(message, author, mine, body, [])


# The untouched reply fields, rendered, by (language, upload limits): the same HTML for every
# visitor, and most of the tracking page's rendering time when built each time.
_PRISTINE_REPLY_FIELDS: dict[tuple[Any, ...], Markup] = {}


def reply_fields(form: ReplyForm | None, limits: dict[str, Any]) -> Markup:
    """The reply form's fields; an untouched form's (``None``: none was sent) come from
    ``_PRISTINE_REPLY_FIELDS``, with no form built at all.

    A form sent back with errors (or text) is rendered for this visitor only.
    """
    if form is not None and (form.errors or form.text.data):
        return Markup(render_template("loket/_reply_fields.html", reply_form=form, **limits))
    key = (current_language(), *sorted(limits.items()))
    found = _PRISTINE_REPLY_FIELDS.get(key)
    if found is None:
        if len(_PRISTINE_REPLY_FIELDS) > 64:  # settings changed many times: start afresh
            _PRISTINE_REPLY_FIELDS.clear()
        found = _PRISTINE_REPLY_FIELDS[key] = Markup(render_template(
            "loket/_reply_fields.html", reply_form=form or ReplyForm(), **limits))
    return found


def _just_submitted(tracked: Tracked) -> bool:
    """Whether this page view is the one right after this browser sent the ticket's form
    (see ``SUBMITTED``): said once, then remembered as said."""
    ticket = tracked.ticket
    if session.get(SUBMITTED) == ticket.id:
        session.pop(SUBMITTED)
        return True
    sent = request.args.get(SENT)
    if not sent or not tracked.thread or session.get(SHOWN) == ticket.id:
        return False
    ours = _submission_id(sent)
    first = tracked.thread[0].message.external_id
    # As bytes: another channel's first message may have any text for its id.
    if ours is None or first is None or not hmac.compare_digest(ours.encode(), first.encode()):
        return False
    session[SHOWN] = ticket.id
    return True


def _tracking_page(tracked: Tracked, reply_form: ReplyForm | None = None) -> str:
    ticket, category = tracked.ticket, tracked.category
    just_submitted = _just_submitted(tracked)
    can_reply = ticket.status != Status.CLOSED
    if can_reply:  # the switcher posts the reply typed so far back with the new language
        g.language_form = "reply-form"
        g.language_form_url = url_for(".reply", number=ticket.id, key=ticket.access_key)
    return render_template(
        "loket/tracking.html", ticket=ticket, category=category, thread=tracked.thread,
        status=status_label(ticket.status), link=tracking_url(ticket),
        just_submitted=just_submitted, can_reply=can_reply,
        form_token=ticket_form_token(ticket.id, ticket.access_key),
        can_resolve=not ticket.is_done,
        reply_fields=reply_fields(reply_form, upload_limits()) if can_reply else "",
        notices=_notices("tracking", None, category))


@bp.get("/t/<int:number>/<key>")
def tracking(number: int, key: str) -> str:
    return _tracking_page(_tracked_or_404(number, key))


def _back(ticket: Ticket, anchor: str = "") -> Response:
    return redirect(url_for(".tracking", number=ticket.id, key=ticket.access_key) + anchor)


# The tracking page's two forms carry the ticket's token, not the session's (see
# ``security.ticket_form_token``): each view checks it once the ticket is found.
@bp.post("/t/<int:number>/<key>/reply")
@csrf.exempt
def reply(number: int, key: str) -> Any:
    ticket = _ticket_or_404(number, key)
    check_ticket_form(ticket.id, ticket.access_key)
    if ticket.status == Status.CLOSED:
        flash(_("This ticket is closed. Please open a new ticket if you still need help."),
              "error")
        return _back(ticket)
    form = ReplyForm()
    g.page_url = url_for(".tracking", number=ticket.id, key=ticket.access_key)
    if not switching_language() and form.validate_on_submit():
        files = store_uploads(form.attachments)
        if files is not None:
            try:
                add_customer_reply(ticket, form.text.data.strip(), attachments=files)
            except ServiceError as exc:
                flash(str(exc), "error")
            else:
                flash(_("Thank you. Your reply was added to the ticket."), "success")
            return _back(ticket, "#latest")
    return _tracking_page(_tracked_or_404(number, key), reply_form=form)


@bp.post("/t/<int:number>/<key>/resolve")
@csrf.exempt
def resolve(number: int, key: str) -> Any:
    ticket = _ticket_or_404(number, key)
    check_ticket_form(ticket.id, ticket.access_key)
    if not ResolveForm().validate_on_submit():
        abort(400)
    if ticket.is_done:
        flash(_("This ticket is already resolved."), "info")
        return _back(ticket)
    try:
        customer_resolve(ticket)
    except ServiceError as exc:
        flash(str(exc), "error")
    else:
        flash(_("Glad we could help. The ticket is marked as resolved; write again if you "
                "still need us."), "success")
    return _back(ticket)


@bp.get("/t/<int:number>/<key>/files/<int:attachment_id>")
def attachment(number: int, key: str, attachment_id: int) -> Response:
    """A file of this ticket's public thread, always as a download, never rendered."""
    ticket = _ticket_or_404(number, key)
    return download(find_attachment(ticket.id, attachment_id, public=True),
                    loket().config["attachments_path"])
