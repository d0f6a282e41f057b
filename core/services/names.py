"""The names shown beside tickets (categories, departments, staff), kept by each process.

The console names the categories, departments and agents of its rows, filters and actions,
the API the categories, departments and assignees of its tickets. Both read them from one
statement (``console.names``), and each process keeps what it read under the stamp of
migration 0018: triggers change the stamp with every name either shows (whatever writes the
rows), and every console page and API request reads it in the statement that looks up its
session or token. A request whose stamp is the kept one reads no names; one whose stamp
differs (a name changed, in this worker or any other) reads them again at once.

The stamp is random, compared for equality only (0018 says why). A thread that holds an
older stamp than the kept one reads the names for itself: never names older than its stamp.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from peewee import SQL, Case

from .. import db
from ..models import Category, Department, Staff, UserType

# The names' stamp as a column of the statement that looks a session or a token up.
STAMP = SQL('(SELECT "stamp" FROM "console_names_stamp")')


def _flag(column: Any) -> Any:
    return Case(None, [(column, SQL("1"))], SQL("0"))


# (1, category, name, parent, user type's name, slug), (2, department, name, active, NULL,
# slug), (3, staff, name, active, NULL, email), each kind by name. One statement, not three:
# on PostgreSQL each was a round trip and a statement for the server to plan and run.
_rows = db.Rows("console.names", lambda: (
    Category.select(SQL("1"), Category.id, Category.name, Category.parent, UserType.name,
                    Category.slug)
    .join(UserType, on=(Category.user_type == UserType.id))
    + Department.select(SQL("2"), Department.id, Department.name, _flag(Department.active),
                        SQL("NULL"), Department.slug)
    + Staff.select(SQL("3"), Staff.id, Staff.name, _flag(Staff.active), SQL("NULL"),
                   Staff.email)
).order_by(SQL("1"), SQL("3")))


class Names:
    """The names as one read found them. Never changed after it is made: a process shares
    it among its threads and requests while the stamp holds."""

    __slots__ = ("categories", "departments", "staff", "_made")

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        # id -> (name, parent id, user type's name, slug), by name
        self.categories: dict[int, tuple[str, int | None, str, str]] = {}
        # (id, name, active, slug), by name
        self.departments: list[tuple[int, str, bool, str]] = []
        # (id, name, active, email), by name
        self.staff: list[tuple[int, str, bool, str]] = []
        for kind, row_id, name, number, user_type_name, text in rows:
            if kind == 1:
                self.categories[row_id] = (name, number, user_type_name, text)
            elif kind == 2:
                self.departments.append((row_id, name, bool(number), text))
            else:
                self.staff.append((row_id, name, bool(number), text))
        self._made: dict[str, Any] = {}

    def made(self, what: str, make: Callable[[Names], Any]) -> Any:
        """``make(self)``, made once for these names: ``what`` must name everything else it
        depends on. Kept with the names, so once per change of a name in each process."""
        found = self._made.get(what)
        if found is None:
            found = self._made[what] = make(self)
        return found

    def api(self) -> tuple[dict[int, tuple[str, str]], ...]:
        """What the API shows of them: categories and departments by id as (slug, name),
        staff as (name, email) (``core.api.schemas.summary_json``)."""
        return self.made("api", lambda names: (
            {c_id: (slug, name) for c_id, (name, _p, _u, slug) in names.categories.items()},
            {d_id: (slug, name) for d_id, name, _active, slug in names.departments},
            {s_id: (name, email) for s_id, name, _active, email in names.staff}))


_kept: tuple[int, Names] | None = None


def read(stamp: int | None) -> Names:
    """The names, as of ``stamp`` or later: the kept ones when ``stamp`` is theirs, else read
    (and kept under ``stamp``; with no stamp, read and not kept)."""
    global _kept
    kept = _kept
    if stamp is not None and kept is not None and kept[0] == stamp:
        return kept[1]
    names = Names(_rows.all())
    if stamp is not None:
        _kept = (stamp, names)
    return names
