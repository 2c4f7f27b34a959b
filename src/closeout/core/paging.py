"""Pages of a list by keyset (seek) pagination: the next page starts after the last row's sort
value and id, the previous one ends before the first row's. Any page costs the same at a
million rows, unlike OFFSET. Counts are exact up to a bound and estimated by the planner
beyond it (PostgreSQL), because counting a million rows costs more than the page."""

import json
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.core.exceptions import ValidationError
from django.db import connections
from django.db.models import Model, Q, QuerySet

from closeout.core.inputs import is_digits

M = TypeVar("M", bound=Model)

EXACT_COUNT_UP_TO = 10_000


@dataclass(frozen=True)
class Page(Generic[M]):
    rows: list[M]
    # Cursors of the neighbouring pages ("" when there is none).
    next_cursor: str
    prev_cursor: str


def _ordered(qs: QuerySet[M], sort: str, *, reverse: bool) -> QuerySet[M]:
    field = sort.lstrip("-")
    descending = sort.startswith("-") != reverse
    sign = "-" if descending else ""
    order = [f"{sign}{field}"] if field in ("id", "pk") else [f"{sign}{field}", f"{sign}pk"]
    return qs.order_by(*order)


def _seek(qs: QuerySet[M], sort: str, cursor: str, *, reverse: bool) -> QuerySet[M]:
    """Rows after `cursor` in `sort` order (before it when `reverse`). A damaged cursor
    starts again from the first page rather than failing the page."""
    value, _, pk_text = cursor.rpartition("|")
    if not is_digits(pk_text) or len(pk_text) > 18:
        return qs
    pk = int(pk_text)
    field = sort.lstrip("-")
    op = "lt" if sort.startswith("-") != reverse else "gt"
    if field in ("id", "pk"):
        return qs.filter(**{f"pk__{op}": pk})
    try:
        return qs.filter(Q(**{f"{field}__{op}": value}) | Q(**{field: value, f"pk__{op}": pk}))
    except (ValidationError, ValueError, ArithmeticError):
        return qs


def cursor_of(row: Model, sort: str) -> str:
    field = sort.lstrip("-")
    value = row.pk if field in ("id", "pk") else getattr(row, field)
    return f"{value}|{row.pk}"


def keyset_page(
    qs: QuerySet[M], *, sort: str, size: int, after: str = "", before: str = ""
) -> Page[M]:
    """One page of `qs` in `sort` order (a field name, "-" for descending; ties broken by id):
    the first page, the one after cursor `after`, or the one before cursor `before`."""
    if before:
        rows = list(_seek(_ordered(qs, sort, reverse=True), sort, before, reverse=True)[: size + 1])
        more_before = len(rows) > size
        rows = rows[:size][::-1]
        return Page(
            rows=rows,
            next_cursor=cursor_of(rows[-1], sort) if rows else "",
            prev_cursor=cursor_of(rows[0], sort) if rows and more_before else "",
        )
    ordered = _ordered(qs, sort, reverse=False)
    rows = list((_seek(ordered, sort, after, reverse=False) if after else ordered)[: size + 1])
    more_after = len(rows) > size
    rows = rows[:size]
    return Page(
        rows=rows,
        next_cursor=cursor_of(rows[-1], sort) if rows and more_after else "",
        prev_cursor=cursor_of(rows[0], sort) if rows and after else "",
    )


@dataclass(frozen=True)
class Count:
    value: int
    exact: bool


def count_estimate(qs: QuerySet[Any], *, exact_up_to: int = EXACT_COUNT_UP_TO) -> Count:
    """How many rows `qs` has: exact up to `exact_up_to`, else PostgreSQL's planner estimate
    (never below the bound). SQLite, the small embedded default, always counts exactly."""
    connection = connections[qs.db]
    if connection.vendor != "postgresql":
        return Count(qs.count(), exact=True)
    bounded = qs.order_by()[: exact_up_to + 1].count()
    if bounded <= exact_up_to:
        return Count(bounded, exact=True)
    sql, params = qs.order_by().query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return Count(max(int(plan[0]["Plan"]["Plan Rows"]), exact_up_to + 1), exact=False)
