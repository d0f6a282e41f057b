"""Small, explicit test data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from argon2 import PasswordHasher

from core.models import (
    Category,
    CategoryField,
    Department,
    FieldKind,
    Priority,
    Role,
    Staff,
    StaffDepartment,
    UserType,
)

T = TypeVar("T")

PASSWORD = "correct horse battery staple"
_hasher = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)


@dataclass
class Desk:
    member: UserType
    studio: UserType
    support: Department
    billing: Department
    management: Department
    login: Category
    payments: Category
    refunds: Category
    account: Category
    admin: Staff
    agent: Staff
    billing_agent: Staff


def make_staff(email: str, name: str, role: str = Role.AGENT,
               departments: tuple[Department, ...] = ()) -> Staff:
    staff = Staff.create(email=email, name=name, role=role,
                         password_hash=_hasher.hash(PASSWORD))
    for department in departments:
        StaffDepartment.create(staff=staff, department=department)
    return staff


def build_desk() -> Desk:
    member = UserType.create(slug="member", name="Member", position=1)
    studio = UserType.create(slug="studio", name="Studio", position=2)
    management = Department.create(slug="management", name="Management")
    support = Department.create(slug="support", name="Support", escalates_to=management)
    billing = Department.create(slug="billing", name="Billing", escalates_to=management)
    login = Category.create(user_type=member, slug="registration-and-login",
                            name="Registration and login", position=1,
                            default_department=support)
    payments = Category.create(user_type=member, slug="payments-and-subscriptions",
                               name="Payments and subscriptions", position=2,
                               default_department=support, default_priority=Priority.HIGH)
    refunds = Category.create(user_type=member, parent=payments, slug="refunds",
                              name="Refunds", position=1)
    account = Category.create(user_type=studio, slug="account", name="Account", position=1,
                              default_department=support)
    CategoryField.create(category=login, name="registered_email", label="Registered email",
                         kind=FieldKind.EMAIL, required=True, position=1)
    admin = make_staff("admin@desk.test", "Ada Admin", Role.ADMIN)
    agent = make_staff("agent@desk.test", "Agus Agent", departments=(support,))
    billing_agent = make_staff("billing@desk.test", "Bea Billing", departments=(billing,))
    return Desk(member, studio, support, billing, management, login, payments, refunds,
                account, admin, agent, billing_agent)


def fresh_rate_window(margin: float = 8.0) -> None:
    """Wait, if need be, until a new minute begins, for a test that counts hits per minute.

    The rate limiter's sliding window weighs the previous minute's hits by how much of it is
    left and rounds down (the ``limits`` library), so a hit just after a minute begins
    counts the earlier ones as fewer: a test that makes N+1 requests against "N/minute"
    across a minute's end sees the last one allowed (it failed so once in CI). A test
    starting with fewer than ``margin`` seconds left in the minute waits for the next.
    """
    import time

    left = 60 - time.time() % 60
    if left < margin:
        time.sleep(left + 0.05)



def found_every_way(monkeypatch: Any, found: Callable[[], T],
                    walk_from: tuple[int, ...] = (0,)) -> T:
    """What ``found()`` lists when a search gathers its tickets from the index, after
    asserting that the two other ways list the same: walked (each ticket tested in the
    page's order, from ``MIN_COMMON`` matches on, for each value of ``walk_from``) and
    sifted (the found ids kept as the page walks its own order, never sorted)."""
    from core.services import search

    monkeypatch.setattr(search, "MIN_COMMON", 10 ** 9)  # never common: gathered
    gathered = found()
    monkeypatch.setattr(search, "WALK_FACTOR", 0)
    for fewest in walk_from:
        monkeypatch.setattr(search, "MIN_COMMON", fewest)  # common from this many: walked
        assert found() == gathered, ("walked", fewest)
    monkeypatch.setattr(search, "WALK_FACTOR", 10 ** 9)  # never common, never sorted: sifted
    monkeypatch.setattr(search, "SORT_FACTOR", 0)
    assert found() == gathered, "sifted"
    return gathered
