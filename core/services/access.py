"""What a staff member may see: admins everything, agents their departments' tickets."""

from __future__ import annotations

from peewee import Expression

from ..models import Staff, StaffDepartment, Ticket


def ticket_scope(staff: Staff) -> Expression | None:
    """A WHERE clause limiting tickets to what ``staff`` may see; None means no limit.

    An agent sees tickets of their departments, tickets assigned to them, and
    unrouted tickets (no department yet) so that nothing sits unseen.
    """
    if staff.is_admin:
        return None
    departments = StaffDepartment.select(StaffDepartment.department).where(
        StaffDepartment.staff == staff)
    return (Ticket.department.in_(departments) | (Ticket.assignee == staff)
            | Ticket.department.is_null())


def visible_tickets(staff: Staff):  # -> peewee.ModelSelect
    query = Ticket.select()
    scope = ticket_scope(staff)
    return query if scope is None else query.where(scope)


def can_see(staff: Staff, ticket: Ticket) -> bool:
    if not staff.active:
        return False
    if staff.is_admin or ticket.assignee_id == staff.id or ticket.department_id is None:
        return True
    return ticket.department_id in staff.department_ids()
