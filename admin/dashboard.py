"""The console's home: what the desk looks like now and over the last 30 days."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from flask_admin import expose
from peewee import SQL, NodeList, fn

from core import db
from core.models import Department, Status, Ticket, utcnow
from core.services.access import active, ticket_scope
from core.state import loket

from . import charts
from .base import SecuredIndexView, current_staff
from .desk import category_labels
from .tickets import STATUS_LABELS

DAYS = 30


def _scoped(query: Any) -> Any:
    staff = current_staff()
    scope = ticket_scope(staff) if staff is not None else Ticket.id < 0
    return query if scope is None else query.where(scope)


def _day(value: Any) -> str:
    # date() comes back as text, a date or (peewee converting it) a datetime.
    if isinstance(value, dt.datetime):
        value = value.date()
    return value.isoformat() if isinstance(value, dt.date) else str(value)[:10]


def per_day_by_channel(column: Any, since: dt.datetime, days: list[str]) -> dict[str, list[int]]:
    day = fn.DATE(column)
    rows = _scoped(Ticket.select(day.alias("day"), Ticket.channel, fn.COUNT(Ticket.id)
                                 .alias("n")).where(column >= since)
                   .group_by(day, Ticket.channel)).dicts()
    series: dict[str, list[int]] = defaultdict(lambda: [0] * len(days))
    index = {d: i for i, d in enumerate(days)}
    for row in rows:
        i = index.get(_day(row["day"]))
        if i is not None:
            series[row["channel"]][i] += row["n"]
    # The declared channels, in their order and by their labels; older names after them.
    channels = loket().channels
    order = {name: n for n, name in enumerate(channels.names())}
    names = sorted(series, key=lambda name: (order.get(name, len(order)), name))
    return {channels.label(name): series[name] for name in names}


def _response_minutes() -> Any:
    """Minutes from a ticket's opening to the first agent answer, as SQL."""
    if db.is_sqlite():
        return (fn.julianday(Ticket.first_response_at) - fn.julianday(Ticket.created_at)) * 1440
    return fn.EXTRACT(NodeList((SQL("EPOCH FROM"), Ticket.first_response_at - Ticket.created_at),
                               glue=" ")) / 60


def first_response_stats(since: dt.datetime) -> dict[str, Any]:
    """How many tickets opened since ``since`` were answered, the median and the 90th
    percentile (nearest rank) minutes to that answer: one aggregate query, no rows to Python.
    """
    minutes = _response_minutes()
    answered = (Ticket.created_at >= since) & Ticket.first_response_at.is_null(False)
    if not db.is_sqlite():
        row = _scoped(Ticket.select(
            fn.COUNT(Ticket.id),
            NodeList((SQL("percentile_cont(0.5) WITHIN GROUP (ORDER BY"), minutes, SQL(")"))),
            NodeList((SQL("percentile_disc(0.9) WITHIN GROUP (ORDER BY"), minutes, SQL(")"))))
            .where(answered)).tuples().first()
        count, median, p90 = row or (0, None, None)
        if not count:
            return {"count": 0, "median": None, "p90": None}
        return {"count": count, "median": float(median), "p90": float(p90)}
    # SQLite has no percentile aggregate: number the answers in order once (one sort) and
    # keep the middle one or two and the nearest-rank 90th.
    ranked = _scoped(Ticket.select(
        minutes.alias("minutes"),
        fn.ROW_NUMBER().over(order_by=[minutes]).alias("rank"),
        fn.COUNT(Ticket.id).over().alias("total")).where(answered))
    total = SQL("total")
    wanted = ranked.select_from(SQL("minutes"), SQL("rank"), total).where(
        SQL("rank").in_([(total + 1) / 2, (total + 2) / 2, (total * 9 + 9) / 10]))
    rows = list(wanted.tuples())
    if not rows:
        return {"count": 0, "median": None, "p90": None}
    count = rows[0][2]
    by_rank = {rank: value for value, rank, _total in rows}
    median = (by_rank[(count + 1) // 2] + by_rank[(count + 2) // 2]) / 2
    return {"count": count, "median": median, "p90": by_rank[(count * 9 + 9) // 10]}


def human_minutes(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 90:
        return f"{value:.0f} min"
    if value < 48 * 60:
        return f"{value / 60:.1f} h"
    return f"{value / 1440:.1f} days"


def top_categories(now: dt.datetime) -> list[tuple[str, list[int]]]:
    this_week = now - dt.timedelta(days=7)
    last_week = now - dt.timedelta(days=14)
    counts: dict[Any, list[int]] = defaultdict(lambda: [0, 0])
    for start, end, slot in ((this_week, now, 0), (last_week, this_week, 1)):
        rows = _scoped(Ticket.select(Ticket.category, fn.COUNT(Ticket.id).alias("n"))
                       .where((Ticket.created_at >= start) & (Ticket.created_at < end))
                       .group_by(Ticket.category)).dicts()
        for row in rows:
            counts[row["category"]][slot] += row["n"]
    names = category_labels()
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1][0], -kv[1][1]))[:8]
    return [(names.get(k, "(no category)"), v) for k, v in ranked]


def open_by_status() -> dict[str, int]:
    return dict(_scoped(Ticket.select(Ticket.status, fn.COUNT(Ticket.id))
                        .where(active()).group_by(Ticket.status)).tuples())


def open_by_department() -> list[tuple[str, list[int]]]:
    counts = _scoped(Ticket.select(Ticket.department, fn.COUNT(Ticket.id))
                     .where(active()).group_by(Ticket.department)).tuples()
    names = {d.id: d.name for d in Department.select(Department.id, Department.name)}
    return sorted(((names.get(k, "(no department)"), [n]) for k, n in counts),
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
        opened = per_day_by_channel(Ticket.created_at, since, days)
        resolved = per_day_by_channel(Ticket.resolved_at, since, days)
        by_status = open_by_status()
        by_department = open_by_department()
        response = first_response_stats(since)
        return self.render(
            "loket_admin/dashboard.html",
            opened_chart=charts.stacked_bars("Tickets opened per day by channel", short,
                                             opened),
            resolved_chart=charts.stacked_bars("Tickets resolved per day by channel", short,
                                               resolved),
            status_chart=charts.horizontal_bars(
                "Open tickets by status",
                [(STATUS_LABELS[s], [by_status.get(s, 0)]) for s in Status.ACTIVE]),
            department_chart=charts.horizontal_bars("Open tickets by department",
                                                    by_department),
            category_chart=charts.horizontal_bars(
                "Top categories, this week and last week", top_categories(now),
                ("this week", "last week")),
            response=response, median=human_minutes(response["median"]),
            p90=human_minutes(response["p90"]),
            open_total=sum(by_status.values()), days=DAYS)
