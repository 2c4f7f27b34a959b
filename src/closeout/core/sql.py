"""One query parameter for a whole set of values, for `field__in=`: an array on PostgreSQL, a
JSON list on SQLite. Binding thousands of separate parameters costs more to bind and parse
than the lookup itself."""

import json
from typing import Literal

from django.db import connection
from django.db.models.expressions import RawSQL


def array_param(values: list[int] | list[str], *, sql_type: Literal["bigint", "text"]) -> RawSQL:
    """`values` as ONE parameter; `sql_type` is the PostgreSQL element type. The SQL is
    constant: nothing of the values is in it."""
    if connection.vendor != "postgresql":
        return RawSQL("SELECT value FROM json_each(%s)", [json.dumps(list(values))])
    if sql_type == "bigint":  # an array literal binds fastest
        return RawSQL("SELECT unnest(%s::bigint[])", ["{" + ",".join(map(str, values)) + "}"])
    return RawSQL("SELECT unnest(%s::text[])", [list(values)])


def ids_param(ids: list[int]) -> RawSQL:
    """A set of ids as one parameter (`pk__in=ids_param(ids)`)."""
    return array_param([int(i) for i in ids], sql_type="bigint")


def texts_param(texts: list[str]) -> RawSQL:
    """A set of strings as one parameter (`number__in=texts_param(numbers)`)."""
    return array_param(list(texts), sql_type="text")
