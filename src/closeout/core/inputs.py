"""Input taken from people and other systems, checked once before it reaches a query: numbers
written with ASCII digits only, no NUL characters, numbers that fit the database column they
are stored in, dates and day counts inside sane bounds.

Python's own parsers are too generous for an edge: int("١٢"), Decimal("１２") and
datetime.strptime("２０２６-03", "%Y-%m") all succeed, and a NUL character or a 21-digit
amount only fails deep inside the database. Every interface (API schemas, query parameters,
forms, commands, imports) and the services behind them use these helpers."""

import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Context, Decimal
from typing import Any, Protocol

from django.utils.translation import gettext_noop

from closeout.core.errors import InvalidInput, Message
from closeout.core.fields import field_words

# Dates people and ERPs send: anything outside is a typing error, and date arithmetic near
# year 1 or 9999 overflows.
DATE_MIN = date(1900, 1, 1)
DATE_MAX = date(2999, 12, 31)
# Ages and retention periods in days: at most a hundred years.
MAX_DAYS = 36_500

NUL = "\x00"
_ASCII_INTEGER = re.compile(r"[+-]?[0-9]+")
_ASCII_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


class _DecimalField(Protocol):
    max_digits: int | None
    decimal_places: int | None


# SQLite stores decimals as binary floating point and Django reads them back rounded to 15
# significant digits: more digits would be changed silently, and a value that rounds up past
# the column's size cannot be read back at all.
SQLITE_SIGNIFICANT_DIGITS = 15


@dataclass(frozen=True)
class Column:
    """The size of a numeric(max_digits, decimal_places) column, and on SQLite the
    significant digits it keeps exactly."""

    max_digits: int
    decimal_places: int
    significant_digits: int | None = None

    @classmethod
    def of(cls, field: _DecimalField) -> "Column":
        """The size of a model's DecimalField (`Line._meta.get_field("planned_qty")`) in the
        configured database."""
        from django.db import connection

        assert field.max_digits is not None and field.decimal_places is not None  # noqa: S101
        exact = SQLITE_SIGNIFICANT_DIGITS if connection.vendor == "sqlite" else None
        return cls(field.max_digits, field.decimal_places, exact)

    @property
    def whole_digits(self) -> int:
        return self.max_digits - self.decimal_places

    @property
    def largest(self) -> Decimal:
        return Decimal(10) ** self.whole_digits - Decimal(1).scaleb(-self.decimal_places)

    def pattern(self, *, signed: bool = True) -> str:
        """A regular expression (ASCII digits) for the decimal strings this column holds."""
        sign = "-?" if signed else ""
        fraction = rf"(\.[0-9]{{1,{self.decimal_places}}})?" if self.decimal_places else ""
        return rf"^{sign}[0-9]{{1,{self.whole_digits}}}{fraction}$"


# --- characters ------------------------------------------------------------------------------


def non_ascii_digit(text: str) -> str | None:
    """The first digit in `text` that is not 0-9 (Arabic-Indic, full-width, …), or None."""
    for ch in text:
        if not ch.isascii() and (ch.isdigit() or ch.isdecimal() or ch.isnumeric()):
            return ch
    return None


def is_digits(text: str) -> bool:
    """`text` is one or more of the ASCII digits 0-9 (str.isdigit() also takes "١٢" and
    "１２", which int() then reads as 12)."""
    return bool(text) and text.isascii() and text.isdigit()


def check_ascii_digits(text: str, *, field: str) -> str:
    """Refuse a number written with digits other than 0-9."""
    ch = non_ascii_digit(text)
    if ch is not None:
        raise InvalidInput(
            gettext_noop("%(field)s: '%(text)s' %(problem)s"),
            params={"field": field_words(field), "text": text[:40], "problem": _digit_problem(ch)},
            details={"field": field},
        )
    return text


def nul_paths(value: Any) -> Iterator[tuple[str | int, ...]]:
    """Where, in a decoded JSON value (or form data), a string holds a NUL character. Walks
    with its own stack: a body nested a thousand levels deep is no reason for a 500."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if NUL in item:
                yield path
        elif isinstance(item, dict):
            for key, child in reversed(item.items()):
                if isinstance(key, str) and NUL in key:
                    yield (*path, key)
                else:
                    stack.append(((*path, key), child))
        elif isinstance(item, list | tuple):
            stack.extend(((*path, i), child) for i, child in reversed(list(enumerate(item))))


def place(path: tuple[str | int, ...] | list[str | int]) -> str:
    """("events", 3, "quantity") -> "events[3].quantity"."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


NUL_MESSAGE = "holds a NUL character (\\u0000), which no text may contain"


def nul_error(field: str) -> InvalidInput:
    """The error for a text holding a NUL character (NUL_MESSAGE, in the reader's language)."""
    return InvalidInput(
        gettext_noop("%(field)s holds a NUL character (\\u0000), which no text may contain"),
        params={"field": field_words(field)},
        details={"field": field},
    )


def check_no_nul(text: str, *, field: str) -> str:
    if NUL in text:
        raise nul_error(field)
    return text


def refuse_bad_json(model: str, data: Any, *, unchecked: Collection[str] = ()) -> Any:
    """For a pydantic `model_validator(mode="before")` of a request body: the body must be a
    JSON object (pydantic models built from attributes would take `[null, null]` for an
    object with every field left at its default), and none of its strings, at any depth, may
    hold a NUL character; fields named in `unchecked` are left to the model that checks their
    items. The error names the exact place (`numbers[3]`, `filter.number`)."""
    from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

    if not isinstance(data, dict):
        error = PydanticCustomError(
            "object_expected",
            "expected a JSON object, got {got}",
            {"got": "null" if data is None else type(data).__name__},
        )
        raise ValidationError.from_exception_data(
            model, [InitErrorDetails(type=error, loc=(), input=data)]
        )
    errors = [
        InitErrorDetails(
            type=PydanticCustomError("nul_character", NUL_MESSAGE), loc=path, input="\\x00"
        )
        for path in nul_paths({k: v for k, v in data.items() if k not in unchecked})
    ]
    if errors:
        raise ValidationError.from_exception_data(model, errors)
    return data


def max_length_of(model: Any, name: str) -> int | None:
    """The max_length of a model's text field (None for unbounded text)."""
    value = getattr(model._meta.get_field(name), "max_length", None)
    return value if isinstance(value, int) else None


def check_length(text: str, *, field: str, max_length: int | None) -> str:
    """Refuse text longer than its column (PostgreSQL refuses it with an error; SQLite
    stores it whole)."""
    if max_length is not None and len(text) > max_length:
        raise InvalidInput(
            gettext_noop("%(field)s: '%(text)s…' is longer than %(max_length)s characters"),
            params={"field": field_words(field), "text": text[:40], "max_length": max_length},
            details={"field": field, "max_length": max_length},
        )
    return text


# --- numbers ---------------------------------------------------------------------------------


def parse_int(
    text: str, *, field: str, minimum: int | None = None, maximum: int | None = None
) -> int:
    """A whole number written with ASCII digits, optionally inside [minimum, maximum]."""
    value = text.strip()
    check_ascii_digits(value, field=field)
    if not _ASCII_INTEGER.fullmatch(value) or len(value) > 30:
        raise InvalidInput(
            gettext_noop("%(field)s: '%(text)s' is not a whole number"),
            params={"field": field_words(field), "text": text[:40]},
            details={"field": field},
        )
    return check_range(int(value), field=field, minimum=minimum, maximum=maximum)


def check_range(
    value: int, *, field: str, minimum: int | None = None, maximum: int | None = None
) -> int:
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        low = "" if minimum is None else str(minimum)
        high = "" if maximum is None else str(maximum)
        raise InvalidInput(
            gettext_noop("%(field)s: %(value)s is outside %(low)s..%(high)s"),
            params={"field": field_words(field), "value": value, "low": low, "high": high},
            details={"field": field, "minimum": minimum, "maximum": maximum},
        )
    return value


def _digit_problem(ch: str) -> Message:
    return Message(
        gettext_noop("uses the digit '%(digit)s' (U+%(code)s); write numbers with the digits 0-9"),
        digit=ch,
        code=f"{ord(ch):04X}",
    )


def decimal_words(text: str, column: Column | None = None) -> Message | None:
    """Why `text` is not a decimal number fitting `column` (None when it is), in both
    languages: ASCII digits, an optional sign and decimal point, no exponent, no NaN or
    Infinity."""
    value = text.strip()
    ch = non_ascii_digit(value)
    if ch is not None:
        return _digit_problem(ch)
    if not _ASCII_DECIMAL.fullmatch(value) or len(value) > 60:
        return Message(gettext_noop("is not a decimal number such as 12.5"))
    return fit_words(Decimal(value), column) if column is not None else None


def decimal_problem(text: str, column: Column | None = None) -> str:
    """Why `text` is not a decimal number fitting `column` ('' when it is), in English."""
    words = decimal_words(text, column)
    return words.en if words is not None else ""


def parse_decimal(text: str, *, field: str, column: Column | None = None) -> Decimal:
    """A decimal number written with ASCII digits ("12.5", "-3", "0.0001"), fitting `column`
    when given."""
    problem = decimal_words(text, column)
    if problem is not None:
        raise InvalidInput(
            gettext_noop("%(field)s: '%(text)s' %(problem)s"),
            params={"field": field_words(field), "text": text[:40], "problem": problem},
            details={"field": field},
        )
    return Decimal(text.strip())


def fit_words(value: Decimal, column: Column, *, rounded: bool = False) -> Message | None:
    """Why `value` does not fit `column` (None when it does), in both languages. With
    `rounded`, the value is a computed one that is rounded when stored: only its size counts."""
    if not value.is_finite():
        return Message(gettext_noop("is not a finite number"))
    if column.significant_digits is not None:
        stored = Context(prec=column.significant_digits).create_decimal(value)
        if not rounded and stored != value:
            return Message(
                gettext_noop(
                    "has more than %(digits)s significant digits, the most the embedded SQLite "
                    "database keeps exactly"
                ),
                digits=column.significant_digits,
            )
        value = stored
    if value != 0 and value.adjusted() >= column.whole_digits:
        return Message(
            gettext_noop(
                "has more than %(digits)s digits before the decimal point (the largest is "
                "%(largest)s)"
            ),
            digits=column.whole_digits,
            largest=column.largest,
        )
    if rounded:
        if abs(value) > column.largest:  # rounds up past the largest
            return Message(gettext_noop("is larger than %(largest)s"), largest=column.largest)
        return None
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -column.decimal_places:
        return Message(
            gettext_noop("has more than %(places)s decimal places"),
            places=column.decimal_places,
        )
    return None


def fit_problem(value: Decimal, column: Column, *, rounded: bool = False) -> str:
    """Why `value` does not fit `column` ('' when it does), in English."""
    words = fit_words(value, column, rounded=rounded)
    return words.en if words is not None else ""


def check_fits(
    value: Decimal, column: Column | None, *, field: str, what: str = "", rounded: bool = False
) -> Decimal:
    """Refuse a number the column cannot store (a database error, or a silent rounding).
    `what` says how the value came about ("planned_qty × unit_price = …")."""
    if column is None:
        return value
    problem = fit_words(value, column, rounded=rounded)
    if problem is not None:
        shown = what or (f"{value:f}" if value.is_finite() else str(value))
        raise InvalidInput(
            gettext_noop("%(field)s: %(value)s %(problem)s"),
            params={"field": field_words(field), "value": shown, "problem": problem},
            details={
                "field": field,
                "max_digits": column.max_digits,
                "decimal_places": column.decimal_places,
            },
        )
    return value


# --- dates -----------------------------------------------------------------------------------


def date_words(value: date) -> Message | None:
    """Why `value` is no date people send (None when it is one), in both languages."""
    if not DATE_MIN <= value <= DATE_MAX:
        return Message(
            gettext_noop("%(value)s is outside %(low)s..%(high)s"),
            value=value.isoformat(),
            low=DATE_MIN.isoformat(),
            high=DATE_MAX.isoformat(),
        )
    return None


def date_problem(value: date) -> str:
    words = date_words(value)
    return words.en if words is not None else ""


def check_date(value: date | None, *, field: str) -> date | None:
    """Refuse a date outside DATE_MIN..DATE_MAX (None passes)."""
    if value is not None:
        problem = date_words(value)
        if problem is not None:
            raise InvalidInput(
                gettext_noop("%(field)s: %(problem)s"),
                params={"field": field_words(field), "problem": problem},
                details={
                    "field": field,
                    "minimum": DATE_MIN.isoformat(),
                    "maximum": DATE_MAX.isoformat(),
                },
            )
    return value


def parse_date(text: str, *, field: str) -> date:
    """A date written YYYY-MM-DD (ISO 8601) with ASCII digits, inside the bounds."""
    value = text.strip()
    check_ascii_digits(value, field=field)
    try:
        parsed = date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(
            gettext_noop("%(field)s: '%(text)s' is not a date (use YYYY-MM-DD)"),
            params={"field": field_words(field), "text": text[:40]},
            details={"field": field},
        ) from exc
    check_date(parsed, field=field)
    return parsed


__all__ = [
    "DATE_MAX",
    "DATE_MIN",
    "MAX_DAYS",
    "NUL_MESSAGE",
    "SQLITE_SIGNIFICANT_DIGITS",
    "Column",
    "check_ascii_digits",
    "check_date",
    "check_fits",
    "check_length",
    "check_no_nul",
    "check_range",
    "date_problem",
    "date_words",
    "decimal_problem",
    "decimal_words",
    "fit_problem",
    "fit_words",
    "is_digits",
    "max_length_of",
    "non_ascii_digit",
    "nul_error",
    "nul_paths",
    "parse_date",
    "parse_decimal",
    "parse_int",
    "place",
    "refuse_bad_json",
]
