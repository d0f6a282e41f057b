"""The agents' inbox (a filtered, scoped ticket list) and the ticket page where they work one."""

from __future__ import annotations

from typing import Any

from flask import Response, abort, flash, g, redirect, request, url_for
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.babel import gettext as admin_gettext
from flask_admin.babel import ngettext as admin_ngettext
from flask_admin.contrib.peewee.filters import BasePeeweeFilter
from flask_babel import get_locale
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from peewee import prefetch
from wtforms import MultipleFileField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from core.attachments import download, find_attachment
from core.models import (
    Attachment,
    CannedReply,
    CategoryField,
    Contact,
    Delivery,
    Department,
    Message,
    Priority,
    Staff,
    Status,
    Ticket,
    TicketEvent,
    utcnow,
)
from core.numbers import parse_id
from core.raw import read as read_raw
from core.services import tickets as service
from core.services.access import (
    SORTS,
    UNASSIGNED,
    InboxFilter,
    Term,
    assignable_staff,
    assignee_term,
    assignment_refusal,
    can_see,
    choice_term,
    condition,
    decode_cursor,
    department_term,
    filter_inbox,
    inbox,
    inbox_page,
    inbox_rows,
    overdue_term,
    scope_terms,
    search_clause,
    tag_term,
    waiting_on_us,
    walks_far,
)
from core.services.tickets import TEXT_MAX, Actor, ServiceError, copy_candidates
from core.state import loket
from core.web.helpcenter import store_uploads, upload_limits

from .base import STAFF, SecuredBaseView, SecuredModelView, current_staff
from .desk import (
    TIME_FORMATTERS,
    category_label,
    category_labels,
    departments,
    human_time,
    kept_by_names,
    staff_names,
)

# What agents read instead of the stored codes ("On hold", not "on_hold").
STATUS_LABELS = {s: s.replace("_", " ").capitalize() for s in Status.ALL}
PRIORITY_LABELS = {p: p.capitalize() for p in Priority.ALL}


def _actor() -> Actor:
    staff = current_staff()
    assert staff is not None  # the secured base let only staff in
    return Actor.agent(staff)


# -- Filters ---------------------------------------------------------------------------------


class TermFilter(BasePeeweeFilter):
    """A filter said as the inbox's terms (``access.condition``): the page's SQL is then
    built once per shape (``access.inbox_rows``)."""

    def apply(self, query: Any, value: Any) -> Any:
        return query.where(*[condition(term) for term in self.terms(value)])

    def terms(self, value: Any) -> list[Term]:
        raise NotImplementedError


class ChoiceFilter(TermFilter):
    """Equality on a column, with a fixed list of choices or one read per request."""

    def __init__(self, column: Any, name: str, options: Any, as_int: bool = False):
        # Flask-Admin reads options once, when the view is built; rows that change
        # (categories, departments, staff) are read again on every page instead.
        self.dynamic_options = options if callable(options) else None
        super().__init__(column, name, options=None if callable(options) else options)
        self.as_int = as_int

    def validate(self, value: Any) -> bool:
        return not self.as_int or str(value).isdigit()

    def clean(self, value: Any) -> Any:
        return int(value) if self.as_int else value

    def terms(self, value: Any) -> list[Term]:
        return [choice_term(self.column.name, self.column.db_value(value))]

    def operation(self) -> str:
        return "is"


class DepartmentFilter(ChoiceFilter):
    """A department, said as the API says it: an agent outside it sees only their own there."""

    def __init__(self) -> None:
        super().__init__(Ticket.department, "Department", _departments, as_int=True)

    def terms(self, value: Any) -> list[Term]:
        staff = current_staff()
        return scope_terms(None) if staff is None else [department_term(staff, int(value))]


class AssigneeFilter(TermFilter):
    def __init__(self) -> None:
        super().__init__(Ticket.assignee, "Assignee")
        self.dynamic_options = lambda: [("me", "me"), ("unassigned", "unassigned")] + [
            (str(staff_id), name) for staff_id, name, active_now in staff_names() if active_now]

    def validate(self, value: Any) -> bool:
        return value in ("me", "unassigned") or str(value).isdigit()

    def terms(self, value: Any) -> list[Term]:
        staff = current_staff()
        if staff is None:
            return scope_terms(None)
        return [assignee_term(staff, UNASSIGNED if value == "unassigned" else value)]

    def operation(self) -> str:
        return "is"


class TagFilter(TermFilter):
    def __init__(self) -> None:
        super().__init__(Ticket.tags, "Tag")

    def terms(self, value: Any) -> list[Term]:
        return [tag_term(str(value))]

    def operation(self) -> str:
        return "includes"


class OverdueFilter(TermFilter):
    def __init__(self) -> None:
        super().__init__(Ticket.due_at, "Overdue", options=[("yes", "yes"), ("no", "no")])

    def terms(self, value: Any) -> list[Term]:
        return [overdue_term(value == "yes", utcnow())]

    def operation(self) -> str:
        return "is"


class OpenFilter(TermFilter):
    def __init__(self) -> None:
        super().__init__(Ticket.status, "Open", options=[("yes", "not resolved or closed"),
                                                         ("no", "resolved or closed"),
                                                         ("all", "any status")])

    def terms(self, value: Any) -> list[Term]:
        if value == "all":
            return []  # chosen to lift the inbox's default of active tickets only
        return [("active" if value == "yes" else "done", (), ())]

    def operation(self) -> str:
        return "is"


class WaitingFilter(TermFilter):
    def __init__(self) -> None:
        super().__init__(Ticket.last_customer_message_at, "Waiting on us",
                         options=[("yes", "yes"), ("no", "no")])

    def terms(self, value: Any) -> list[Term]:
        return [("waiting", (value == "yes",), ())]

    def operation(self) -> str:
        return "is"


def _categories() -> list[tuple[str, str]]:
    return sorted(((str(k), label) for k, label in category_labels().items()),
                  key=lambda choice: choice[1].lower())


def _departments() -> list[tuple[str, str]]:
    return [(str(d_id), name) for d_id, name, _active in departments()]


def _name_cells() -> tuple[dict[int, str], dict[int, str], dict[int, str]]:
    """The inbox's category, department and staff cells by id, escaped: made once per change
    of a name (``desk.kept_by_names``), not once a page."""
    return ({c_id: str(escape(label)) for c_id, label in category_labels().items()},
            {d_id: str(escape(name)) for d_id, name, _active in departments()},
            {s_id: str(escape(name)) for s_id, name, _active in staff_names()})


def _channels() -> list[tuple[str, str]]:
    """The channels the enabled plugins (and core) declare."""
    return loket().channels.choices()


def reply_window(ticket: Ticket) -> dict[str, Any] | None:
    """How long free-form replies stay allowed on the ticket's channel (its ``reply_window``
    after the customer's last message), for the reply form; None when the channel has none."""
    spec = loket().channels.get(ticket.channel)
    if spec is None or spec.reply_window is None or ticket.last_customer_message_at is None:
        return None
    left = ticket.last_customer_message_at + spec.reply_window - utcnow()
    minutes = int(abs(left.total_seconds()) // 60)
    return {"open": left.total_seconds() > 0, "label": spec.label,
            "hours": minutes // 60, "minutes": minutes % 60,
            "window_hours": int(spec.reply_window.total_seconds() // 3600)}


def _link_formatter(view: Any, context: Any, model: Ticket, name: str) -> Markup:
    text = f"#{model.id}" if name == "id" else model.subject
    return Markup('<a class="loket-ticket-link" href="{}">{}</a>').format(
        url_for("ticket.page", number=model.id), text)


def _subject_formatter(view: Any, context: Any, model: Ticket, name: str) -> Markup:
    link = _link_formatter(view, context, model, name)
    # "waiting" is selected by TicketListView.get_query from waiting_on_us().
    if getattr(model, "waiting", False):
        return Markup('{} <span class="badge loket-waiting">waiting on us</span>').format(link)
    return link


def _name_formatter(view: Any, context: Any, model: Ticket, name: str) -> str:
    related = getattr(model, name)
    if name == "category":
        return category_label(related)
    return "" if related is None else str(related)


def _channel_formatter(view: Any, context: Any, model: Ticket, name: str) -> Markup:
    """The channel's declared label as a badge; a channel no plugin serves now keeps its name."""
    return Markup('<span class="badge badge-light loket-channel" title="{}">{}</span>').format(
        model.channel, loket().channels.label(model.channel))


def _requester_formatter(view: Any, context: Any, model: Ticket, name: str) -> str:
    return model.requester


def _label_formatter(view: Any, context: Any, model: Ticket, name: str) -> Markup:
    value = getattr(model, name)
    labels = STATUS_LABELS if name == "status" else PRIORITY_LABELS
    return Markup('<span class="loket-{}-{}">{}</span>').format(
        name, value, labels.get(value, value))


# -- The inbox -------------------------------------------------------------------------------


def _label_cell(kind: str, code: str, label: str) -> str:
    """A status or priority cell's content, as ``_label_formatter`` writes it."""
    return f'<span class="loket-{kind}-{escape(code)}">{escape(label)}</span>'


def _channel_cell(name: str, label: str) -> str:
    """A channel cell's content, as ``_channel_formatter`` writes it."""
    return (f'<span class="badge badge-light loket-channel" title="{escape(name)}">'
            f"{escape(label)}</span>")


# The cells of the known statuses and priorities, escaped once per process.
_STATUS_CELLS = {code: _label_cell("status", code, label) for code, label in STATUS_LABELS.items()}
_PRIORITY_CELLS = {code: _label_cell("priority", code, label)
                   for code, label in PRIORITY_LABELS.items()}


# What a row of the inbox reads (``TicketListView.row_html``): the ticket's own columns and
# its contact's name; categories, departments and staff are named from the page's look-ups.
LIST_COLUMNS = (Ticket.id, Ticket.subject, Ticket.status, Ticket.priority, Ticket.channel,
                Ticket.category, Ticket.department, Ticket.assignee, Ticket.contact,
                Ticket.updated_at, Ticket.due_at, Ticket.requester_name,
                Contact.name.alias("contact_name"), Contact.email.alias("contact_email"))
# A page's columns: the row's, and whether the customer waits on us.
PAGE_COLUMNS = (*LIST_COLUMNS, waiting_on_us().alias("waiting"))


class InboxRow:
    """A ticket as the inbox lists it (``LIST_COLUMNS``): plain values, no related rows.
    Building a peewee row with four joined ones cost more than rendering it."""

    __slots__ = ("id", "subject", "status", "priority", "channel", "category_id",
                 "department_id", "assignee_id", "contact_id", "updated_at", "due_at",
                 "requester_name", "contact_name", "contact_email", "waiting")

    def __init__(self, *, id: int, subject: str, status: str, priority: str, channel: str,  # noqa: A002
                 category: int | None, department: int | None, assignee: int | None,
                 contact: int, updated_at: Any, due_at: Any, requester_name: str,
                 contact_name: str, contact_email: str, waiting: Any) -> None:
        self.id, self.subject, self.status, self.priority = id, subject, status, priority
        self.channel, self.category_id, self.department_id = channel, category, department
        self.assignee_id, self.contact_id, self.updated_at = assignee, contact, updated_at
        self.due_at, self.requester_name, self.waiting = due_at, requester_name, waiting
        self.contact_name, self.contact_email = contact_name, contact_email

    @property
    def requester(self) -> str:
        """As ``Ticket.requester``: the name given with the ticket, else the contact's."""
        return (self.requester_name or self.contact_name or self.contact_email
                or f"contact {self.contact_id}")


class TicketListView(SecuredModelView):
    """Tickets the viewer may see; rows are read-only, changes go through the services."""

    roles = STAFF
    can_create = False
    can_edit = False
    can_delete = False
    can_view_details = False
    # No per-row buttons: the header had an empty "Actions" column over no cells.
    column_display_actions = False
    simple_list_pager = True  # no COUNT(*) over the whole table
    page_size = 50
    list_template = "loket_admin/ticket_list.html"
    column_list = ("id", "subject", "status", "priority", "channel", "category", "department",
                   "assignee", "contact", "updated_at", "due_at")
    column_labels = {"id": "Number", "updated_at": "Updated", "due_at": "Due"}
    # Each order has an index over the active tickets (see access.SORTS): a page is one
    # index range. Sorting by the stored codes of status or priority gave an alphabetical
    # order no agent wants; the filters pick those instead.
    column_sortable_list = tuple(SORTS)
    column_default_sort = ("updated_at", True)
    column_formatters = {"id": _link_formatter, "subject": _subject_formatter,
                         "status": _label_formatter, "priority": _label_formatter,
                         "category": _name_formatter, "department": _name_formatter,
                         "assignee": _name_formatter, "contact": _requester_formatter,
                         "channel": _channel_formatter}
    column_type_formatters = TIME_FORMATTERS
    # Only to switch the search box on; get_list does the searching itself.
    column_searchable_list = ("subject",)
    column_filters = (
        OpenFilter(),
        ChoiceFilter(Ticket.status, "Status", [(s, STATUS_LABELS[s]) for s in Status.ALL]),
        ChoiceFilter(Ticket.priority, "Priority", list(PRIORITY_LABELS.items())),
        ChoiceFilter(Ticket.channel, "Channel", _channels),
        ChoiceFilter(Ticket.category, "Category", _categories, as_int=True),
        DepartmentFilter(),
        AssigneeFilter(),
        TagFilter(),
        OverdueFilter(),
        WaitingFilter(),
    )

    # The tabs above the list: filters by their names, as (label, {filter name: value}).
    TABS = (("Mine", {"Assignee": "me"}), ("Waiting on us", {"Waiting on us": "yes"}),
            ("Unassigned, open", {"Assignee": "unassigned", "Open": "yes"}),
            ("Resolved or closed", {"Open": "no"}), ("Any status", {"Open": "all"}))

    def tabs(self) -> list[tuple[str, str]]:
        # The same links on every page: made once per process (and per script root).
        key = request.script_root
        found = self._tab_links.get(key)
        if found is None:
            index = {str(f.name): i for i, f in enumerate(self._filters)}
            found = self._tab_links[key] = [(label, url_for(".index_view", **{
                f"flt{n}_{index[name]}": value for n, (name, value) in enumerate(chosen.items())}))
                for label, chosen in self.TABS]
        return found

    _tab_links: dict[str, list[tuple[str, str]]] = {}

    def picks_status(self, filters: Any) -> bool:
        """Whether the agent chose statuses; otherwise the inbox shows active tickets only."""
        return any(self._filters[index].column is Ticket.status for index, *_ in filters or ())

    def _get_filter_groups(self) -> Any:
        # Flask-Admin rebuilds the groups on every page; their names, operations and fixed
        # choices do not change, so they are built once and only the choices read from the
        # database (categories, departments, staff) are filled in per request.
        static = self.__dict__.get("_static_filter_groups")
        if static is None:
            static = self._static_filter_groups = super()._get_filter_groups() or {}
        # The read ones come from the names (and the channels' labels, by language): made
        # once per change of a name, language and view.
        return kept_by_names(f"filter groups {id(self)} {get_locale()}",
                             lambda: self._filled_filter_groups(static))

    def _filled_filter_groups(self, static: dict[str, Any]) -> Any:
        groups = {}
        for key, items in static.items():
            groups[key] = fresh = []
            for item in items:
                dynamic = getattr(self._filters[item["index"]], "dynamic_options", None)
                fresh.append(item if dynamic is None else
                             {**item, "options": [(k, str(v)) for k, v in dynamic()]})
        return groups or None

    def search_placeholder(self) -> str:
        return "Number, subject, contact, message text"

    def get_query(self) -> Any:
        return inbox(current_staff()).select_extend(waiting_on_us().alias("waiting"))

    def get_count_query(self) -> Any:
        return self.get_query()

    def get_one(self, id: Any) -> Ticket | None:
        number = parse_id(id)
        if number is None:
            return None
        return self.get_query().where(Ticket.id == number).first()

    def get_list(self, page: Any, sort_column: Any, sort_desc: Any, search: Any, filters: Any,
                 execute: bool = True, page_size: Any = None) -> Any:
        """One page by keyset (``?after=<cursor>``), never by OFFSET, and no count."""
        staff = current_staff()
        scope = scope_terms(staff)
        terms = list(scope)
        for index, _name, value in filters or ():
            chosen = self._filters[index]
            terms.extend(chosen.terms(chosen.clean(value)))
        if not self.picks_status(filters):
            terms.append(("active", (), ()))
        sort, descending = ((sort_column, bool(sort_desc)) if sort_column in SORTS
                            else ("updated_at", True))
        after = request.args.get("after", "")
        cursor = decode_cursor(after, sort) if after else None
        size = page_size or self.page_size
        if execute and not (search and staff is not None):
            # Only the columns a row shows (and the cursor reads), as plain rows (the five
            # tables' every column cost some 600 timestamp and JSON conversions a page in
            # peewee), by SQL built once per shape of the page.
            found = inbox_rows("console", PAGE_COLUMNS, terms, sort=sort,
                               descending=descending, cursor=cursor, size=size,
                               ids_first=walks_far(self._wanted(filters, None)), make=InboxRow)
            g.loket_inbox_next, g.loket_inbox_sort = found.next_cursor, sort
            return None, found.tickets
        # Only the contact joined: the rows name the rest from the page's look-ups.
        query = inbox(staff, related=False)
        for term in terms[len(scope):]:
            query = query.where(condition(term))
        if search and staff is not None:
            query = filter_inbox(query, staff, InboxFilter(text=search))
        if not execute:
            return None, query
        found = inbox_page(query.select(*PAGE_COLUMNS), sort=sort, descending=descending,
                           cursor=cursor, size=size,
                           ids_first=walks_far(self._wanted(filters, search)), make=InboxRow)
        g.loket_inbox_next, g.loket_inbox_sort = found.next_cursor, sort
        return None, found.tickets

    def _wanted(self, filters: Any, search: Any) -> InboxFilter:
        """The chosen filters as far as ``access.walks_far`` asks about them."""
        chosen = {type(self._filters[index]): value for index, _name, value in filters or ()}
        status = next((value for index, _name, value in filters or ()
                       if self._filters[index].column is Ticket.status), None)
        return InboxFilter(active=not self.picks_status(filters), text=search or None,
                           tag=chosen.get(TagFilter), overdue=chosen.get(OverdueFilter) == "yes",
                           status=status)

    @expose("/")
    def index_view(self) -> Any:
        """The inbox: one query for its rows, then the page, built without Flask-Admin's list
        machinery (its list template and macros, forms and per-column helpers cost some 10 ms
        of CPU a page). Same address, query string, markup and controls as Flask-Admin's list:
        its tabs, filters, sorts, search, page sizes, keyset pages and bulk actions."""
        view_args = self._get_list_extra_args()  # refuses out-of-range numbers, reads filters
        sort_column = self._get_column_by_idx(view_args.sort)
        page_size = self.get_safe_page_size(view_args.page_size)
        _count, rows = self.get_list(view_args.page, sort_column and sort_column[0],
                                     view_args.sort_desc, view_args.search, view_args.filters,
                                     page_size=page_size)
        actions, confirmations = self.get_actions_list()
        header, page_size_urls, clear_search_url, return_url = self.list_links(
            view_args, bool(actions))
        return self.render(
            self.list_template, rows=self.rows_html(rows, bool(actions)), row_count=len(rows),
            header=header, text=self.texts(),
            page_size=page_size, default_page_size=self.page_size,
            page_size_urls=page_size_urls,
            sort_column=view_args.sort, sort_desc=view_args.sort_desc,
            search=view_args.search, search_placeholder=self.search_placeholder(),
            clear_search_url=clear_search_url,
            filter_groups=self._get_filter_groups(), active_filters=view_args.filters,
            filter_args=self._get_filters(view_args.filters),
            actions=actions, actions_confirmation=confirmations,
            return_url=return_url, extra_args=view_args.extra_args)

    LINKS_KEPT = 512  # sets of list arguments; the store is emptied when it is full

    def list_links(self, view_args: Any, selectable: bool) -> tuple[Any, ...]:
        """The header row and the links that carry the list's arguments over (page sizes,
        clearing the search, this list): a dozen ``url_for`` a page, the same for the same
        arguments. Made once per set of arguments, language and script root, and kept;
        nothing in them depends on who asks."""
        key = (request.script_root, str(get_locale()), selectable, view_args.page,
               view_args.page_size, view_args.sort, view_args.sort_desc, view_args.search,
               tuple(tuple(f) for f in view_args.filters or ()),
               tuple(sorted(view_args.extra_args.items())))
        store = self.__dict__.get("_list_links")
        if store is None:
            store = self._list_links = {}  # per view instance, so per app
        found = store.get(key)
        if found is None:
            list_url, text = self._get_list_url, self.texts()
            found = (self.header_html(view_args, selectable),
                     [(size, text["sizes"][size], list_url(view_args.clone(page_size=size)))
                      for size in self.page_size_options],
                     list_url(view_args.clone(page=0, search=None, filters=None)),
                     list_url(view_args))
            if len(store) >= self.LINKS_KEPT:
                store.clear()
            store[key] = found
        return found

    def texts(self) -> dict[str, Any]:
        """The list's words in Flask-Admin's catalogue, translated once per process and
        language rather than on every page (each look-up cost some 30 µs)."""
        locale = str(get_locale())
        found = self._texts.get(locale)
        if found is None:
            words = ("List", "Add Filter", "items", "With selected", "Search", "Apply",
                     "Reset Filters", "Please select at least one record.",
                     "Select all records")
            found = {word: str(admin_gettext(word)) for word in words}
            found["sizes"] = {size: str(admin_ngettext(f"{size} item", f"{size} items", size))
                              for size in self.page_size_options}
            found["sort by"] = {label: str(admin_gettext("Sort by %(name)s", name=label))
                                for _name, label in self._list_columns}
            found["empty"] = str(self.get_empty_list_message())
            self._texts[locale] = found
        return found

    _texts: dict[str, dict[str, Any]] = {}

    def header_html(self, view_args: Any, selectable: bool) -> Markup:
        """The table's header row as Flask-Admin's list template writes it."""
        texts = self.texts()
        cells = []
        if selectable:
            cells.append('<th class="list-checkbox-column">\n<label class="loket-row-select">'
                         f'<span class="sr-only">{escape(texts["Select all records"])}'
                         '</span>\n<input type="checkbox" name="rowtoggle" '
                         'class="action-rowtoggle" /></label>\n</th>')
        for column, (name, label) in enumerate(self._list_columns):
            text = escape(label)
            if self.is_sortable(name):
                title = escape(texts["sort by"][label])
                if view_args.sort == column:
                    desc = None if view_args.sort_desc else 1
                    chevron = "down" if view_args.sort_desc else "up"
                    text = Markup(
                        f'<a href="{escape(self._get_list_url(view_args.clone(sort=column, sort_desc=desc)))}"'
                        f' title="{title}">{text} <span class="fa fa-chevron-{chevron} '
                        f'glyphicon glyphicon-chevron-{chevron}"></span></a>')
                else:
                    text = Markup(
                        f'<a href="{escape(self._get_list_url(view_args.clone(sort=column, sort_desc=None)))}"'
                        f' title="{title}">{text}</a>')
            cells.append(f'<th class="column-header col-{escape(name.replace(".", "-"))}">'
                         f"{text}</th>")
        return Markup("\n".join(cells))

    def rows_html(self, rows: list[Ticket], selectable: bool) -> Markup:
        """The table's rows; the first is the skip link's target."""
        if not rows:
            return Markup('<tr>\n<td colspan="999">\n<div class="text-center">\n'
                          f"{escape(self.texts()['empty'])}\n</div>\n</td>\n</tr>")
        context = self._row_context()
        html = [f"<tr>{self.row_html(row, selectable, context)}</tr>" for row in rows]
        html[0] = f'<tr id="loket-first-row" tabindex="-1">{html[0][4:]}'
        return Markup("\n".join(html))

    def _row_context(self) -> tuple[Any, ...]:
        """What every row reads, looked up (and escaped) once a page: the ticket link, the
        status, priority and channel cells, category, department and staff names, and the
        time "3 h ago" counts from."""
        # Channel labels are translatable: each read asks the catalogue, so once a page here.
        channels = {name: _channel_cell(name, label)
                    for name, label in loket().channels.choices()}
        return (self._ticket_url_prefix(), channels, *kept_by_names("inbox cells", _name_cells),
                utcnow())

    def row_html(self, row: Ticket, selectable: bool, context: Any = None) -> Markup:
        """One row of the inbox, built here rather than cell by cell through Flask-Admin's
        list macros (which cost some 0.5 ms a cell). The same cells the formatters above
        give, every value escaped (names and labels once a page, in ``_row_context``); the
        ``col-<name>`` classes and the row's checkbox as the list template writes them."""
        prefix, channels, categories, departments, staff, now = (
            context or self._row_context())
        link = f"{prefix}{row.id}/"
        subject = f'<a class="loket-ticket-link" href="{link}">{escape(row.subject)}</a>'
        if getattr(row, "waiting", False):
            subject += ' <span class="badge loket-waiting">waiting on us</span>'
        status = _STATUS_CELLS.get(row.status) or _label_cell("status", row.status, row.status)
        priority = (_PRIORITY_CELLS.get(row.priority)
                    or _label_cell("priority", row.priority, row.priority))
        channel = channels.get(row.channel) or _channel_cell(row.channel, row.channel)
        # The same labelled box as the console's list template (admin/model/list.html).
        box = (f'<td><label class="loket-row-select"><span class="sr-only">Select record '
               f'{row.id}</span><input type="checkbox" name="rowid" class="action-checkbox" '
               f'value="{row.id}" /></label></td>' if selectable else "")
        return Markup(
            f'{box}<td class="col-id"><a class="loket-ticket-link" href="{link}">#{row.id}</a>'
            f'</td><td class="col-subject">{subject}</td>'
            f'<td class="col-status">{status}</td>'
            f'<td class="col-priority">{priority}</td>'
            f'<td class="col-channel">{channel}</td>'
            f'<td class="col-category">{categories.get(row.category_id, "")}</td>'
            f'<td class="col-department">{departments.get(row.department_id, "")}</td>'
            f'<td class="col-assignee">{staff.get(row.assignee_id, "")}</td>'
            f'<td class="col-contact">{escape(row.requester)}</td>'
            f'<td class="col-updated_at">{human_time(row.updated_at, now)}</td>'
            f'<td class="col-due_at">{human_time(row.due_at, now)}</td>')

    def _ticket_url_prefix(self) -> str:
        # url_for once a request, not once a row: the page's link is this plus "<number>/".
        prefix = g.get("_loket_ticket_url")
        if prefix is None:
            prefix = g._loket_ticket_url = str(escape(
                url_for("ticket.page", number=1)))[:-len("1/")]
        return prefix

    def sorted_by_due(self) -> bool:
        return g.get("loket_inbox_sort") == "due_at"

    def next_page_url(self) -> str | None:
        """The page after this one (same filters, search and order), if there is one."""
        cursor = g.get("loket_inbox_next")
        if cursor is None:
            return None
        args = request.args.to_dict()
        args.pop("page", None)
        args["after"] = cursor
        return url_for(".index_view", **args)

    def first_page_url(self) -> str | None:
        """Back to the first page, when this is a later one."""
        if not request.args.get("after"):
            return None
        args = request.args.to_dict()
        args.pop("after", None)
        args.pop("page", None)
        return url_for(".index_view", **args)

    # -- Bulk actions, each through core.services.tickets ----------------------------------

    def _each(self, ids: Any, change: Any, done: str) -> None:
        numbers = [n for n in map(parse_id, ids) if n is not None]
        changed, refused = 0, []
        for ticket in self.get_query().where(Ticket.id << numbers):
            try:
                change(ticket)
                changed += 1
            except ServiceError as exc:
                refused.append(f"#{ticket.id}: {exc}")
        if changed:
            flash(f"{done}: {changed} ticket(s).", "success")
        for line in refused:
            flash(line, "error")

    @action("assign_me", "Assign to me")
    def action_assign_me(self, ids: Any) -> None:
        actor = _actor()
        self._each(ids, lambda t: _assign(t, actor.staff, actor), "Assigned to you")

    @action("unassign", "Unassign")
    def action_unassign(self, ids: Any) -> None:
        actor = _actor()
        self._each(ids, lambda t: service.assign(t, None, actor), "Unassigned")

    @action("status_open", "Status: open")
    def action_status_open(self, ids: Any) -> None:
        self._status(ids, Status.OPEN)

    @action("status_pending", "Status: pending")
    def action_status_pending(self, ids: Any) -> None:
        self._status(ids, Status.PENDING)

    @action("status_on_hold", "Status: on hold")
    def action_status_on_hold(self, ids: Any) -> None:
        self._status(ids, Status.ON_HOLD)

    @action("status_resolved", "Status: resolved")
    def action_status_resolved(self, ids: Any) -> None:
        self._status(ids, Status.RESOLVED)

    @action("status_closed", "Status: closed", "Close the selected tickets for good?")
    def action_status_closed(self, ids: Any) -> None:
        self._status(ids, Status.CLOSED)

    def _status(self, ids: Any, status: str) -> None:
        actor = _actor()
        self._each(ids, lambda t: service.change_status(t, status, actor),
                   f"Status set to {STATUS_LABELS[status]}")

    # Departments change at run time, so their "move to" actions are built per request.
    DEPARTMENT_ACTION = "department_"

    def get_actions_list(self) -> Any:
        actions, confirmations = super().get_actions_list()
        for department_id, name, active_now in departments():
            if active_now:
                actions.append((f"{self.DEPARTMENT_ACTION}{department_id}", f"Move to {name}"))
        return actions, confirmations

    def handle_action(self, return_view: str | None = None) -> Any:
        name = request.form.get("action", "")
        if name.startswith(self.DEPARTMENT_ACTION):
            form = self.action_form()
            department_id = name[len(self.DEPARTMENT_ACTION):]
            if self.validate_form(form) and parse_id(department_id):
                department = Department.get_or_none(Department.id == parse_id(department_id))
                if department is None:
                    flash("That department no longer exists.", "error")
                else:
                    actor = _actor()
                    self._each(request.form.getlist("rowid"),
                               lambda t: service.update_ticket(t, actor, department=department),
                               f"Moved to {department.name}")
            else:
                flash("The form expired; please try again.", "error")
            return redirect(url_for(".index_view"))
        return super().handle_action(return_view)


def _assign(ticket: Ticket, assignee: Staff | None, actor: Actor) -> Any:
    """Assign through the service, after the rule the API applies too (``core.services.access``)."""
    refusal = assignment_refusal(ticket, assignee)
    if refusal is not None:
        raise ServiceError(refusal)
    return service.assign(ticket, assignee, actor)


# -- The ticket page -------------------------------------------------------------------------


class PageForm(FlaskForm):
    """The ticket page's forms: Flask-WTF reads the request and checks the CSRF token."""


class ReplyForm(PageForm):
    text = TextAreaField("Reply", validators=[DataRequired(), Length(max=TEXT_MAX)])
    status = SelectField("Then set status", choices=[(s, STATUS_LABELS[s]) for s in Status.ALL],
                         default=Status.PENDING)
    files = MultipleFileField("Attach files")
    # The ticket's participants (people in the customer's Cc); the choices are set per
    # ticket from ``copy_candidates``, so a posted id outside them fails validation.
    copy_to = SelectMultipleField("Copy to", coerce=int, choices=[],
                                  widget=ListWidget(prefix_label=False),
                                  option_widget=CheckboxInput())

    def offer_copies(self, ticket: Ticket) -> None:
        self.copy_to.choices = [(contact_id, f"{name} <{address}>" if name else address)
                                for contact_id, name, address in copy_candidates(ticket)]


class NoteForm(PageForm):
    text = TextAreaField("Internal note", validators=[DataRequired(), Length(max=TEXT_MAX)])
    files = MultipleFileField("Attach files")


class StatusForm(PageForm):
    status = SelectField("Status", choices=[(s, STATUS_LABELS[s]) for s in Status.ALL])


class PriorityForm(PageForm):
    priority = SelectField("Priority", choices=list(PRIORITY_LABELS.items()))


class AssignForm(PageForm):
    assignee = SelectField("Assignee", choices=[], validate_choice=False)


class DepartmentForm(PageForm):
    department = SelectField("Department", choices=[], validate_choice=False)


class EscalateForm(PageForm):
    reason = StringField("Reason", validators=[Optional(), Length(max=500)])


class RetryForm(PageForm):
    """Send a failed message again: only the CSRF token is posted."""


class TicketPageView(SecuredBaseView):
    """/admin/ticket/<number>: the thread and every control an agent needs."""

    roles = STAFF

    def is_visible(self) -> bool:
        return False

    def _ticket(self, number: int) -> Ticket:
        staff = current_staff()
        ticket = Ticket.get_or_none(Ticket.id == number)
        # Not found and not yours look the same: numbers are not a map of the desk.
        if ticket is None or staff is None or not can_see(staff, ticket):
            abort(404)
        return ticket

    @expose("/")
    def index(self) -> Any:
        number = request.args.get("number", "").lstrip("#")
        if number.isdigit():
            return redirect(url_for(".page", number=int(number)))
        return redirect(url_for("tickets.index_view"))

    @expose("/<int:number>/")
    def page(self, number: int) -> Any:
        ticket = self._ticket(number)
        staff = current_staff()
        messages = list(prefetch(
            Message.select().where(Message.ticket == ticket).order_by(Message.created_at,
                                                                       Message.id),
            Attachment.select().where(Attachment.ticket == ticket)))
        events = list(TicketEvent.select().where(TicketEvent.ticket == ticket)
                      .order_by(TicketEvent.created_at, TicketEvent.id))
        thread: list[tuple[Any, str, Any]] = [(m.created_at, "message", m) for m in messages]
        thread += [(e.created_at, "event", e) for e in events
                   if e.kind not in ("reply", "note", "message")]
        thread.sort(key=lambda item: (item[0], 0 if item[1] == "message" else 1))
        canned = list(self._canned(staff))
        reply_form = ReplyForm(formdata=None)
        reply_form.offer_copies(ticket)
        # Reply all, as a mail program does: every participant is ticked; the agent unticks.
        reply_form.copy_to.data = [contact_id for contact_id, _ in reply_form.copy_to.choices]
        chosen = request.args.get("canned", "")
        if chosen.isdigit():
            picked = next((c for c in canned if c.id == int(chosen)), None)
            if picked is not None:
                reply_form.text.data = picked.body
        status_form = StatusForm(formdata=None, status=ticket.status)
        priority_form = PriorityForm(formdata=None, priority=ticket.priority)
        assign_form = AssignForm(formdata=None, assignee=str(ticket.assignee_id or ""))
        assign_form.assignee.choices = [("", "nobody")] + [
            (str(s.id), s.name) for s in self._assignees(ticket)]
        department_form = DepartmentForm(formdata=None,
                                         department=str(ticket.department_id or ""))
        department_form.department.choices = [("", "—")] + [
            (str(d.id), d.name) for d in Department.select().where(Department.active)
            .order_by(Department.name)]
        return self.render(
            "loket_admin/ticket.html", ticket=ticket, thread=thread, canned=canned,
            reply_form=reply_form, note_form=NoteForm(formdata=None), status_form=status_form,
            priority_form=priority_form, assign_form=assign_form,
            department_form=department_form, escalate_form=EscalateForm(formdata=None),
            retry_form=RetryForm(formdata=None), channels=loket().channels,
            status_labels=STATUS_LABELS, form_data=_answers(ticket), uploads=upload_limits(),
            panels=_panels(ticket, staff),
            reply_window=reply_window(ticket))

    def _canned(self, staff: Staff | None) -> Any:
        query = CannedReply.select().order_by(CannedReply.title)
        if staff is not None and not staff.is_admin:
            query = query.where(CannedReply.department.is_null()
                                | CannedReply.department.in_(list(staff.department_ids())))
        return query

    def _assignees(self, ticket: Ticket) -> Any:
        query = assignable_staff(ticket.department_id)
        return query.orwhere(Staff.id == (ticket.assignee_id or 0))

    def _back(self, ticket: Ticket) -> Any:
        return redirect(url_for(".page", number=ticket.id))

    def _run(self, ticket: Ticket, change: Any, done: str) -> Any:
        try:
            change()
        except ServiceError as exc:
            flash(str(exc), "error")
        else:
            flash(done, "success")
        return self._back(ticket)

    def _submitted(self, number: int, form_class: type) -> tuple[Ticket, Any]:
        """The ticket and its posted, validated form; an invalid one goes back with its errors."""
        ticket = self._ticket(number)
        form = form_class()
        if isinstance(form, ReplyForm):
            form.offer_copies(ticket)
        if not form.validate_on_submit():
            abort(self._invalid(ticket, form))
        return ticket, form

    def _invalid(self, ticket: Ticket, form: Any) -> Any:
        for field, errors in form.errors.items():
            for error in errors:
                flash(f"{field}: {error}", "error")
        return self._back(ticket)

    def _files(self, ticket: Ticket, form: Any) -> list[Any]:
        """The form's files, checked and stored by the help center's own upload code, so
        agents' files follow the same rules (types, size, count) as customers'."""
        stored = store_uploads(form.files)
        if stored is None:
            abort(self._invalid(ticket, form))
        return stored

    @expose("/<int:number>/reply", methods=("POST",))
    def reply(self, number: int) -> Any:
        ticket, form = self._submitted(number, ReplyForm)
        staff = current_staff()
        files = self._files(ticket, form)
        try:
            message = service.reply(ticket, staff, form.text.data, status=form.status.data,
                                    attachments=files, copy_to=form.copy_to.data or [])
        except ServiceError as exc:
            flash(str(exc), "error")
        else:
            category, text = _reply_outcome(message)
            flash(text, category)
        return self._back(ticket)

    @expose("/<int:number>/note", methods=("POST",))
    def note(self, number: int) -> Any:
        ticket, form = self._submitted(number, NoteForm)
        staff = current_staff()
        files = self._files(ticket, form)
        return self._run(ticket, lambda: service.add_note(ticket, staff, form.text.data,
                                                          attachments=files),
                         "Note added.")

    @expose("/<int:number>/status", methods=("POST",))
    def status(self, number: int) -> Any:
        ticket, form = self._submitted(number, StatusForm)
        return self._run(ticket, lambda: service.change_status(ticket, form.status.data,
                                                               _actor()), "Status changed.")

    @expose("/<int:number>/priority", methods=("POST",))
    def priority(self, number: int) -> Any:
        ticket, form = self._submitted(number, PriorityForm)
        return self._run(ticket, lambda: service.update_ticket(
            ticket, _actor(), priority=form.priority.data), "Priority changed.")

    @expose("/<int:number>/assign", methods=("POST",))
    def assign(self, number: int) -> Any:
        ticket, form = self._submitted(number, AssignForm)
        value = form.assignee.data or ""
        if value == "me":
            assignee = current_staff()
        elif value.isdigit():
            assignee = Staff.get_or_none(Staff.id == parse_id(value))
            if assignee is None:
                abort(400)
        else:
            assignee = None
        return self._run(ticket, lambda: _assign(ticket, assignee, _actor()),
                         "Assignee changed.")

    @expose("/<int:number>/department", methods=("POST",))
    def department(self, number: int) -> Any:
        ticket = self._ticket(number)
        form = DepartmentForm()
        if not form.validate_on_submit() or not (form.department.data or "").isdigit():
            flash("Choose a department.", "error")
            return self._back(ticket)
        department = Department.get_or_none(Department.id == parse_id(form.department.data))
        if department is None:
            abort(400)
        response = self._run(ticket, lambda: service.update_ticket(
            ticket, _actor(), department=department), f"Moved to {department.name}.")
        return self._after_move(ticket, response)

    @expose("/<int:number>/escalate", methods=("POST",))
    def escalate(self, number: int) -> Any:
        ticket, form = self._submitted(number, EscalateForm)
        response = self._run(ticket, lambda: service.escalate(
            ticket, _actor(), form.reason.data or "escalated by an agent"), "Escalated.")
        return self._after_move(ticket, response)

    def _after_move(self, ticket: Ticket, response: Any) -> Any:
        # Moving a ticket out of one's departments ends one's access to it.
        staff = current_staff()
        fresh = Ticket.get_by_id(ticket.id)
        if staff is not None and not can_see(staff, fresh):
            return redirect(url_for("tickets.index_view"))
        return response

    @expose("/<int:number>/attachment/<int:attachment_id>")
    def attachment(self, number: int, attachment_id: int) -> Any:
        ticket = self._ticket(number)
        return download(find_attachment(ticket.id, attachment_id, public=False),
                        loket().config["attachments_path"])


    def _message(self, ticket: Ticket, message_id: int) -> Message:
        message = Message.get_or_none((Message.id == message_id) & (Message.ticket == ticket))
        if message is None:
            abort(404)
        return message

    @expose("/<int:number>/message/<int:message_id>/retry", methods=("POST",))
    def retry(self, number: int, message_id: int) -> Any:
        ticket, _form = self._submitted(number, RetryForm)
        message = self._message(ticket, message_id)
        return self._run(ticket, lambda: service.retry_delivery(message, _actor()),
                         "The message is queued to be sent again.")

    @expose("/<int:number>/message/<int:message_id>/raw")
    def raw(self, number: int, message_id: int) -> Any:
        """The original as received: shown as escaped text, or downloaded; never served inline."""
        ticket = self._ticket(number)
        message = self._message(ticket, message_id)
        if not message.raw_path:
            abort(404)
        try:
            data = read_raw(message.raw_path)
        except (OSError, ValueError):
            abort(404)
        if request.args.get("download"):
            response = Response(data, mimetype="application/octet-stream")
            response.headers["Content-Disposition"] = (
                f'attachment; filename="ticket-{ticket.id}-message-{message.id}.raw"')
            response.headers["X-Content-Type-Options"] = "nosniff"
            response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
            return response
        return self.render("loket_admin/raw.html", ticket=ticket, message=message,
                           text=data.decode("utf-8", errors="replace"))


def _reply_outcome(reply: Message) -> tuple[str, str]:
    """What became of a reply, said as it is: no "sent" for a reply that waits."""
    reply = Message.get_by_id(reply.id)
    channels = loket().channels
    copies = ", ".join(reply.copy_to.split())
    to = f"{reply.recipient} (copy to {copies})" if copies else reply.recipient
    if reply.delivery_state in (Delivery.SENT, Delivery.DELIVERED, Delivery.READ):
        return "success", f"Reply sent by {channels.label(reply.channel)} to {to}."
    if reply.delivery_state == Delivery.QUEUED:
        return "success", (f"Reply queued: it goes out by {channels.label(reply.channel)} "
                           f"to {to}; its state shows on the message.")
    if reply.delivery_state == Delivery.FAILED:
        return "error", f"The reply could not be sent: {reply.delivery_error}"
    notice = (Message.select().where((Message.ticket == reply.ticket_id)
                                     & (Message.notification != "") & (Message.id > reply.id))
              .order_by(Message.id).first())
    if notice is not None:
        return "success", (f"Reply saved on the customer's tracking page; they are told by "
                           f"{channels.label(notice.channel)} at {notice.recipient}.")
    return "warning", ("Reply saved on the customer's tracking page. No channel can reach "
                       "this customer, so they see it only when they open their tracking link."
                       + (f" ({reply.delivery_error})" if reply.delivery_error else ""))


__all__ = ["TicketListView", "TicketPageView", "search_clause"]


def _panels(ticket: Ticket, staff: Staff | None) -> list[Any]:
    """The plugins' panels for this ticket (``ticket_panels``), in their order."""
    found = loket().hook.ticket_panels(ticket=ticket, staff=staff)
    panels = [panel for result in found for panel in (result or ())]
    return sorted(panels, key=lambda panel: (panel.order, str(panel.title)))


def _answers(ticket: Ticket) -> list[tuple[str, Any]]:
    """The ticket's answers to its category's questions, by their labels where still known."""
    answers = ticket.form_data or {}
    if not answers:
        return []
    labels = {f.name: f.label for f in CategoryField.select().where(
        CategoryField.category == ticket.category_id)} if ticket.category_id else {}
    return [(labels.get(name, name), value) for name, value in answers.items()]
