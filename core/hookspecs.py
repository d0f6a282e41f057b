"""Every hook Loket calls, with its contract. The docstrings are the plugin documentation.

Rules that hold for all of them:

* Call sites pass keyword arguments; an implementation takes only those it needs.
* Contribution hooks (``register_*``, ``plugin_settings``, ``contact_channels``,
  ``suggest_answers``, ``public_notices``) return lists; they run at start-up
  or while a page is built and fail fast: an exception is a bug to fix.
* Decision hooks (``route_ticket``) are ``firstresult``: the first
  implementation returning something other than ``None`` wins. Core's own
  answer is a ``trylast`` implementation in ``core.builtin``, so a plugin can
  override it. They run inside the service call; an exception aborts that call
  (and its transaction).
* ``deliver_message`` is asked of one plugin only: the one that declared the
  message's channel in ``register_channels``.
* Event hooks (past tense: ``ticket_created``...) run after the transaction has
  committed, each implementation isolated: one that raises is logged and the
  others still run; the ticket stays as committed. They return nothing.
* ``record_new_ticket`` runs inside the ticket's transaction, each implementation
  in a savepoint: one that raises is logged and undone, and the ticket commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click
    import flask
    from flask_admin import Admin

    from .config import Setting
    from .jobs import JobQueue
    from .models import (
        Category,
        CategoryField,
        Contact,
        Department,
        Message,
        Staff,
        Ticket,
        UserType,
    )

hookspec = pluggy.HookspecMarker("loket")


@dataclass
class Routing:
    """Where a new ticket goes. Fields left ``None`` keep what the ticket has."""

    department: Department | None = None
    priority: str | None = None
    tags: list[str] = field(default_factory=list)
    escalate: bool = False
    reason: str = ""


@dataclass
class ContactOption:
    """A way to reach support, shown on the help center."""

    kind: str  # "email", "telegram", "whatsapp", "messenger", "chat", "billing", ...
    label: str  # already translated
    url: str  # where the button leads: mailto:, https://t.me/..., a help-center page
    description: str = ""
    order: int = 100


@dataclass
class Suggestion:
    """An article that may answer a customer's question."""

    title: str
    url: str
    excerpt: str = ""
    score: float = 0.0


@dataclass(frozen=True)
class ChannelSpec:
    """A channel a plugin owns: how customers reach the desk, and what it can do.

    ``name`` is what tickets and messages store (``"email"``, ``"telegram"``);
    ``label`` is shown to agents. ``can_push``: the desk can write to the
    customer on this channel unprompted (email, a messenger), unlike the web
    form, whose customers read answers on the tracking page. ``identity_kind``
    names the contact identity a message on this channel goes to (see
    ``models.IdentityKind``). ``max_text`` is the longest text one message may
    carry (``None``: no limit); ``reply_window`` is how long after the
    customer's last message free-form replies are allowed (WhatsApp's 24
    hours; ``None``: always).
    """

    name: str
    label: str
    can_push: bool = False
    attachments: bool = False
    max_text: int | None = None
    reply_window: dt.timedelta | None = None
    identity_kind: str = ""
    order: int = 100


def _always(recipient: str) -> bool:
    return True


@dataclass(frozen=True)
class LiveChannelSpec(ChannelSpec):
    """A channel the customer reads only while connected to it (a chat widget).

    ``reachable(recipient)`` says whether that customer has it open now. While
    they do not, an agent's reply is still committed on the channel (they see it
    when they come back) and core also sends it as a notification by another
    channel, email when the contact has an address (``core.notifications.route``).
    It is asked inside the request's transaction, so it must be quick (one query).
    """

    reachable: Callable[[str], bool] = _always


@dataclass
class DeliveryResult:
    """What a channel plugin did with an outbound message."""

    state: str  # models.Delivery.SENT, or DELIVERED/READ when the platform says so at once
    external_id: str | None = None  # the platform's id for the message, for receipts
    error: str = ""


class DeliveryError(Exception):
    """A channel could not send a message. ``str()`` is the reason an agent reads.

    ``permanent``: trying again cannot help (an invalid address, the customer
    blocked the bot); the message is marked failed at once. Otherwise the
    outbox retries with backoff, or after ``retry_after`` seconds when the
    platform said how long to wait.
    """

    def __init__(self, reason: str, *, permanent: bool = False,
                 retry_after: float | None = None):
        super().__init__(reason)
        self.permanent = permanent
        self.retry_after = retry_after


@dataclass
class Notice:
    """A banner on public pages (an ongoing incident, planned maintenance)."""

    text: str
    level: str = "info"  # info, warning, outage
    url: str = ""


# -- Setup: called while create_app builds the app ---------------------------------------


@hookspec
def plugin_settings() -> list[Setting]:
    """Declare this plugin's settings.

    Called once while the configuration is resolved, before anything else of
    the plugin runs. Return ``core.settings.Setting`` objects whose ``name`` is
    the short name; the setting is then read from ``[plugins.<plugin>]`` in
    the TOML file or ``LOKET_<PLUGIN>_<NAME>`` in the environment, validated by
    its ``parse`` function (a bad value stops start-up with one line), and
    reachable as ``core.state.loket().config.plugin("<plugin>")``.
    """


@hookspec
def register_models() -> list[type]:
    """Return the peewee models this plugin owns.

    Called at start-up. The models' tables are created and changed by the
    plugin's own numbered migration scripts (``<package>/migrations/``), run
    by ``loket db upgrade`` with a history table per plugin; never at import.
    """


@hookspec
def register_blueprints(app: flask.Flask) -> list[flask.Blueprint]:
    """Return Flask blueprints to mount on the app.

    Called once in ``create_app``. Blueprint names must be unique; prefix URLs
    with the plugin's own path. Templates live in ``templates/<plugin>/``.
    """


@hookspec
def register_admin_views(admin: Admin) -> list[Any]:
    """Return Flask-Admin views for this plugin's data.

    Called once in ``create_app`` after core's views. Every view must derive
    from ``admin.base.SecuredView`` (or its model-view variants) so that
    sign-in and roles apply; a test walks every registered view to prove it.
    """


@hookspec(firstresult=True)
def mount_console(app: flask.Flask) -> Any:
    """Mount a staff console on the app and return it (``None``: leave it to another).

    Called once in ``create_app``, after every blueprint is registered. The
    built-in console (Flask-Admin, package ``admin``) implements it as the
    plugin ``console``, found through its entry point like any other plugin,
    so core never imports it; the ``console`` setting (on by default) decides
    whether it is loaded. The first implementation that returns something wins,
    so one app never mounts two consoles. It may raise: start-up stops.
    """


@hookspec
def register_commands() -> list[click.Command]:
    """Return click commands to add under the ``loket`` command.

    Called when the CLI is built. Commands run inside an app context.
    """


@hookspec
def register_channels() -> list[ChannelSpec]:
    """Declare the channels this plugin owns, as ``ChannelSpec`` objects.

    Called once in ``create_app``, before the blueprints. A channel has one
    owner: two enabled plugins declaring the same name stop start-up with one
    line naming both. Core declares its own channels (``web``, ``api``,
    ``staff``) the same way. The console's filters and badges, the API's
    channel values and ``loket plugins`` read this list; the outbox asks the
    owner, and only the owner, to ``deliver_message`` on its channel.
    """


@hookspec
def app_ready(app: flask.Flask) -> None:
    """The app is built: every configure step has run. For start-up work.

    Called once per process that builds the app (each web worker, each job
    worker, each CLI command), inside an app context. Use it to check
    settings against each other or to enqueue a job (registering a webhook
    with a platform); do no network calls here, and never do such work at
    import time. An exception stops start-up with one line naming the plugin.
    """


@hookspec
def register_jobs(jobs: JobQueue) -> None:
    """Declare background jobs and periodic tasks on the app's job queue.

    Called once in ``create_app``. Use ``jobs.task(...)`` and
    ``jobs.periodic(...)``; each job runs in a worker inside an app context
    with a database connection, is retried with backoff when it raises, and
    must be idempotent (a job can run twice after a crash).
    """


# -- Ticket life -------------------------------------------------------------------------


@hookspec(firstresult=True)
def route_ticket(ticket: Ticket, message: Message | None, category: Category | None,
                 form_data: dict[str, Any], text: str) -> Routing | None:
    """Decide where a new ticket goes: department, priority, tags, escalation.

    Called before the ticket's write transaction begins, never inside it (on
    SQLite the write lock is shared by every process, so a slow
    implementation would stall every writer): ``ticket`` is unsaved, with no
    id and **no contact yet** (``ticket.contact_id`` is None and reading
    ``ticket.contact`` raises; the contact is found or created inside the
    transaction, after routing), but its subject, channel,
    category, user type, language, form data and requester name are set.
    ``message`` is its unsaved first message (its ``author_kind`` set), with
    no ticket and no contact yet. ``text`` is the subject and first message together, for routing by
    words; ``form_data`` holds the answers to the category's extra fields.
    It may be called for a message that then joins an existing ticket (a
    channel's thread changed in between), or twice for one message; the
    decision must depend only on its arguments and the database, with no
    side effects. Return a ``Routing`` to decide, or ``None`` to let the next
    implementation decide. Core's default (trylast) uses the category's
    default department and priority. Raising aborts the ticket's creation
    before anything is written.
    """


@hookspec
def record_new_ticket(ticket: Ticket, message: Message | None) -> None:
    """Write a plugin's own rows about a ticket being opened, in the ticket's transaction.

    Called inside the write transaction that opens the ticket (any channel), after its
    rows (ticket, first message, audit, escalation, acknowledgement) and before the commit,
    so what a plugin keeps beside a new ticket commits with it: one write lock and one
    commit for both, and never a ticket without its row. Each implementation runs in a
    savepoint of its own: one that raises is logged, what it wrote is undone, the others
    still run and the ticket commits. It may write through the services (an internal
    note); the events that causes fire after the commit. Keep it short and local (no
    network, no decisions: ``route_ticket`` decides before the write): on SQLite every
    writer of every process waits meanwhile. Returns nothing.
    """


@hookspec
def ticket_created(ticket: Ticket, message: Message | None) -> None:
    """A ticket was opened (any channel). Called after commit; isolated."""


@hookspec
def message_added(ticket: Ticket, message: Message) -> None:
    """A message joined a ticket's thread: customer, agent, internal note or bot.

    Called after commit; isolated. Not called for the first message of a new
    ticket (``ticket_created`` carries it). Check ``message.is_internal`` and
    ``message.author_kind`` before notifying anyone.
    """


@hookspec
def ticket_status_changed(ticket: Ticket, old: str, new: str, actor: Staff | None) -> None:
    """A ticket's status changed. ``actor`` is None when the customer or the system did it.

    Called after commit; isolated.
    """


@hookspec
def ticket_assigned(ticket: Ticket, old: Staff | None, new: Staff | None,
                    actor: Staff | None) -> None:
    """A ticket's assignee changed (``new`` is None when unassigned). After commit; isolated."""


@hookspec
def ticket_updated(ticket: Ticket, changes: dict[str, tuple[Any, Any]],
                   actor: Staff | None) -> None:
    """Priority, department, subject or tags changed: ``changes`` maps field to (old, new).

    Called after commit; isolated. Status and assignee have their own hooks.
    """


@hookspec
def ticket_escalated(ticket: Ticket, old: Department | None, new: Department | None,
                     level: int, reason: str, actor: Staff | None) -> None:
    """A ticket was escalated to ``new`` (its department's escalation target).

    ``level`` counts escalations so far. Called after commit; isolated.
    """


@hookspec(firstresult=True)
def deliver_message(ticket: Ticket, message: Message, recipient: str,
                    idempotency_key: str, copies: list[str]) -> DeliveryResult | None:
    """Send one outbound message (an agent's reply or a notification) to the customer.

    Called by the outbox in a background job, never in an agent's request,
    and only on the plugin that declared ``message.channel``. ``recipient`` is
    the contact identity to write to (an email address, a chat id); ``copies``
    the identities of participants the agent chose to copy a reply to (an
    email's Cc; empty for most messages, always participants of the ticket);
    ``message.notification`` names the notification template when it is one
    (its text is already rendered into ``message.body_text``, in the
    customer's language). Send synchronously and return a ``DeliveryResult``
    (``sent`` with the platform's message id). Raise ``DeliveryError`` when it
    could not be sent (``permanent=True`` when retrying cannot help); any
    other exception counts as a temporary failure. A worker can die after
    the platform accepted the message but before the outcome was stored; the
    message is then sent again with the same ``idempotency_key``: pass it to
    the platform where it takes one (or use it as the Message-ID), so the
    customer gets it once.
    """


@hookspec
def message_delivery_changed(ticket: Ticket, message: Message, old: str, new: str,
                             error: str) -> None:
    """An outbound message's delivery state changed (queued, sent, delivered, read, failed).

    Called after commit; isolated. ``error`` is the reason when ``new`` is
    ``failed``. Receipts that would move a state backwards (a late
    "delivered" after "read") change nothing and fire nothing.
    """


# -- Help center -------------------------------------------------------------------------


@hookspec
def contact_channels(user_type: UserType | None, category: Category | None,
                     language: str) -> list[ContactOption]:
    """Return the ways to reach support this plugin offers on the help center.

    Called while the help center home, a category page or the ticket form is
    built, in a request context. Return an empty list when nothing applies to
    this user type or category. Labels are already translated.
    """


@hookspec
def suggest_answers(query: str, user_type: UserType | None, category: Category | None,
                    language: str, limit: int) -> list[Suggestion]:
    """Return articles that may answer ``query`` (the customer's words so far).

    Called by the ticket form and the chat bot; results from all plugins are
    merged by score and cut to ``limit``. Must be fast: it runs while the
    customer types.
    """


@hookspec
def public_notices(page: str, user_type: UserType | None,
                   category: Category | None) -> list[Notice]:
    """Return banners for a public page (``page`` is "home", "form", "tracking" or "chat").

    Called while public pages are built; used for incidents and maintenance.
    """


@hookspec
def contact_identified(contact: Contact, identity_kind: str, value: str) -> None:
    """A contact gained a channel identity (a new email address, a chat id).

    Called after commit; isolated. Lets a plugin link accounts it knows.
    """


# -- Billing desk seams: demo data, choices read from a plugin, panels on the ticket page ----


@dataclass
class Panel:
    """A box a plugin adds beside a ticket on the console's ticket page.

    ``html`` is rendered by the plugin from its own template (Jinja escapes what
    it inserts) and marked safe with ``markupsafe.Markup``; the console puts it
    on the page as it is, so it must never hold unescaped customer text.
    """

    title: str
    html: Any  # markupsafe.Markup
    order: int = 100


@hookspec
def load_demo_data() -> None:
    """Add this plugin's demo data; called by ``loket demo``.

    Called after core's demo departments, user types, categories and staff
    exist and before the demo tickets are opened (so that routing sees the
    plugin's rows), inside an app context with a database connection and no
    transaction open. It must be safe to run again: add only what is missing.
    An exception stops the command.
    """


@hookspec(firstresult=True)
def field_choices(field: CategoryField) -> list[str] | None:
    """The answers a ``choice`` question offers, when a plugin keeps them rather than the admin.

    Called whenever a category's questions are read (the ticket form, the API,
    the answers' check), for each question of kind ``choice``. Return the
    current choices (a "billing center" question offers the active billing
    centers), or ``None`` to keep the choices the admin typed on the field.
    The first answer that is not ``None`` wins. Must be fast (it runs on every
    form); it may read the database and must change nothing.
    """


@hookspec
def ticket_panels(ticket: Ticket, staff: Staff) -> list[Panel]:
    """Return panels to show on the console's page of ``ticket`` to ``staff``.

    Called while the ticket page is built, in a request context, only for a
    staff member who may see the ticket. Return an empty list when nothing
    applies. Panels are shown in ``order``, then title. An exception is a bug
    to fix (the page fails), like any contribution hook.
    """


# -- Knowledge base: what the help center shows with a category ---------------------------


@dataclass
class CategoryContent:
    """A block a plugin adds to a help-center page: headlines and where to read more.

    ``links`` are shown in order (title, url, excerpt of each ``Suggestion``);
    ``more_url``/``more_label`` lead to the rest. On the ticket form a block may
    also offer live suggestions: ``live_url`` answers ``GET ?q=<subject and
    description>`` with JSON ``{"results": [{"title", "url", "excerpt"}]}``, and
    ``script_url`` is the static script that asks it while the customer types
    (never an inline script: the pages' Content-Security-Policy forbids them).
    Without JavaScript the block still shows its links and ``more_url``.
    """

    heading: str  # already translated
    links: list[Suggestion] = field(default_factory=list)
    more_label: str = ""
    more_url: str = ""
    live_url: str = ""
    live_heading: str = ""  # above the live suggestions, already translated
    script_url: str = ""
    order: int = 100


@hookspec
def category_content(user_type: UserType, category: Category | None, language: str,
                     page: str) -> list[CategoryContent]:
    """Return blocks to show with a user type's categories or one category's ticket form.

    Called while the help center builds a page, in a request context: ``page`` is
    ``"categories"`` (the list of a user type's categories; ``category`` is None) or
    ``"form"`` (the ticket form of ``category``). Blocks are shown above the page's
    own content, headlines first, sorted by ``order``; return an empty list when
    nothing applies. Texts are already translated into ``language``. A contribution
    hook: it runs on every page view, so keep it to a query or two, and it fails fast.
    """


# -- Email in (issue 17): automatic mail a channel withholds -------------------------------


@hookspec
def notification_allowed(ticket: Ticket, key: str, channel: str, recipient: str) -> bool | None:
    """Whether core may queue the automatic notification ``key`` to ``recipient`` on ``channel``.

    Called inside the write transaction, just before a notification (ticket
    opened, agent replied, status notices) is put in the outbox; keep it to a
    quick query. Return ``False`` to withhold it (a per-address cap on
    automatic mail, a sender known to be a machine); ``None`` or ``True``
    lets it go. Any ``False`` wins. A withheld notification is recorded as a
    ``notification_withheld`` audit event on the ticket. An exception aborts
    the service call, as for other decision hooks.
    """
