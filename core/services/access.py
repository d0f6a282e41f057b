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

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from peewee import JOIN, SQL, Expression, ModelSelect, NodeList, Value, fn

from .. import db
from ..i18n import _l
from ..models import (
    Category,
    Contact,
    Department,
    Message,
    Staff,
    StaffDepartment,
    Ticket,
    UserType,
)

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


def _department_ids(staff: Staff) -> Any:
    return StaffDepartment.select(StaffDepartment.department).where(
        StaffDepartment.staff == staff)


def ticket_scope(staff: Staff) -> Expression | None:
    """A WHERE clause limiting tickets to what ``staff`` may see; None means no limit."""
    if not staff.active:
        return Ticket.id < 0
    if staff.is_admin:
        return None
    return Ticket.department.in_(_department_ids(staff)) | (Ticket.assignee == staff)


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


def contains(column: Any, needle: str) -> Expression:
    """Case-insensitive substring match with LIKE wildcards escaped, on SQLite and PostgreSQL."""
    escaped = needle.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return NodeList((fn.LOWER(column), SQL("LIKE"), Value(f"%{escaped}%"),
                     SQL("ESCAPE '\\'")))


def search_clause(term: str) -> Expression:
    """One search word: the ticket number, subject, contact name or address, or message text."""
    number = term.lstrip("#")
    contacts = Contact.select(Contact.id).where(contains(Contact.name, term)
                                                | contains(Contact.email, term))
    messages = Message.select(Message.ticket).where(contains(Message.body_text, term))
    clause = (contains(Ticket.subject, term) | Ticket.contact.in_(contacts)
              | Ticket.id.in_(messages))
    if number.isdigit() and len(number) < 10:
        clause = clause | (Ticket.id == int(number))
    return clause


def inbox(staff: Staff | None) -> ModelSelect:
    """The tickets ``staff`` may see, with category, department, assignee and contact joined."""
    query = (Ticket.select(Ticket, Category, Department, Staff, Contact)
             .join(Category, JOIN.LEFT_OUTER, on=(Ticket.category == Category.id))
             .switch(Ticket)
             .join(Department, JOIN.LEFT_OUTER, on=(Ticket.department == Department.id))
             .switch(Ticket)
             .join(Staff, JOIN.LEFT_OUTER, on=(Ticket.assignee == Staff.id))
             .switch(Ticket)
             .join(Contact, on=(Ticket.contact == Contact.id))
             .switch(Ticket))
    scope = ticket_scope(staff) if staff is not None else Ticket.id < 0
    return query if scope is None else query.where(scope)


UNASSIGNED = "none"
ME = "me"


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


def filter_inbox(query: ModelSelect, staff: Staff, wanted: InboxFilter) -> ModelSelect:
    """Narrow an inbox query; search words must each match (number, subject, text, contact)."""
    if wanted.status is not None:
        query = query.where(Ticket.status == wanted.status)
    if wanted.priority is not None:
        query = query.where(Ticket.priority == wanted.priority)
    if wanted.channel is not None:
        query = query.where(Ticket.channel == wanted.channel)
    if wanted.department_id is not None:
        query = query.where(Ticket.department == wanted.department_id)
    if wanted.category_slug is not None:
        query = query.where(Ticket.category.in_(
            Category.select(Category.id).where(Category.slug == wanted.category_slug)))
    if wanted.assignee is not None:
        query = query.where(assignee_clause(staff, wanted.assignee))
    # Each word is one more clause of subqueries: a few are a search, many are a load.
    for term in (wanted.text or "")[:200].split()[:10]:
        query = query.where(search_clause(term))
    if wanted.updated_since is not None:
        query = query.where(Ticket.updated_at >= wanted.updated_since)
    return query


def assignee_clause(staff: Staff, assignee: str | int) -> Expression:
    """"me", "none" (no assignee) or a staff id."""
    if assignee == ME:
        return Ticket.assignee == staff.id
    if assignee == UNASSIGNED:
        return Ticket.assignee.is_null()
    return Ticket.assignee == int(assignee)
