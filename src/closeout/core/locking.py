"""Rows a worker takes for itself: FOR UPDATE SKIP LOCKED where the database has it (PostgreSQL),
so that workers running side by side (the archive job, batch items, the sweep) never take the
same row and never wait for one another. Elsewhere (SQLite: one writer at a time) the query is
left as it is."""

from typing import TypeVar

from django.db import connection
from django.db.models import Model, QuerySet

M = TypeVar("M", bound=Model)


def skip_locked(qs: QuerySet[M]) -> QuerySet[M]:
    """`qs` locking the rows it reads, skipping those another transaction holds; only the
    query's own table (`of self`) and without blocking foreign keys to it (`no key`)."""
    if connection.features.has_select_for_update_skip_locked:
        return qs.select_for_update(skip_locked=True, of=("self",), no_key=True)
    return qs
