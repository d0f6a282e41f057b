"""The console's home: what the desk looks like now and over the last 30 days."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from flask_admin import expose

from core import db
from core.models import Department, Status, Ticket, utcnow
from core.services.access import ACTIVE_SQL
from core.state import loket

from . import charts
from .base import SecuredIndexView, current_staff
from .desk import category_labels
from .tickets import STATUS_LABELS

DAYS = 30


# -- Whose tickets --------------------------------------------------------------------------
#
# The figures come from the roll-ups the database keeps (core/migrations/0007_dashboard_
# rollups.py), counted per department. An admin reads them whole; an agent reads their
# departments' rows, plus the tickets assigned to them in other departments (or in none),
# counted from the tickets themselves through the (assignee, department) index: the same
# scope as ``access.ticket_scope``, without the roll-ups knowing about assignees.


@dataclass
class Scope:
    departments: list[int] | None  # None: every department (an admin)
    staff_id: int | None = None  # an agent: their tickets outside those departments count too
    nothing: bool = False  # an inactive or unknown viewer
    others: list[int] | None = None  # the departments not theirs, and 0 (read when needed)


def viewer_scope() -> Scope:
    staff = current_staff()
    if staff is None or not staff.active:
        return Scope([], nothing=True)
    if staff.is_admin:
        return Scope(None)
    return Scope(sorted(staff.department_ids()), staff.id)


def _in(column: str, ids: list[int]) -> tuple[str, list[Any]]:
    if not ids:
        return "1 = 0", []
    return f"{column} IN ({', '.join('?' * len(ids))})", list(ids)


def _rollup_where(scope: Scope) -> tuple[str, list[Any]]:
    """Roll-up rows in scope, as a condition on their ``department_id``."""
    if scope.nothing:
        return "1 = 0", []
    if scope.departments is None:
        return "1 = 1", []
    return _in("department_id", scope.departments)


def _outside(scope: Scope) -> tuple[str, list[Any]] | None:
    """The agent's own tickets their departments' rows do not count, as a WHERE on tickets."""
    if scope.nothing or scope.staff_id is None:
        return None
    # The expressions of the index made for this (migration 0007), and only for this; the
    # other departments named (and 0 for none), so both databases seek each one rather than
    # read every ticket of the agent's to leave out their own departments'.
    if scope.others is None:
        mine = set(scope.departments or ())
        scope.others = [0] + [d.id for d in Department.select(Department.id).order_by(
            Department.id) if d.id not in mine]
    others, params = _in("coalesce(department_id, 0)", scope.others)
    return f"coalesce(assignee_id, 0) = ? AND {others}", [scope.staff_id, *params]


def _run(sql: str, params: list[Any]) -> list[tuple]:
    database = Ticket._meta.database
    if database.param != "?":
        sql = sql.replace("%", "%%").replace("?", database.param)
    return list(database.execute_sql(sql, params).fetchall())


def _day_sql(column: str) -> str:
    return f"date({column})" if db.is_sqlite() else f"({column})::date"


def _minutes_sql() -> str:
    """Whole minutes to the first answer, as the roll-up's triggers count them."""
    if db.is_sqlite():
        return ("((CAST(strftime('%s', first_response_at) AS INTEGER) - "
                "CAST(strftime('%s', created_at) AS INTEGER)) / 60)")
    return ("((extract(epoch from date_trunc('second', first_response_at))::bigint - "
            "extract(epoch from date_trunc('second', created_at))::bigint) / 60)")


def _day(value: Any) -> str:
    # date() comes back as text, a date or (peewee converting it) a datetime.
    if isinstance(value, dt.datetime):
        value = value.date()
    return value.isoformat() if isinstance(value, dt.date) else str(value)[:10]


def _counted(scope: Scope, rollup: str, params: list[Any],
             extra: list[tuple[str, list[Any]]]) -> tuple[str, list[Any]]:
    """The roll-up's rows in scope (``rollup`` ends in a WHERE to add to), then, for an
    agent, the same shape counted from their own tickets outside their departments: each
    of ``extra`` is a ``SELECT … FROM ticket WHERE {mine} AND …`` and its parameters."""
    where, more = _rollup_where(scope)
    sql, params = f"{rollup} AND {where}", [*params, *more]
    outside = _outside(scope)
    if outside is not None:
        mine, mine_params = outside
        for select, select_params in extra:
            sql += " UNION ALL " + select.format(mine=mine)
            params += [*mine_params, *select_params]
    return sql, params


# -- The figures ----------------------------------------------------------------------------


def per_day(scope: Scope, since: dt.date) -> list[tuple[str, str, int, int]]:
    """(day, channel, opened, resolved) from ``since`` on: one query over the roll-up."""
    start = dt.datetime.combine(since, dt.time())
    sql, params = _counted(
        scope, "SELECT day, channel, opened, resolved FROM ticket_day_count WHERE day >= ?",
        [since.isoformat()],
        [(f"SELECT {_day_sql('created_at')}, channel, 1, 0 FROM ticket "
          "WHERE {mine} AND created_at >= ?", [start]),
         (f"SELECT {_day_sql('resolved_at')}, channel, 0, 1 FROM ticket "
          "WHERE {mine} AND resolved_at >= ?", [start])])
    rows = _run(f"SELECT day, channel, SUM(opened), SUM(resolved) FROM ({sql}) AS counted "
                "GROUP BY day, channel", params)
    return [(_day(d), channel, int(o or 0), int(r or 0)) for d, channel, o, r in rows]


def by_channel(rows: list[tuple[str, str, int, int]], days: list[str],
               slot: int) -> dict[str, list[int]]:
    """One chart's series: per channel, the count (2 opened, 3 resolved) of each day."""
    series: dict[str, list[int]] = defaultdict(lambda: [0] * len(days))
    index = {d: i for i, d in enumerate(days)}
    for row in rows:
        i = index.get(row[0])
        if i is not None and row[slot]:
            series[row[1]][i] += row[slot]
    # The declared channels, in their order and by their labels; older names after them.
    channels = loket().channels
    order = {name: n for n, name in enumerate(channels.names())}
    names = sorted(series, key=lambda name: (order.get(name, len(order)), name))
    return {channels.label(name): series[name] for name in names}


def first_response_stats(since: dt.datetime, scope: Scope | None = None) -> dict[str, Any]:
    """How many tickets opened since ``since`` (a midnight) were answered, the median and the
    90th percentile (nearest rank) of whole minutes to that answer.

    One query: the roll-up's count per day and minute value (an admin's has no departments:
    12,000 rows for 30 days at a million tickets, against 36,000 per department), then the
    ranks found by a running sum in the database.
    """
    scope = scope or viewer_scope()
    if scope.departments is None and not scope.nothing:
        # Every department: the roll-up without them (migration 0010), a third of the rows.
        sql, params = ("SELECT minutes, n FROM ticket_response_minutes WHERE day >= ?",
                       [since.date().isoformat()])
    else:
        sql, params = _counted(
            scope, "SELECT minutes, n FROM ticket_response_count WHERE day >= ?",
            [since.date().isoformat()],
            [(f"SELECT {_minutes_sql()}, 1 FROM ticket WHERE {{mine}} "
              "AND created_at >= ? AND first_response_at IS NOT NULL", [since])])
    row = _run(
        "WITH spread AS (SELECT minutes, SUM(n) AS n FROM (" + sql + ") AS counted "
        "GROUP BY minutes HAVING SUM(n) > 0), "
        # Whole numbers throughout (PostgreSQL sums big integers into numerics), so the
        # ranks below divide as integers on both databases.
        "running AS (SELECT minutes, CAST(SUM(n) OVER (ORDER BY minutes) AS BIGINT) AS upto, "
        "CAST(SUM(n) OVER () AS BIGINT) AS total FROM spread) "
        "SELECT total, MIN(CASE WHEN upto >= (total + 1) / 2 THEN minutes END), "
        "MIN(CASE WHEN upto >= (total + 2) / 2 THEN minutes END), "
        "MIN(CASE WHEN upto >= (total * 9 + 9) / 10 THEN minutes END) "
        "FROM running GROUP BY total", params)
    if not row or not row[0][0]:
        return {"count": 0, "median": None, "p90": None}
    total, low, high, p90 = row[0]
    return {"count": int(total), "median": (low + high) / 2, "p90": float(p90)}


def human_minutes(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 90:
        return f"{value:.0f} min"
    if value < 48 * 60:
        return f"{value / 60:.1f} h"
    return f"{value / 1440:.1f} days"


def top_categories(scope: Scope, today: dt.date) -> list[tuple[str, list[int]]]:
    """Tickets opened per category in the last 7 days (today included) and the 7 before."""
    this_week, last_week = today - dt.timedelta(days=6), today - dt.timedelta(days=13)
    counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for day, category, opened in _per_day_by_category(scope, last_week):
        if opened:
            counts[category][0 if day >= this_week.isoformat() else 1] += opened
    names = category_labels()
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1][0], -kv[1][1]))[:8]
    return [(names.get(k, "(no category)"), v) for k, v in ranked]


def _per_day_by_category(scope: Scope, since: dt.date) -> list[tuple[str, int, int]]:
    """(day, category id or 0, opened) from ``since`` on."""
    sql, params = _counted(
        scope, "SELECT day, category_id, opened FROM ticket_day_count "
        "WHERE day >= ? AND opened <> 0", [since.isoformat()],
        [(f"SELECT {_day_sql('created_at')}, coalesce(category_id, 0), 1 "
          "FROM ticket WHERE {mine} AND created_at >= ?",
          [dt.datetime.combine(since, dt.time())])])
    rows = _run(f"SELECT day, category_id, SUM(opened) FROM ({sql}) AS counted "
                "GROUP BY day, category_id", params)
    return [(_day(d), c, int(n or 0)) for d, c, n in rows]


def open_counts(scope: Scope) -> list[tuple[str, int, int]]:
    """(status, department id or 0, active tickets) in scope."""
    sql, params = _counted(
        scope, "SELECT status, department_id, n FROM ticket_open_count WHERE 1 = 1", [],
        [("SELECT status, coalesce(department_id, 0), 1 FROM ticket "
          f"WHERE {{mine}} AND status {ACTIVE_SQL}", [])])
    rows = _run(f"SELECT status, department_id, SUM(n) FROM ({sql}) AS counted "
                "GROUP BY status, department_id", params)
    return [(status, department, int(n or 0)) for status, department, n in rows if n]


def open_by_status(counts: list[tuple[str, int, int]]) -> dict[str, int]:
    found: dict[str, int] = defaultdict(int)
    for status, _department, n in counts:
        found[status] += n
    return dict(found)


def open_by_department(counts: list[tuple[str, int, int]]) -> list[tuple[str, list[int]]]:
    found: dict[int, int] = defaultdict(int)
    for _status, department, n in counts:
        found[department] += n
    names = {d.id: d.name for d in Department.select(Department.id, Department.name)}
    return sorted(((names.get(k, "(no department)"), [n]) for k, n in found.items()),
                  key=lambda r: -r[1][0])


class DashboardView(SecuredIndexView):
    """Charts drawn on the server as inline SVG, scoped to what the viewer may see."""

    @expose("/")
    def index(self) -> Any:
        now = utcnow()
        since = (now - dt.timedelta(days=DAYS - 1)).replace(hour=0, minute=0, second=0,
                                                            microsecond=0)
        days = [(since + dt.timedelta(days=i)).date().isoformat() for i in range(DAYS)]
        short = [d[5:] for d in days]
        scope = viewer_scope()
        daily = per_day(scope, since.date())
        counts = open_counts(scope)
        by_status = open_by_status(counts)
        response = first_response_stats(since, scope)
        return self.render(
            "loket_admin/dashboard.html",
            opened_chart=charts.stacked_bars("Tickets opened per day by channel", short,
                                             by_channel(daily, days, 2)),
            resolved_chart=charts.stacked_bars("Tickets resolved per day by channel", short,
                                               by_channel(daily, days, 3)),
            status_chart=charts.horizontal_bars(
                "Open tickets by status",
                [(STATUS_LABELS[s], [by_status.get(s, 0)]) for s in Status.ACTIVE]),
            department_chart=charts.horizontal_bars("Open tickets by department",
                                                    open_by_department(counts)),
            category_chart=charts.horizontal_bars(
                "Top categories, this week and last week", top_categories(scope, now.date()),
                ("this week", "last week")),
            response=response, median=human_minutes(response["median"]),
            p90=human_minutes(response["p90"]),
            open_total=sum(by_status.values()), days=DAYS)
