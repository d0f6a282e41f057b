"""Who may see what: the categories a customer may pick, the tickets an agent may see and work.

Each rule here has one home, and the help center, the API and the console
all ask it:

* A customer may pick a visible category of an active user type whose
  ancestors are all visible (a hidden parent hides its whole branch).
* An admin sees every ticket. An agent sees the tickets of their departments
  and the tickets assigned to them (an escalation may move a ticket on
  without taking it out of its assignee's hands). A ticket with no
  department yet is the admins' to triage: it holds whatever a customer
  wrote, so it is not shown to every agent of every team.
* A ticket may be given only to an admin or to an agent of the department
  it is in (or will be in, when the same change moves it); nobody gets a
  ticket they could only see because they were given it.
* The inbox is one query: the agent's scope, then the filters, then the
  search words, each searched in the number, subject, message text and
  contact name or address, with LIKE wildcards escaped in one place.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
import re
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from peewee import (
    JOIN,
    OP,
    SQL,
    Alias,
    AutoField,
    BigIntegerField,
    CharField,
    Expression,
    Field,
    ForeignKeyField,
    IntegerField,
    ModelSelect,
    NodeList,
    Table,
    TextField,
    Tuple,
    Value,
    fn,
)
from peewee import Node as SqlNode

from .. import db
from ..i18n import _l
from ..models import (
    Category,
    Contact,
    Department,
    Priority,
    Staff,
    StaffDepartment,
    Status,
    Ticket,
    UserType,
)
from ..numbers import MAX_ID
from . import search

NOT_IN_DEPARTMENT = _l("This agent does not work the ticket's department.")
NOT_ACTIVE = _l("No such active agent.")


# -- Categories a customer may pick -------------------------------------------------------


@dataclass
class Node:
    """A visible category with its visible children, for a category tree."""

    category: Category
    children: list[Node] = field(default_factory=list)


def category_tree(user_type_ids: list[int]) -> list[Node]:
    """The visible categories of these user types in the admin's order; a hidden parent
    hides its subtree."""
    if not user_type_ids:
        return []
    rows = list(Category.select()
                .where(Category.user_type.in_(user_type_ids) & Category.visible)
                .order_by(Category.position, Category.name, Category.id))
    nodes = {row.id: Node(row) for row in rows}
    roots = []
    for row in rows:
        if row.parent_id is None:
            roots.append(nodes[row.id])
        elif row.parent_id in nodes:
            nodes[row.parent_id].children.append(nodes[row.id])
    return roots


def walk(tree: list[Node]) -> list[Node]:
    """Every node of a tree, parents before their children."""
    found: list[Node] = []
    for node in tree:
        found.append(node)
        found.extend(walk(node.children))
    return found


def active_user_types() -> list[UserType]:
    return list(UserType.select().where(UserType.active)
                .order_by(UserType.position, UserType.name, UserType.id))


def user_type_by_slug(slug: str) -> UserType | None:
    return UserType.get_or_none((UserType.slug == slug) & UserType.active)


def visible_category(user_type_slug: str, category_slug: str) -> Category | None:
    """A visible category of an active user type whose ancestors are all visible, or None.

    Its parents come loaded (routing reads them). The look-ups run with SQL
    compiled once (``core.db.Select``): this is the busiest form of the desk.
    """
    category = _category_by_slugs.first(user_type_slug, category_slug)
    if category is None:
        return None
    node, seen = category, {category.id}
    while node.parent_id is not None:
        parent = _category_by_id.first(node.parent_id)
        if (parent is None or not parent.visible or parent.id in seen
                or parent.user_type_id != category.user_type_id):
            return None
        node.parent = parent
        node, seen = parent, seen | {parent.id}
    return category


_category_by_slugs = db.Select(
    "category.visible_by_slugs", Category,
    lambda user_type_slug, category_slug: (
        Category.select().join(UserType)
        .where((UserType.slug == user_type_slug) & UserType.active
               & (Category.slug == category_slug) & Category.visible).limit(1)))

_category_by_id = db.Select(
    "category.by_id", Category,
    lambda category_id: Category.select().where(Category.id == category_id).limit(1))


# -- Tickets an agent may see -------------------------------------------------------------


def category_by_id(category_id: int | None) -> Category | None:
    """A category by id, visible or not (a ticket keeps the category it was filed under)."""
    return _category_by_id.first(category_id) if category_id else None


_department_by_id = db.Select(
    "department.by_id", Department,
    lambda department_id: Department.select().where(Department.id == department_id).limit(1))
_department_by_slug = db.Select(
    "department.by_slug", Department,
    lambda slug: Department.select().where(Department.slug == slug).limit(1))


def department_by_id(department_id: int | None) -> Department | None:
    """A department by id, active or not (routing runs this on every new ticket)."""
    return _department_by_id.first(department_id) if department_id else None


def department_by_slug(slug: str | None) -> Department | None:
    """A department by its slug, active or not."""
    return _department_by_slug.first(slug) if slug else None


_staff_name_by_id = db.Select(
    "staff.name_by_id", Staff,
    lambda staff_id: Staff.select(Staff.id, Staff.name).where(Staff.id == staff_id).limit(1))

# Up to this many agents in a thread are looked up one by one with compiled SQL (a few
# microseconds each); more in one query peewee builds (about 0.1 ms of Python).
_NAMES_ONE_BY_ONE = 3


def staff_names(staff_ids: set[int]) -> dict[int, str]:
    """The names of these staff by id (the agents who wrote in a thread); unknown ids are left out."""
    if len(staff_ids) > _NAMES_ONE_BY_ONE:
        return {row.id: row.name for row in Staff.select(Staff.id, Staff.name)
                .where(Staff.id.in_(list(staff_ids)))}
    names = {}
    for staff_id in staff_ids:
        row = _staff_name_by_id.first(staff_id)
        if row is not None:
            names[staff_id] = row.name
    return names


class _InSubquery(Expression):
    """``lhs IN (subquery)``, the SQL peewee's ``in_`` writes, rendered once. Peewee renders
    a query on the right of IN a second time only to see whether it comes out as "()": every
    inbox page's scope, a rare tag and the page's own numbers (PostgreSQL) are such
    subqueries, nested, so a tag page's WHERE was written some six times (about a quarter
    of its worker CPU). A query is never empty text."""

    def _is_rhs_empty(self, rhs: Any, ctx: Any) -> bool:
        return False


def in_subquery(lhs: Any, query: Any) -> Expression:
    """``lhs.in_(query)`` for a subquery, written once (``_InSubquery``)."""
    return _InSubquery(lhs, OP.IN, query)


def _agent_scope(staff_id: Any, department: Any = Ticket.department,
                 assignee: Any = Ticket.assignee) -> Expression:
    """An agent's tickets: their departments' and those assigned to them (``department``
    and ``assignee``: the columns that say a ticket's, the ticket's own unless given)."""
    departments = StaffDepartment.select(StaffDepartment.department).where(
        StaffDepartment.staff == staff_id)
    return in_subquery(department, departments) | (assignee == staff_id)


def scope_terms(staff: Staff | None) -> list[Term]:
    """``ticket_scope`` as terms (see ``condition``): none for an admin."""
    if staff is None or not staff.active:
        return [("nobody", (), ())]
    if staff.is_admin:
        return []
    return [("scope", (), (staff.id,))]


def ticket_scope(staff: Staff) -> Expression | None:
    """A WHERE clause limiting tickets to what ``staff`` may see; None means no limit."""
    terms = scope_terms(staff)
    return condition(terms[0]) if terms else None


def visible_tickets(staff: Staff) -> ModelSelect:
    query = Ticket.select()
    scope = ticket_scope(staff)
    return query if scope is None else query.where(scope)


def can_see(staff: Staff, ticket: Ticket) -> bool:
    """The same rule as ``ticket_scope``, for one ticket already loaded."""
    if not staff.active:
        return False
    if staff.is_admin or ticket.assignee_id == staff.id:
        return True
    return ticket.department_id is not None and ticket.department_id in staff.department_ids()


def may_work(staff: Staff, department_id: int | None) -> bool:
    """May ``staff`` be given a ticket of this department (None: not routed yet)?"""
    if not staff.active:
        return False
    if staff.is_admin:
        return True
    return department_id is not None and department_id in staff.department_ids()


def assignment_refusal(ticket: Ticket, assignee: Staff | None,
                       department: Department | None = None) -> str | None:
    """Why ``assignee`` cannot be given ``ticket`` (moved to ``department`` if given), or None."""
    if assignee is None:
        return None
    if not assignee.active:
        return str(NOT_ACTIVE)
    target = department.id if department is not None else ticket.department_id
    if not may_work(assignee, target):
        return str(NOT_IN_DEPARTMENT)
    return None


def assignable_staff(department_id: int | None) -> ModelSelect:
    """The staff ``assignment_refusal`` lets a ticket of this department go to."""
    query = Staff.select().where(Staff.active).order_by(Staff.name)
    members = StaffDepartment.select(StaffDepartment.staff).where(
        StaffDepartment.department == (department_id or 0))
    return query.where(Staff.id.in_(members) | (Staff.role == "admin"))


# -- The inbox ------------------------------------------------------------------------------


def search_clause(text: str) -> Expression:
    """Search words, each matching the ticket number, subject, contact name or address, or
    message text; all of them must match. Judged together (``search.search_clause``): two
    common words that seldom meet are not walked through the whole inbox."""
    return search.search_clause(text)


def inbox(staff: Staff | None, *, related: bool = True) -> ModelSelect:
    """The tickets ``staff`` may see, with category, department, assignee and contact joined.

    ``related=False`` joins the contact only, for a list that names categories, departments
    and staff from look-ups of its own (the console's inbox): PostgreSQL's planner spent
    some 0.3 ms a page on the three unused joins, about as long as the query ran.
    """
    if related:
        query = (Ticket.select(Ticket, Category, Department, Staff, Contact)
                 .join(Category, JOIN.LEFT_OUTER, on=(Ticket.category == Category.id))
                 .switch(Ticket)
                 .join(Department, JOIN.LEFT_OUTER, on=(Ticket.department == Department.id))
                 .switch(Ticket)
                 .join(Staff, JOIN.LEFT_OUTER, on=(Ticket.assignee == Staff.id))
                 .switch(Ticket))
    else:
        query = Ticket.select(Ticket, Contact)
    query = query.join(Contact, JOIN.LEFT_OUTER, on=(Ticket.contact == Contact.id)).switch(Ticket)
    terms = scope_terms(staff)
    return query.where(condition(terms[0])) if terms else query


UNASSIGNED = "none"
ME = "me"

# The active statuses written out as SQL text, not bound parameters: the inbox's partial
# indexes (core/migrations/0005_inbox_indexes.py) say ``WHERE status IN (...)`` with these
# very values, and SQLite uses a partial index only when the query says the same.
ACTIVE_SQL = "IN (" + ", ".join(f"'{status}'" for status in Status.ACTIVE) + ")"


def active(status: Any = Ticket.status) -> Expression:
    """Tickets not resolved or closed, in the form the inbox's indexes are built for
    (``status``: the column that says a ticket's, the ticket's own unless given)."""
    return NodeList((status, SQL(ACTIVE_SQL)))


# Resolved or closed, as text for the same reason: the done tickets' due-time index
# (core/migrations/0010_…) is partial on these very values.
DONE_SQL = "IN (" + ", ".join(f"'{status}'" for status in Status.DONE) + ")"


def done(status: Any = Ticket.status) -> Expression:
    """Tickets resolved or closed, in the form their due-time index is built for."""
    return NodeList((status, SQL(DONE_SQL)))


def waiting_on_us() -> Expression:
    """The customer wrote last and no agent has answered since (or ever)."""
    return Ticket.last_customer_message_at.is_null(False) & (
        Ticket.last_agent_message_at.is_null()
        | (Ticket.last_customer_message_at > Ticket.last_agent_message_at))


def overdue(now: Any) -> Expression:
    """Active tickets whose due time has passed."""
    return (Ticket.due_at < now) & active()


def marked_late(yes: bool) -> Expression:
    """Tickets the job marked late (``yes``) or not (migration 0027), said as the indexes
    of that migration are built for: ``late = FALSE`` as a keyword (SQLite uses a partial
    index only when the query says its term, and a bound value is not that term)."""
    return NodeList((Ticket.late, SQL("= TRUE" if yes else "= FALSE")))


def _tag_pattern(tag: str) -> str:
    needle = json.dumps(tag, ensure_ascii=False)
    escaped = needle.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%{escaped}%"


def _tag_like(pattern: Any) -> Expression:
    # The pattern is text, not a list: kept from the column's JSON conversion.
    return NodeList((Ticket.tags, SQL("LIKE"), _given(pattern), SQL("ESCAPE '!'")))


# The tags of every ticket, one row each, kept by triggers (core/migrations/0010_…); each row
# also holds what a page sorts and scopes its ticket by (0016 on SQLite, 0023 PostgreSQL).
_ticket_tag = Table("ticket_tag", ("tag", "ticket_id", "updated_at", "due_at", "status",
                                   "department_id", "assignee_id"))

# When a tag is common. A page that gathers a tag's tickets from ``ticket_tag`` pays for each
# of them (its index entry, the ticket, the sort: some microseconds); a page that walks the
# inbox's own index in its order pays less for each ticket it passes (on SQLite the tags are
# tested in the index) but passes 50 / (share of tickets tagged) of them, more for an agent,
# who sees only some. Reasoned from those costs (not timed at the crossover), the two cost
# about the same near sqrt(20 x tickets) tagged tickets: 450 at 10,000 tickets, 4,472 at a
# million. A tag below that is gathered, whatever the order or the scope; one above is
# walked. At a million a seeded tag (31,000 tickets) is walked in 1-7 ms of SQLite CPU a
# page, a 40-ticket tag gathered in under 1 ms.
TAG_WALK_FACTOR = 20
TAG_MIN_COMMON = 200


def tag_common_from(tickets: int) -> int:
    """From how many tickets a tag is walked rather than gathered, for a desk this size."""
    return max(TAG_MIN_COMMON, math.isqrt(TAG_WALK_FACTOR * max(tickets, 0)))


# How long a process keeps its answer to how common a tag is, per database, and for how many
# tags. The answer picks only how a page is found, never which tickets it lists, and a tag's
# share of the desk moves slowly; counting it cost two statements a page (at a million, up to
# 4,472 index entries: about 1 ms of PostgreSQL).
TAG_COMMON_SECONDS = 60.0
TAG_COMMON_KEPT = 1024
_tag_common: weakref.WeakKeyDictionary[Any, dict[tuple[str, int, int], tuple[float, bool]]] = (
    weakref.WeakKeyDictionary())


def tag_is_common(tag: str) -> bool:
    """Whether this many tickets carry the tag that walking finds a page sooner than
    gathering them: counted in ``ticket_tag``'s index up to there, no further; the answer is
    kept for ``TAG_COMMON_SECONDS``."""
    return _kept((tag, TAG_MIN_COMMON, TAG_WALK_FACTOR), lambda: _count_tag(tag))


def _kept(key: tuple[str, int, int], judge: Callable[[], bool]) -> bool:
    """``judge()``'s answer, kept per database for ``TAG_COMMON_SECONDS``."""
    kept = _tag_common.setdefault(db.database.obj, {})
    found = kept.get(key)
    now = time.monotonic()
    if found is not None and now - found[0] < TAG_COMMON_SECONDS:
        return found[1]
    answer = judge()
    if len(kept) >= TAG_COMMON_KEPT:
        kept.clear()
    kept[key] = (now, answer)
    return answer


def _count_up_to(sql: str, args: list[Any], times: int = 1) -> tuple[int, int]:
    """How many rows ``sql`` (a SELECT, ``?`` for its arguments) finds, counted up to
    ``times`` where a tag is common for a desk this size, and that limit."""
    database = Ticket._meta.database
    (tickets,) = database.execute_sql("SELECT MAX(id) FROM ticket").fetchone()
    enough = times * tag_common_from(int(tickets or 0))
    sql = f"SELECT COUNT(*) FROM ({sql} LIMIT {enough}) AS probe"
    if database.param != "?":
        sql = sql.replace("?", database.param)
    (count,) = database.execute_sql(sql, args).fetchone()
    return count, enough


def _count_tag(tag: str) -> bool:
    count, enough = _count_up_to("SELECT 1 FROM ticket_tag WHERE tag = ?", [tag])
    return count >= enough


# How far "on time" and overdue tickets are counted (``few_on_time``), in tags' limits: 44,720
# index entries at a million tickets, a few milliseconds once a minute.
ON_TIME_COUNTED = 10


def few_on_time(now: Any) -> bool:
    """Whether fewer active tickets are on time (not overdue at ``now``, the database's
    value) than overdue and not yet marked late (migration 0027), counted up to
    ``ON_TIME_COUNTED`` tags' limits in the due-time indexes; kept as long as a tag's answer
    (``tag_is_common``).

    A page of "not overdue" walks the unmarked tickets in its order past those overdue among
    them (oldest first, the overdue tickets are the old ones), while gathering the on-time
    tickets and sorting them costs each of those; an overdue page walks the marked ones in
    its order and gathers the unmarked overdue ones, or walks every active ticket past the
    on-time ones (``on_time_terms``). With the job running (``services.late``) hardly any
    overdue ticket is unmarked; on a desk whose job never ran, every one."""
    def judge() -> bool:
        active = f"SELECT 1 FROM ticket WHERE status {ACTIVE_SQL} AND "
        later, _ = _count_up_to(active + "due_at >= ?", [now], ON_TIME_COUNTED)
        never, _ = _count_up_to(active + "due_at IS NULL", [], ON_TIME_COUNTED)
        # SQLite is held to the unmarked tickets' due-time index: it otherwise took the
        # (status, due time) index (0028) and read the row of every overdue ticket for its
        # mark (at a million 392,000, a second, once a minute in each worker).
        fresh_from = f"ticket INDEXED BY {FRESH_DUE}" if db.is_sqlite() else "ticket"
        fresh, _ = _count_up_to(
            f"SELECT 1 FROM {fresh_from} WHERE status {ACTIVE_SQL} AND late = FALSE "
            "AND due_at < ?", [now], ON_TIME_COUNTED)
        return later + never < fresh

    # Not a tag's key: a tag is text someone typed, never with a NUL in it.
    return _kept(("\0on time", TAG_MIN_COMMON, TAG_WALK_FACTOR), judge)


def _tag_exactly(sqlite: bool, pattern: Any, exact: Any) -> Expression:
    """The text match the walk's index can answer (``pattern``: ``_tag_pattern``), then an
    exact test of the tags that pass it: the text match alone also finds a tag inside
    another that holds a quote (``"b"`` in ``["a\\"b"]``). Exact as the triggers that fill
    ``ticket_tag`` read the JSON (core/migrations/0010_…). ``exact``: on SQLite the tag, on
    PostgreSQL ``_tag_element``."""
    like = _tag_like(pattern)
    if sqlite:
        return like & NodeList((
            SQL("EXISTS (SELECT 1 FROM json_each(CASE WHEN json_valid("), Ticket.tags,
            SQL(") AND json_type("), Ticket.tags, SQL(") = 'array' THEN"), Ticket.tags,
            SQL("ELSE '[]' END) AS tag WHERE tag.type = 'text' AND tag.value ="),
            NodeList((_given(exact), SQL(")")), glue="")))
    # PostgreSQL: the JSON string after "[" or "," (a quote inside a string is escaped, so
    # only a whole element follows either), by a regular expression: no JSON is parsed, so
    # no value can make the query fail. One CASE, so the planner weighs the whole as one
    # opaque test (a regular expression beside the LIKE, it took for one that matches
    # almost nothing, and sorted every active ticket rather than walk them).
    return NodeList((SQL("CASE WHEN"), like, SQL("THEN"), Ticket.tags, SQL("~"),
                     _given(exact), SQL("ELSE false END")))


def _tag_element(tag: str) -> str:
    """The regular expression of a tag as an element of the JSON list (PostgreSQL)."""
    return r"[\[,]\s*" + re.escape(json.dumps(tag, ensure_ascii=False))


def _tag_rare(tag: Any) -> Expression:
    carrying = _ticket_tag.select(_ticket_tag.ticket_id).where(_ticket_tag.tag == tag)
    return in_subquery(Ticket.id, carrying)


def tag_term(tag: str) -> Term:
    """Tickets carrying this tag (stored lower-cased, as a JSON list in text), as a term.

    The page walks the tag's own rows of ``ticket_tag`` in its order (``tag_walk``,
    migrations 0016 and 0023: each row holds the ticket's sort values, status and scope),
    however common the tag. A page that cannot walk them (a search's, a second tag's) has
    the tag gathered or tested instead (``_tag_not_walked``). Every way the same tickets are
    found.
    """
    return ("tag_walk", (), (tag.strip().lower(),))


def _tag_gathered_or_tested(clean: str) -> Term:
    """A tag's term for a page that does not walk ``ticket_tag`` (``tag_term``): gathered
    from it when rare, tested on each ticket walked past when common."""
    if not tag_is_common(clean):
        return ("tag_rare", (), (clean,))
    sqlite = db.is_sqlite()
    return ("tag_common", (sqlite,),
            (_tag_pattern(clean), clean if sqlite else _tag_element(clean)))


def _tag_not_walked(tag: Any) -> Expression:
    """``tag_walk``'s condition where the page does not walk ``ticket_tag`` (a search's, or a
    second tag's): a tag given as a value is gathered or tested as ``tag_term`` would on
    PostgreSQL (a search's page walked from ``ticket_tag`` and sorted took 140 ms at a
    million), one in a slot is gathered."""
    if isinstance(tag, Value) and isinstance(tag.value, str):
        return condition(_tag_gathered_or_tested(tag.value))
    return _tag_rare(tag)


def tagged(tag: str) -> Expression:
    """``tag_term``'s condition."""
    return condition(tag_term(tag))


@dataclass
class InboxFilter:
    """What an agent narrows the inbox by; None leaves a filter off."""

    status: str | None = None
    priority: str | None = None
    channel: str | None = None
    department_id: int | None = None
    category_slug: str | None = None
    # "me", "none" or a staff id.
    assignee: str | int | None = None
    text: str | None = None
    updated_since: dt.datetime | None = None
    tag: str | None = None
    waiting: bool | None = None
    overdue: bool | None = None
    # True: new, open, pending or on hold (the console's default); False: resolved or closed.
    active: bool | None = None


def filter_terms(staff: Staff, wanted: InboxFilter) -> list[Term]:
    """The filters as terms (``condition``), all but the search words (``_searched``)."""
    terms: list[Term] = []
    if wanted.status is not None:
        terms.append(choice_term("status", wanted.status))
    if wanted.active is not None:
        terms.append(("active" if wanted.active else "done", (), ()))
    if wanted.priority is not None:
        terms.append(choice_term("priority", wanted.priority))
    if wanted.channel is not None:
        terms.append(choice_term("channel", wanted.channel))
    if wanted.department_id is not None:
        terms.append(department_term(staff, wanted.department_id))
    if wanted.category_slug is not None:
        terms.append(("category_slug", (), (wanted.category_slug,)))
    if wanted.assignee is not None:
        terms.append(assignee_term(staff, wanted.assignee))
    if wanted.tag is not None:
        terms.append(tag_term(wanted.tag))
    if wanted.waiting is not None:
        terms.append(("waiting", (bool(wanted.waiting),), ()))
    if wanted.overdue is not None:
        terms.append(overdue_term(bool(wanted.overdue), dt.datetime.now(dt.UTC)))
    if wanted.updated_since is not None:
        terms.append(("updated_since", (), (Ticket.updated_at.db_value(wanted.updated_since),)))
    return terms


def filter_inbox(query: ModelSelect, staff: Staff, wanted: InboxFilter) -> ModelSelect:
    """Narrow an inbox query; search words must each match (number, subject, text, contact)."""
    for term in filter_terms(staff, wanted):
        query = query.where(condition(term))
    text = _searched(wanted)
    if text:
        query = query.where(search_clause(text))
    return query


# The values of a column that a page's SQL says as constants (``choice_term``).
_KNOWN = {"status": Status.ALL, "priority": Priority.ALL}


def choice_term(kind: str, value: Any) -> Term:
    """A column (status, priority, channel, category) equal to a value: a known status or
    priority is written into the SQL (a generic plan then knows it: a partial index over
    the active statuses serves ``status = 'pending'``, not ``status = $1``), anything else
    is bound."""
    return (kind, (value,), ()) if value in _KNOWN.get(kind, ()) else (kind, (), (value,))


def _status(status: Any, by_due: bool = False) -> Expression:
    clause = Ticket.status == status
    # A known resolved or closed status also says ``done()``: SQLite uses the done tickets'
    # partial due-time index only when the query names its statuses as the index does, and a
    # page of resolved tickets by due time otherwise walked every active ticket's due time
    # to find the few resolved ones that have one (1.3-1.8 s at a million).
    if isinstance(status, str) and status in Status.DONE:
        return clause & done()
    # On SQLite an active status by due time (``on_time_terms``) says ``active()`` for the
    # same reason: the page is then a range of the active tickets' (status, due time) index
    # (0028). Not in the other orders: by number, SQLite then walked the active tickets'
    # number index, not the table's, and touched twice the pages. PostgreSQL finds that
    # index from the status alone, written into the SQL (``choice_term``), and reckoned
    # the status said twice at 40% of its tickets (it then sorted the test desk's pages).
    return clause & active() if by_due else clause


def department_term(staff: Staff, department_id: int) -> Term:
    """Tickets of this department, as ``staff`` may filter by it (``_department``)."""
    if staff.is_admin or department_id in staff.department_ids():
        return ("department", (True,), (department_id,))
    return ("department", (False, db.is_sqlite()), (department_id, staff.id))


def _department(theirs: bool, *args: Any) -> Expression:
    if theirs:
        (department_id,) = args
        return Ticket.department == department_id
    sqlite, department_id, staff_id = args
    # Outside their departments an agent sees only what is assigned to them. Said with the
    # expressions of the (assignee, department) index of migration 0007 as well, the agent's
    # few tickets there are read from it and sorted, whatever the page's order: walking the
    # department's tickets, or the agent's, in the page's order and ending empty took
    # 0.2-2 s at a million on PostgreSQL (0.1 ms this way), 40-66 ms on SQLite (the agent's
    # 9,000 active tickets). The index's 0 is written as it is (SQLite matches an expression
    # index only to the same expression, a bound 0 is not), and on SQLite the plain columns
    # with a unary plus, which no index serves: it took the agent's own index otherwise.
    plain = (lambda column: NodeList((SQL("+"), column), glue="")) if sqlite else (
        lambda column: column)
    return ((plain(Ticket.department) == department_id) & (plain(Ticket.assignee) == staff_id)
            & (fn.COALESCE(Ticket.assignee, SQL("0")) == staff_id)
            & (fn.COALESCE(Ticket.department, SQL("0")) == department_id))


def department_clause(staff: Staff, department_id: int) -> Expression:
    """Tickets of this department, as ``staff`` may filter by it."""
    return condition(department_term(staff, department_id))


def assignee_term(staff: Staff, assignee: str | int) -> Term:
    """"me", "none" (no assignee) or a staff id."""
    if assignee == ME:
        return ("assignee", (), (staff.id,))
    if assignee == UNASSIGNED:
        return ("unassigned", (), ())
    return ("assignee", (), (int(assignee),))


def assignee_clause(staff: Staff, assignee: str | int) -> Expression:
    """"me", "none" (no assignee) or a staff id."""
    return condition(assignee_term(staff, assignee))


def overdue_term(late: bool, now: dt.datetime) -> Term:
    """Overdue (``late``) or not: past due at ``now`` (UTC)."""
    return ("overdue", (late,), (Ticket.due_at.db_value(now.replace(tzinfo=None)),))


def _overdue(late: bool, now: Any) -> Expression:
    found = overdue(now)
    return found if late else ~found | Ticket.due_at.is_null()


def _on_time_few(now: Any) -> Expression:
    """Active tickets not overdue at ``now``, gathered from the active tickets' due-time
    index (``few_on_time``)."""
    active_ids = Ticket.select(Ticket.id).where(active())
    return in_subquery(Ticket.id, active_ids.where(Ticket.due_at >= now)
                       + active_ids.where(Ticket.due_at.is_null()))


def _on_time_unmarked(now: Any) -> Expression:
    """Not overdue at ``now``, said with "not marked late" (which it implies: migration 0027),
    so that a page of active tickets walks the unmarked ones in its order."""
    return marked_late(False) & ((Ticket.due_at >= now) | Ticket.due_at.is_null())


def on_time_terms(terms: list[Term], sort: str, descending: bool) -> list[Term]:
    """``terms`` with overdue or "not overdue" said so that a page of active tickets reads
    them from an index range in its order, however many are on time or overdue.

    Walking the page's order past the overdue tickets to find the others read every overdue
    ticket first: at a million (most active tickets overdue) 0.4-2.4 s on SQLite, 0.7-0.9 s
    on PostgreSQL for the oldest first or the soonest due first. By due time "not overdue" is
    a range of the due-time index (``due_at >= now``). In the other orders it walks the
    active tickets not marked late (``on_time_unmarked``, migration 0027), passing only those
    fallen due since the job last marked them; when those are more than the tickets on time
    (``few_on_time``: a desk whose job never ran), the on-time ones are gathered and sorted
    instead, oldest first (newest first the walk finds them at once).

    Overdue, newest first or by number, walked the active tickets past every on-time one
    updated (or opened) since: when the unmarked overdue tickets are fewer than those on
    time, the page is the marked ones read in its order and the unmarked overdue ones
    gathered, merged (``overdue_split``, ``_overdue_numbers``). By due time it is a range.

    Resolved or closed, oldest first, walked every status's newest-first index past the
    active tickets not updated for longest (at a million 3x the work of 100,000 on SQLite,
    1,029 stale active tickets' rows read on PostgreSQL): each of the two statuses' pages is
    read in its own range of the (status, updated_at) index, then merged (``done_split``,
    ``_done_numbers``). Newest first the walk finds them at once.

    One active status (pending) by due time walked the due-time index past the tickets of
    the other statuses (at a million twice those of 100,000): it names the active statuses
    too on SQLite (``_status``), and is a range of their (status, due time) index (0028)."""
    active_page = ("active", (), ()) in terms
    by_due = SORTS[sort] is Ticket.due_at
    said = []
    for kind, constants, args in terms:
        if kind == "overdue" and constants == (True,):
            if not by_due and not few_on_time(args[0]):
                kind, constants = "overdue_split", _marked_index(terms, sort)
        elif kind == "overdue" and active_page:
            if by_due:
                kind, constants = "due_from", ()
            elif not descending and few_on_time(args[0]):
                kind, constants = "on_time_few", ()
            else:
                kind, constants = "on_time_unmarked", ()
        elif kind == "done" and sort == "updated_at" and not descending:
            kind = "done_split"
        elif (kind == "status" and by_due and constants and constants[0] in Status.ACTIVE
              and db.is_sqlite()):
            constants = (*constants, True)
        said.append((kind, constants, args))
    return said


# -- Conditions as terms ---------------------------------------------------------------------
#
# Each condition of an inbox page is a term: (kind, constants, arguments). The kind and its
# constants decide the condition's SQL; the arguments are values bound into it, already as
# the database takes them (a field's ``db_value``). ``condition`` writes a term with its
# arguments; ``inbox_rows`` writes a page's terms with slots in place of the arguments, once
# per shape of the page, and later pages of that shape only bind their own.

Term = tuple[str, tuple[Any, ...], tuple[Any, ...]]

_CONDITIONS: dict[str, Callable[..., Expression]] = {
    "nobody": lambda: Ticket.id < 0,
    "scope": _agent_scope,
    "status": _status,
    "active": active,
    "done": done,
    "priority": lambda priority: Ticket.priority == priority,
    "channel": lambda channel: Ticket.channel == channel,
    "department": _department,
    "category": lambda category_id: Ticket.category == category_id,
    "category_slug": lambda slug: in_subquery(
        Ticket.category, Category.select(Category.id).where(Category.slug == slug)),
    "assignee": lambda staff_id: Ticket.assignee == staff_id,
    "unassigned": lambda: Ticket.assignee.is_null(),
    "tag_rare": _tag_rare,
    "tag_walk": _tag_not_walked,
    "tag_common": _tag_exactly,
    "waiting": lambda yes: waiting_on_us() if yes else ~waiting_on_us(),
    "overdue": _overdue,
    "due_from": lambda now: Ticket.due_at >= now,
    "on_time_few": _on_time_few,
    "on_time_unmarked": _on_time_unmarked,
    "overdue_split": lambda *index_and_now: overdue(index_and_now[-1]),
    "done_split": done,
    "updated_since": lambda since: Ticket.updated_at >= since,
}


# A page that walks a tag's rows of ``ticket_tag`` (0016, 0023) tests these terms on the
# row's own copies of the ticket's columns, in the index it walks, not on the ticket's row.
# Not overdue: tested there, SQLite took the due-time index's range and sorted (5x slower).
_ON_TAG_ROW: dict[str, Callable[..., Expression]] = {
    "tag_walk": lambda tag: _ticket_tag.tag == tag,
    "scope": lambda staff_id: _agent_scope(staff_id, _ticket_tag.department_id,
                                           _ticket_tag.assignee_id),
    "status": lambda status, by_due=False: _ticket_tag.status == status,
    "active": lambda: active(_ticket_tag.status),
    "done": lambda: done(_ticket_tag.status),
    "done_split": lambda: done(_ticket_tag.status),
    "assignee": lambda staff_id: _ticket_tag.assignee_id == staff_id,
    "department": lambda theirs, *args: (
        (_ticket_tag.department_id == args[0]) if theirs
        else (_ticket_tag.department_id == args[1]) & (_ticket_tag.assignee_id == args[2])),
    "unassigned": lambda: _ticket_tag.assignee_id.is_null(),
    "updated_since": lambda since: _ticket_tag.updated_at >= since,
}
# That page's order: the row's copies of the sort columns.
_TAG_ROW_SORTS: dict[str, Any] = {"updated_at": _ticket_tag.updated_at,
                                  "id": _ticket_tag.ticket_id, "due_at": _ticket_tag.due_at}


def _one_tag_walked(terms: list[Term]) -> list[Term]:
    """``terms`` with at most one ``tag_walk``: of two tags or more each is gathered or
    tested on the tickets (``_tag_gathered_or_tested``; SQLite walking one tag's rows and
    gathering the other's sorted what it found)."""
    if sum(kind == "tag_walk" for kind, _c, _a in terms) < 2:
        return terms
    return [_tag_gathered_or_tested(args[0]) if kind == "tag_walk" else (kind, constants, args)
            for kind, constants, args in terms]


def _given(value: Any) -> Any:
    """An argument as the SQL takes it: a slot (a node) as it is, a value unconverted."""
    return value if isinstance(value, SqlNode) else Value(value, converter=False)


def condition(term: Term, slots: Any = None) -> Expression:
    """A term's condition, with its arguments (or ``slots`` in their places)."""
    kind, constants, args = term
    given = [_given(arg) for arg in args] if slots is None else slots
    return _CONDITIONS[kind](*constants, *given)


# -- Pages of the inbox, by keyset ----------------------------------------------------------

# The orders an inbox can be read in; each has an index over active tickets ending in the
# ticket id, so a page is one index range whatever the depth (no OFFSET, no sort).
SORTS: dict[str, Any] = {"updated_at": Ticket.updated_at, "id": Ticket.id,
                         "due_at": Ticket.due_at}


@dataclass
class InboxPage:
    tickets: list[Ticket]
    next_cursor: str | None


def encode_cursor(sort: str, ticket: Ticket) -> str:
    """Where the next page starts: the last ticket's sort value and number, opaque to callers.

    The newest-first default keeps the API's first cursor format (``<updated_at>|<id>``),
    so cursors handed out before keep working.
    """
    if sort == "id":
        raw = f"id|{ticket.id}"
    else:
        value: dt.datetime = getattr(ticket, sort)
        raw = f"{value.isoformat()}|{ticket.id}"
        if sort != "updated_at":
            raw = f"{sort}|{raw}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(value: str, sort: str = "updated_at") -> tuple[Any, int] | None:
    """(sort value, ticket id) from ``encode_cursor``; None for anything else."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    parts = raw.split("|")
    if sort != "updated_at":
        if not parts or parts[0] != sort:
            return None
        parts = parts[1:]
    ident = parts[-1] if parts else ""
    ticket_id = int(ident) if ident.isascii() and ident.isdigit() and len(ident) < 11 else 0
    if not 1 <= ticket_id <= MAX_ID:
        return None
    if sort == "id":
        return (ticket_id, ticket_id) if len(parts) == 1 else None
    if len(parts) != 2:
        return None
    try:
        return dt.datetime.fromisoformat(parts[0]), ticket_id
    except ValueError:
        return None


def searched(wanted: InboxFilter) -> bool:
    """Whether the filters search words (a page that ``filter_inbox`` must build)."""
    return bool(_searched(wanted))


def _searched(wanted: InboxFilter) -> str:
    # Each word is one more full-text look-up: a few are a search, many are a load.
    return " ".join((wanted.text or "")[:200].split()[:10])


def walks_far(wanted: InboxFilter, sort: str = "updated_at") -> bool:
    """Whether a page of active tickets with these filters passes over so many tickets that
    finding its numbers in the index alone first (``inbox_page``'s ``ids_first``) pays for
    planning and running the second look-up: a tag (an agent's page of ``kyc`` at a million:
    7,300 tickets passed over, 13 -> 3 ms) or overdue (3,000, 2.8 -> 0.9 ms). Not an agent's
    scope alone or "waiting on us" (a few hundred: the second look-up's planning, some
    0.7 ms, costs more than it saves).

    On PostgreSQL also a common search, which the page walks testing each ticket's document
    (``search.walked``: as ``filter_inbox`` just judged it): the index alone tells which
    tickets are in an agent's scope, so only theirs are read and tested (an agent's
    ``inv-12`` page at a million, 20,449 tickets passed over: 98 -> 29 ms of the server's
    CPU). A search that gathers its tickets is not (about 1 ms more). A walked search of every
    status too (the API's default), newest first, and filtered by nothing but what
    ``ticket_updated_scope`` holds (migration 0026: the scope, department, assignee and
    ``updated_since``), when it is rare enough that its walk passes over many tickets
    (``search.walked_far``)."""
    if wanted.text and (db.is_sqlite() or not search.walked(_searched(wanted))):
        return False
    if wanted.text and wanted.active is None:
        return sort == "updated_at" and search.walked_far(_searched(wanted)) and not any(
            getattr(wanted, name) is not None for name in _NOT_IN_UPDATED_SCOPE)
    if not (wanted.active or wanted.status in Status.ACTIVE):
        # (An active status, say pending, lists active tickets too: a tag's page of pending
        # tickets by due time read 32,000 rows at a million, 0.4 s, to test their status.)
        return False
    return bool(wanted.text) or wanted.tag is not None or bool(wanted.overdue)


# The filters the newest-first index of every status (``ticket_updated_scope``, 0026) cannot
# test: a page filtered by one reads the table's rows as it walks all the same.
_NOT_IN_UPDATED_SCOPE = ("status", "priority", "channel", "category_slug", "tag", "waiting",
                         "overdue")


# Columns whose values both databases' drivers already give as peewee would read them (text,
# whole numbers, ids, NULL): a plain row skips their conversion. Exactly these types, not
# their subclasses (a JSON field is a TextField that converts).
_AS_GIVEN = (CharField, TextField, IntegerField, BigIntegerField, AutoField, ForeignKeyField)


def _row_reader(columns: Any) -> list[tuple[str, Any]]:
    """Each selected column's name and its conversion (None: as the driver gives it), as
    peewee's ``objects()`` would name and convert it."""
    reader = []
    for column in columns:
        node = column.unalias() if isinstance(column, Alias) else column
        convert = (getattr(node, "python_value", None)
                   if isinstance(node, Field) and type(node) not in _AS_GIVEN else None)
        reader.append((column.name, convert))
    return reader


def plain_rows(query: ModelSelect, make: Any) -> list[Any]:
    """The query's rows, each ``make(**{column: value})``, read straight from the cursor:
    what ``query.objects(make)`` gives, without peewee's conversion of every value (a page's
    50 rows of 15 columns cost about a thousand calls that way)."""
    return _made(_row_reader(query.selected_columns),
                 db.database.execute(query).fetchall(), make)


def _made(reader: list[tuple[str, Any]], found: list[tuple[Any, ...]], make: Any) -> list[Any]:
    names = [name for name, _convert in reader]
    converted = [(i, convert) for i, (_name, convert) in enumerate(reader) if convert]
    rows = []
    for values in found:
        if converted:
            values = list(values)
            for i, convert in converted:
                if values[i] is not None:
                    values[i] = convert(values[i])
        rows.append(make(**dict(zip(names, values, strict=True))))
    return rows


def _paged(query: ModelSelect, sort: str, descending: bool, after: tuple[Any, ...] | None,
           size: int, ids_first: bool, sorts: dict[str, Any] = SORTS,
           on_time: tuple[str, tuple[Any, ...], Any, list[Expression]] | None = None,
           lead: Any = None) -> ModelSelect:
    """``inbox_page``'s query: ``after`` is the cursor's (sort value, ticket id) as the
    database takes them, or (ticket id,) sorted by number. ``sorts``: the columns the page
    is ordered by (``SORTS``, or their copies in the rows a page walks). ``on_time``: (kind,
    its constants, time, conditions) of a page whose numbers are found first (``_NUMBERS_FIRST``): the active
    tickets not overdue at this time, few (``on_time_few``), the overdue ones
    (``overdue_split``) or the resolved and closed ones (``done_split``); ``query`` has none
    but its joins: they and the cursor are the numbers'.

    ``lead``: a column the page's conditions hold to one value, ordered by first (which
    changes no page: see ``_unassigned_lead``), not part of the cursor."""
    column, ident = sorts[sort], sorts["id"]
    if sort == "due_at":
        query = query.where(column.is_null(False))
    order = [column] if sort == "id" else [column, ident]
    ordered = [c.desc() if descending else c.asc() for c in
               ([lead] if lead is not None else []) + order]
    if on_time is not None:
        how, constants, now, conditions = on_time
        numbers = _NUMBERS_FIRST[how](now, conditions, order, descending, after, size + 1,
                                      *constants)
        # PostgreSQL: the numbers as an array, which the ticket table's key is searched for.
        # As ``IN``, a page by number merged them with that key walked from the newest ticket
        # (overdue: past every ticket opened since the page's first, 20,000 at 20,000).
        query = query.where(in_subquery(Ticket.id, numbers) if db.is_sqlite()
                            else Ticket.id == fn.ANY(fn.ARRAY(numbers)))
    elif after is not None:
        query = query.where(_after(order, descending, after))
    if ids_first and on_time is None and not db.is_sqlite():
        # The same conditions again outside, on the page's few rows: the planner then
        # reads those rows by number rather than walking the order a second time.
        numbers = query.select(Ticket.id).order_by(*ordered).limit(size + 1)
        query = query.where(in_subquery(Ticket.id, numbers))
    return query.order_by(*ordered).limit(size + 1)


def _after(order: list[Any], descending: bool, after: tuple[Any, ...]) -> Expression:
    """The rows after the cursor ``after`` in this order (``_paged``)."""
    here, there = (order[0], after[0]) if len(order) == 1 else (Tuple(*order), Tuple(*after))
    return here < there if descending else here > there


def _on_time_numbers(now: Any, conditions: list[Expression], order: list[Any],
                     descending: bool, after: tuple[Any, ...] | None, size: int) -> Any:
    """The numbers of a page of active tickets not overdue at ``now``, when they are few
    (``few_on_time``; ``conditions``: the page's others): the page of each of the two ranges
    of the due-time index that hold them (due at ``now`` or later, no due time), gathered
    and sorted (``_gathered_page``), then both together.

    Gathering the tickets on time and sorting them read every one's row from the table (at
    a million some 6,000 of them: 19-25 ms of SQLite, 27-29 ms of PostgreSQL); the index
    holds what the page tests and sorts (0025), so only the page's rows are read.

    SQLite is held to those indexes: it otherwise took the (status, due time) index (0028),
    one range for each status (by number at a million 8% more VM steps)."""
    first, second = (_gathered_page([*conditions, found], order, descending, after, size, index)
                     for found, index in ((Ticket.due_at >= now, ACTIVE_DUE),
                                          (Ticket.due_at.is_null(), ACTIVE_NO_DUE)))
    return first + second


# The active tickets' due-time indexes: those with a due time (0010, 0025), those without.
ACTIVE_DUE = "ticket_active_due_scope"
ACTIVE_NO_DUE = "ticket_active_no_due"


# The due-time index of the active tickets not marked late (migration 0027).
FRESH_DUE = "ticket_active_fresh_due"


# The index of an agent's (or any assignee's) active tickets marked late, newest first
# (migration 0029).
LATE_ASSIGNEE = "ticket_active_late_assignee"


def _marked_index(terms: list[Term], sort: str) -> tuple[str, ...]:
    """``overdue_split``'s constants: on SQLite the index its marked tickets are walked in
    when the page is one assignee's newest or oldest first (``_overdue_numbers``), else none.

    Those were read by walking the assignee's active tickets by (assignee, updated_at),
    each row read for its mark, past the ones on time updated since the page's first overdue
    one: the more tickets a desk opens an hour, the more of them (an agent's page at 100,000
    passed 71 rows, at a million 273: 7,136 VM steps and 791 pages against 4,505 and 384).
    0029's index holds only the assignee's marked tickets; PostgreSQL takes it by itself,
    SQLite at a million did not (its statistics weigh it about as the active one), so it is
    named."""
    if sort == "updated_at" and db.is_sqlite() and any(
            kind == "assignee" for kind, _constants, _args in terms):
        return (LATE_ASSIGNEE,)
    return ()


def _overdue_numbers(now: Any, conditions: list[Expression], order: list[Any],
                     descending: bool, after: tuple[Any, ...] | None, size: int,
                     index: str | None = None) -> Any:
    """The numbers of a page of overdue tickets (``overdue_split``; ``conditions``: the
    page's others): the page of those marked late, walked in the page's order (migration
    0027's ``ticket_active_late_*``: no on-time ticket among them), and the page of the
    overdue ones not marked yet, gathered from their due-time index (``ticket_active_fresh_due``)
    and sorted: those fallen due since the job last ran (``services.late``), few
    (``few_on_time``). Both together, the outer query sorts their two pages' numbers.
    ``index``: on SQLite, the one index the marked ones are walked in (``_marked_index``)."""
    marked = _ordered_page([*conditions, active(), Ticket.due_at < now, marked_late(True)],
                           order, descending, after, size, index)
    # Found by their due-time index alone. Weighed against the page's other conditions, an
    # agent's own overdue tickets were read by the index by assignee and due time, each row
    # for its mark (9,000 at a million: SQLite 121,000 VM steps, PostgreSQL 20,000 rows).
    # SQLite names the index; PostgreSQL finds their numbers first, as an array (its only
    # way there: the unmarked tickets past due are the index's own conditions).
    unmarked_now = [active(), marked_late(False), Ticket.due_at < now]
    if db.is_sqlite():
        unmarked = _gathered_page([*conditions, *unmarked_now], order, descending, after, size,
                                  FRESH_DUE)
    else:
        among = fn.ARRAY(Ticket.select(Ticket.id).where(*unmarked_now))
        unmarked = _gathered_page([*conditions, Ticket.id == fn.ANY(among)], order, descending,
                                  after, size)
    return marked + unmarked


def _done_numbers(_now: Any, conditions: list[Expression], order: list[Any],
                  descending: bool, after: tuple[Any, ...] | None, size: int) -> Any:
    """The numbers of a page of resolved or closed tickets (``done_split``; ``conditions``:
    the page's others): each status's page walked in the page's order, in its own range of
    the (status, updated_at) index, then both together."""
    first, second = (_ordered_page([*conditions, NodeList((Ticket.status, SQL(f"= '{status}'")))],
                                   order, descending, after, size)
                     for status in Status.DONE)
    return first + second


def _ordered_page(conditions: list[Expression], order: list[Any], descending: bool,
                  after: tuple[Any, ...] | None, size: int, index: str | None = None) -> Any:
    """The numbers of the first ``size`` tickets that meet ``conditions`` and follow the
    cursor ``after`` in this order, walked in it (a subquery of its own, limited). ``index``:
    on SQLite, the one index they are walked in."""
    page = Ticket.select(Ticket.id).where(*conditions)
    if index is not None and db.is_sqlite():
        page = page.from_(_IndexedBy(index))
    if after is not None:
        page = page.where(_after(order, descending, after))
    page = page.order_by(*[c.desc() if descending else c.asc() for c in order]).limit(
        size).alias("ordered_page")
    return page.select_from(page.c.id)


class _IndexedBy(SqlNode):
    """SQLite: the ticket table read through this index only (``INDEXED BY``)."""

    def __init__(self, index: str):
        super().__init__()
        self.index = index

    def __sql__(self, ctx: Any) -> Any:
        ctx.sql(Ticket)
        return ctx.literal(f' INDEXED BY "{self.index}"')


def _gathered_page(conditions: list[Expression], order: list[Any], descending: bool,
                   after: tuple[Any, ...] | None, size: int, index: str | None = None) -> Any:
    """The numbers of the tickets that meet ``conditions`` and follow the cursor ``after``,
    the first ``size`` in this order, sorted from what the index that finds them holds (no
    join: it covers them). The tickets are gathered in a subquery the planner may not merge
    with the order (``OFFSET 0``): in the page's order it would walk the order's index past
    every ticket the conditions leave out instead. ``index``: on SQLite, the one index they
    are gathered from."""
    ranged = Ticket.select(Ticket.id, *order[:-1]).where(*conditions)
    if index is not None and db.is_sqlite():
        ranged = ranged.from_(_IndexedBy(index))
    ranged = ranged.offset(0).alias("ranged")
    keys = [ranged.c.id if c is Ticket.id else getattr(ranged.c, c.column_name) for c in order]
    page = ranged.select_from(ranged.c.id)
    if after is not None:
        # Outside the range's subquery too: neither planner moves it in there (an OFFSET),
        # where the cursor was a range of the order's index to walk (from the second page).
        page = page.where(_after(keys, descending, after))
    page = page.order_by(*[k.desc() if descending else k.asc() for k in keys]).limit(
        size).alias("ranged_page")
    return page.select_from(page.c.id)


# The kinds of term whose page is its numbers, found first (``_paged``), and how.
_NUMBERS_FIRST: dict[str, Callable[..., Any]] = {"on_time_few": _on_time_numbers,
                                                 "overdue_split": _overdue_numbers,
                                                 "done_split": _done_numbers}


def _slotted(terms: list[Term], slots: tuple[SqlNode, ...]
             ) -> tuple[list[tuple[Term, tuple[SqlNode, ...]]], int]:
    """Each of a page's terms with its own slots (``inbox_rows``: a term's arguments bound in
    order), and where the slots after the terms' (the cursor's) begin."""
    bound, at = [], 0
    for term in terms:
        bound.append((term, slots[at:at + len(term[2])]))
        at += len(term[2])
    return bound, at


def _numbers_from_tag_rows(query: ModelSelect, terms: list[Term], slots: tuple[SqlNode, ...],
                           descending: bool, continued: bool, size: int) -> ModelSelect:
    """``inbox_rows``' page of a tag by number on PostgreSQL, every term tested on the tag's
    rows (``_ON_TAG_ROW``): its numbers are a page of ``ticket_tag``'s key alone, then only
    those tickets are read, by number, and their few rows sorted.

    Joined as a tag's other orders are, both sides ordered by the number, the planner took a
    merge join that walked the ticket table's key from the first ticket to the page's (at a
    million an admin's ``kyc`` page passed 3,856 tickets, 2.4 ms; the numbers first read 133
    of the tag's rows, 1.0 ms), and the further the tag's first active tickets are from the
    first ticket, the longer that walk."""
    bound, at = _slotted(terms, slots)
    said = [_ON_TAG_ROW[kind](*constants, *given) for (kind, constants, _args), given in bound]
    numbers = _ticket_tag.select(_ticket_tag.ticket_id).where(*said)
    numbers = _paged(numbers, "id", descending, slots[at:] if continued else None, size, False,
                     _TAG_ROW_SORTS)
    query = query.join(Contact, JOIN.LEFT_OUTER, on=(Ticket.contact == Contact.id)).switch(
        Ticket).where(in_subquery(Ticket.id, numbers))
    return _paged(query, "id", descending, None, size, False)


def _unassigned_lead(terms: list[Term]) -> Any:
    """PostgreSQL, a page of unassigned tickets: ordered by the assignee first (NULL on
    every row it lists, so the order is the page's own), which the active tickets' (assignee,
    order) indexes (0005, 0022) give; else None.

    PostgreSQL reads ``assignee_id IS NULL`` as an index condition there, the cursor too,
    but does not know the rows it finds are in the page's order (only an equality tells it
    that), so it walked the order's index of every active ticket instead, reading each one's
    row for its assignee: an agent's page newest first passed 935 rows at 100,000 and 1,337
    at a million, by latest due time 823 and 1,118 (most tickets in their departments are
    assigned, the more so among the newest at a million). Led by the assignee, the walk is
    of the unassigned tickets alone: 240 and 225. (SQLite reads ``IS NULL`` as an equality
    and took that index already.)"""
    if db.is_sqlite() or ("unassigned", (), ()) not in terms:
        return None
    return Ticket.assignee


def _scope_implied(terms: list[Term]) -> list[Term]:
    """``terms`` without an agent's scope when they also hold the tickets assigned to that
    agent: those are all in it (``_agent_scope``: their departments' or assigned to them),
    so the page's rows are the same.

    Tested all the same, the scope read each ticket's department, which the assignee's own
    indexes do not hold: on PostgreSQL an agent's "mine" and overdue page by due time walked
    every active ticket's due-time index testing the assignee and the scope (2,300-2,700
    index entries a page at 100,000 and at a million) where (assignee, due time) reads the
    page's own 51; SQLite's "mine" pages did 17-18% more VM steps."""
    mine = {args for kind, _constants, args in terms if kind == "assignee"}
    return [term for term in terms if not (term[0] == "scope" and term[2] in mine)]


def _cursor_args(sort: str, cursor: tuple[Any, int] | None) -> tuple[Any, ...] | None:
    """A decoded cursor as ``_paged``'s ``after``, in the database's values."""
    if cursor is None:
        return None
    value, last_id = cursor
    column = SORTS[sort]
    return (last_id,) if column is Ticket.id else (column.db_value(value), last_id)


def _page(rows: list[Any], sort: str, size: int) -> InboxPage:
    more = len(rows) > size
    return InboxPage(rows[:size], encode_cursor(sort, rows[size - 1]) if more else None)


def inbox_page(query: ModelSelect, *, sort: str = "updated_at", descending: bool = True,
               cursor: tuple[Any, int] | None = None, size: int = 50,
               ids_first: bool = False, make: Any = None) -> InboxPage:
    """One page of an inbox query in a keyset order, and the cursor of the page after it.

    Sorted by due time, only tickets that have one are listed: there is nothing to order
    the others by. The order always ends in the ticket number, so no two rows tie.

    ``ids_first`` (for active tickets whose filters test only what the active tickets'
    indexes hold: the scope, tags, due time, last messages; see ``walks_far``): on
    PostgreSQL the page's ticket numbers are found first, by a subquery that reads the
    index alone (migration 0012), and then only those rows are read. A plain index scan
    there reads the table's row of every ticket it passes over to test them.

    ``make``: the rows come as ``plain_rows(page, make)`` instead of the query's own.
    """
    after = _cursor_args(sort, cursor)
    page = _paged(query, sort, descending,
                  None if after is None else tuple(_given(a) for a in after), size, ids_first)
    return _page(list(page) if make is None else plain_rows(page, make), sort, size)


# The inbox pages' statements, one per shape (``inbox_rows``).
PAGES = db.Shapes("inbox.page")
# Each list's columns' readers, by the list's name.
_readers: dict[str, list[tuple[str, Any]]] = {}


def inbox_rows(name: str, columns: tuple[Any, ...], terms: list[Term], *,
               sort: str = "updated_at", descending: bool = True,
               cursor: tuple[Any, int] | None = None, size: int = 50,
               ids_first: bool = False, make: Any) -> InboxPage:
    """``inbox_page`` of the inbox narrowed by ``terms`` (``scope_terms``, ``filter_terms``:
    no search words) with only ``columns`` (the list called ``name``), its rows as
    ``plain_rows`` makes them.

    Its SQL is built once per shape (the terms' kinds and constants, the order, a cursor
    or not, the size) by ``core.db.Shapes``, and on PostgreSQL prepared once per connection:
    peewee building a page's SQL was a quarter of a console page's Python and over a third
    of an API list's, and PostgreSQL planning it among the partial indexes 0.4-1.3 ms.

    A tag (``tag_walk``): the page joins the tag's rows of ``ticket_tag``, is
    ordered and continued by their copies of the sort columns, and tests the scope, status,
    assignee, department and ``updated_since`` on them (``_ON_TAG_ROW``), so it walks one
    index of that table in its order and reads the tickets of its own rows only (0016 on
    SQLite, 0023 on PostgreSQL).
    """
    after = _cursor_args(sort, cursor)
    terms = _one_tag_walked(on_time_terms(_scope_implied(terms), sort, descending))
    # A walk of a tag's rows tests the scope in that index and reads only the page's tickets
    # already (0023): finding their numbers first would walk it twice.
    walked = any(kind == "tag_walk" for kind, _constants, _args in terms)
    ids_first = ids_first and not walked
    shape = (name, tuple((kind, constants, len(args)) for kind, constants, args in terms),
             sort, descending, after is not None, size, ids_first)
    args = [arg for _kind, _constants, term_args in terms for arg in term_args]
    if after is not None:
        args.extend(after)

    # PostgreSQL, a tag's page by number whose every term is tested on the tag's rows: the
    # numbers from those rows alone, then the tickets by number (``_numbers_from_tag_rows``).
    numbered = walked and sort == "id" and not db.is_sqlite() and all(
        kind in _ON_TAG_ROW for kind, _constants, _args in terms)

    def build(*slots: SqlNode) -> ModelSelect:
        query = Ticket.select(*columns)
        if numbered:
            return _numbers_from_tag_rows(query, terms, slots, descending, after is not None,
                                          size)
        if walked:
            query = query.join(_ticket_tag, on=(_ticket_tag.ticket_id == Ticket.id)).switch(
                Ticket)
        bound, at = _slotted(terms, slots)
        said, on_time = [], None
        for (kind, constants, term_args), given in bound:
            if kind in _NUMBERS_FIRST and not walked:
                on_time = (kind, constants, given[0] if given else None, said)
                continue
            on_row = _ON_TAG_ROW.get(kind) if walked else None
            said.append(on_row(*constants, *given) if on_row is not None
                        else condition((kind, constants, term_args), given))
        # A page of the few tickets on time, or of the overdue ones, is its numbers
        # (``_paged``), read by number: outside those, its conditions only tempted the
        # planner to walk an order.
        # The contact joined once the page is built: the numbers found first (``ids_first``)
        # read the ticket table alone. With the (unused, removable) join in there, PostgreSQL
        # did not see that an index led by a column the page holds to one value (an assignee,
        # a priority) gives the page's order: an agent's "mine" and overdue page by due time
        # walked every active ticket's due-time index testing the assignee (2,440 entries at
        # a million) rather than the first 51 of (assignee, due time).
        return _paged(query if on_time or not said else query.where(*said), sort, descending,
                      None if after is None else slots[at:], size, ids_first,
                      _TAG_ROW_SORTS if walked else SORTS, on_time,
                      None if walked else _unassigned_lead(terms)).join(
            Contact, JOIN.LEFT_OUTER, on=(Ticket.contact == Contact.id))

    statement = PAGES.statement(shape, len(args), build)
    reader = _readers.get(name)
    if reader is None:
        reader = _readers[name] = _row_reader(columns)
    rows = _made(reader, statement.run(tuple(args)).fetchall(), make)
    return _page(rows, sort, size)
