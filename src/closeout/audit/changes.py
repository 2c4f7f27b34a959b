"""The before/after data of a configuration change, built one way for every service that
changes a row of configuration (reason codes, alert rules, policies, approval routes, periods,
webhook endpoints).

The shape is `{field: {"before": old, "after": new}}`, which the history page shows as one row
per field; `before` is None for every field of a new row."""

from collections.abc import Iterable, Mapping
from typing import Any

from django.db.models import Model

from closeout.audit.chain import to_json_value


def field_values(instance: Model, fields: Iterable[str]) -> dict[str, Any]:
    """The named fields of `instance` as audit values (decimals and dates as strings)."""
    return {name: to_json_value(getattr(instance, name)) for name in fields}


def field_changes(
    before: Mapping[str, Any] | None, after: Mapping[str, Any], *, unchanged: bool = False
) -> dict[str, Any]:
    """`{field: {"before": …, "after": …}}` for each field of `after` whose value changed from
    `before` (every field when `before` is None: a new row, or with `unchanged`: a change
    that records every field it was asked to set)."""
    return {
        name: {"before": None if before is None else before[name], "after": value}
        for name, value in after.items()
        if before is None or unchanged or before[name] != value
    }
