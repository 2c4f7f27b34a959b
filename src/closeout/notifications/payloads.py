"""Plain JSON data from what the notifications store and send: an in-app message's context and a
webhook's payload."""

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db import models


def jsonable(value: Any, *, strict: bool, where: str) -> Any:
    """Plain JSON data from a context or payload. Decimals, dates and UUIDs become strings and
    users their username. `strict` (webhooks) refuses floats and unknown types, since a payload
    that other systems read must not carry rounding errors or `repr()` text."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return str(value)  # TextChoices members become plain strings
    if isinstance(value, float):
        if strict:
            raise ValueError(f"webhook payload has a float at {where}; pass a Decimal or a str")
        return value
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {
            str(k): jsonable(v, strict=strict, where=f"{where}[{k!r}]") for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [jsonable(v, strict=strict, where=f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, set | frozenset):
        return [jsonable(v, strict=strict, where=where) for v in sorted(value, key=str)]
    if isinstance(value, models.Model) and hasattr(value, "get_username"):
        return str(value.get_username())
    if strict:
        raise ValueError(
            f"webhook payload value at {where} is a {type(value).__name__}, not JSON data"
        )
    return str(value)
