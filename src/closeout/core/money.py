"""Decimal helpers: amounts are rounded per currency only when stored."""

from decimal import ROUND_HALF_UP, Decimal

from django.utils.translation import gettext_noop

from closeout.core.errors import InvalidInput
from closeout.core.fields import field_words
from closeout.core.inputs import Column, check_ascii_digits, check_fits

# Minor units per ISO 4217; currencies not listed use 2.
_MINOR_UNITS = {"JPY": 0, "KRW": 0, "VND": 0, "BHD": 3, "KWD": 3}


def round_amount(value: Decimal, currency: str) -> Decimal:
    places = _MINOR_UNITS.get(currency.upper(), 2)
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def to_decimal(value: object, *, field: str, column: Column | None = None) -> Decimal:
    """Parse a user-supplied number without ever going through float: ASCII digits only,
    and fitting `column` when given."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int) and not isinstance(value, bool):
        result = Decimal(value)
    elif isinstance(value, str):
        check_ascii_digits(value, field=field)
        try:
            result = Decimal(value.strip())
        except ArithmeticError as exc:
            raise InvalidInput(
                gettext_noop("%(field)s: '%(text)s' is not a number"),
                params={"field": field_words(field), "text": value},
                details={"field": field},
            ) from exc
    else:
        raise InvalidInput(
            gettext_noop("%(field)s: expected a decimal number as a string, got %(type)s"),
            params={"field": field_words(field), "type": type(value).__name__},
            details={"field": field},
        )
    if not result.is_finite():
        raise InvalidInput(
            gettext_noop("%(field)s: '%(text)s' is not a finite number"),
            params={"field": field_words(field), "text": value},
            details={"field": field},
        )
    return check_fits(result, column, field=field)


def plain(value: Decimal) -> str:
    """A stored decimal as a person writes it: 5.0000 -> "5", 2.5000 -> "2.5", 100 -> "100"."""
    text = f"{value.normalize():f}"
    return "0" if text in ("-0", "") else text
