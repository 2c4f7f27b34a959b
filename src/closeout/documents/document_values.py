"""A document's values as the ERP sends them, checked before anything is looked up or written:
the lines sent (`LineInput`) and the values stored for them, the document's own fields, the
sizes of the numeric columns they must fit, its totals, and the exchange rate a new document is
stored with (`document_rate`). The writes that use them are in `upsert` and `sync_bulk`."""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext_noop

from closeout.core.companies import book_rate_table, rate_in_force
from closeout.core.errors import Bilingual, InvalidInput
from closeout.core.inputs import Column, check_fits, check_length, max_length_of
from closeout.core.models import Company, Item
from closeout.core.money import round_amount
from closeout.documents.lookup import type_words
from closeout.documents.models import BusinessEvent, Document, Line


@dataclass(frozen=True)
class LineInput:
    line_no: int
    planned_qty: Decimal
    unit_price: Decimal
    item: Item | None = None
    description: str = ""
    unit: str = "EA"
    planned_amount: Decimal | None = None


def column_of(model: type[Document] | type[Line] | type[BusinessEvent], name: str) -> Column:
    return Column.of(model._meta.get_field(name))  # type: ignore[arg-type]


# The sizes of the numeric columns numbers are checked against before they are written.
QTY_COLUMN = column_of(Line, "planned_qty")


PRICE_COLUMN = column_of(Line, "unit_price")


AMOUNT_COLUMN = column_of(Line, "planned_amount")


RATE_COLUMN = column_of(Document, "exchange_rate")


TOTAL_COLUMN = column_of(Document, "total_amount")


COMPANY_TOTAL_COLUMN = column_of(Document, "total_amount_company")


def line_values(data: LineInput, currency: str) -> dict[str, Any]:
    """The values stored for a line sent, checked: its number, signs and column sizes; the
    planned amount is quantity × price rounded in the currency when none was sent."""
    if data.line_no <= 0:
        raise InvalidInput(
            gettext_noop("line %(line_no)s: line numbers start at 1"),
            details={"field": "line_no"},
            params={"line_no": data.line_no},
        )
    if data.planned_qty < 0 or data.unit_price < 0:
        raise InvalidInput(
            gettext_noop("line %(line_no)s: planned quantity and unit price must not be negative"),
            details={"field": "planned_qty", "line_no": data.line_no},
            params={"line_no": data.line_no},
        )
    where = f"line {data.line_no} "
    check_fits(data.planned_qty, QTY_COLUMN, field="planned_qty", what=where + "planned_qty")
    check_fits(data.unit_price, PRICE_COLUMN, field="unit_price", what=where + "unit_price")
    amount = data.planned_amount
    if amount is None:
        product = data.planned_qty * data.unit_price
        check_fits(
            product,
            AMOUNT_COLUMN,
            field="planned_qty",
            what=f"{where}planned_qty × unit_price = {product:f}",
            rounded=True,
        )
        amount = round_amount(product, currency)
    else:
        check_fits(amount, AMOUNT_COLUMN, field="planned_amount", what=where + "planned_amount")
    return {
        "item_id": data.item.pk if data.item else None,
        "description": data.description,
        "unit": data.unit,
        "unit_price": data.unit_price,
        "planned_qty": data.planned_qty,
        "planned_amount": amount,
    }


def document_checked(
    *,
    number: str,
    source_system: str,
    external_id: str,
    exchange_rate: Decimal | None,
    line_nos: list[int],
) -> None:
    """The checks of a document's own values before anything is looked up or written."""
    if not number.strip():
        raise InvalidInput(
            gettext_noop("document number is empty"), details={"field": "number"}, params={}
        )
    for name, value in (
        ("number", number),
        ("source_system", source_system),
        ("external_id", external_id),
    ):
        check_length(value, field=name, max_length=max_length_of(Document, name))
    if exchange_rate is not None:
        check_fits(exchange_rate, RATE_COLUMN, field="exchange_rate")
    seen: set[int] = set()
    for line_no in line_nos:
        if line_no in seen:
            raise InvalidInput(
                gettext_noop("%(number)s: line %(line_no)s appears twice"),
                details={"field": "lines"},
                params={"number": number, "line_no": line_no},
            )
        seen.add(line_no)


def document_rate(
    company: Company,
    *,
    currency: str,
    day: date,
    given: Decimal | None,
    doc_type: str,
    number: str,
    cache: dict[tuple[int, str, date], Decimal] | None = None,
) -> Decimal:
    """The exchange rate a new document is stored with: the one the ERP sent; without one, 1
    in the company's base currency, else the book rate table's rate in force on the document
    date. None there: refused, naming the document, the currency and the date."""
    if given is not None:
        return given
    if currency == company.base_currency:
        return Decimal(1)
    key = (company.pk, currency, day)
    if cache is not None and key in cache:
        return cache[key]
    table = book_rate_table()
    found = rate_in_force(table, currency, company.base_currency, day)
    if found is None:
        raise InvalidInput(
            gettext_noop(
                "%(document)s is in %(currency)s, not in the base currency %(base)s of company "
                "%(company)s, and came without an exchange rate; rate table %(table)s has no "
                "rate from %(currency)s to %(base)s on or before %(day)s: send exchange_rate "
                "or add the rate (closeout company rate %(table)s)"
            ),
            params={
                "document": _document_words(doc_type, number),
                "currency": currency,
                "base": company.base_currency,
                "company": company.code,
                "table": table,
                "day": day.isoformat(),
            },
            details={
                "field": "exchange_rate",
                "doc_type": doc_type,
                "number": number,
                "currency": currency,
                "document_date": day.isoformat(),
                "rate_table": table,
            },
        )
    if cache is not None:
        cache[key] = found.rate
    return found.rate


def _document_words(doc_type: str, number: str) -> Bilingual:
    words = type_words(doc_type)
    return Bilingual(f"{words.en} {number}", f"{words.zh} {number}")


def check_totals(total: Decimal, exchange_rate: Decimal) -> None:
    """The document's totals are stored too: the sum of its lines, and that sum at the rate."""
    check_fits(total, TOTAL_COLUMN, field="lines", what=f"the total of the lines {total:f}")
    company = total * exchange_rate
    check_fits(
        company,
        COMPANY_TOTAL_COLUMN,
        field="exchange_rate",
        what=f"the total at the rate, {total:f} × {exchange_rate:f} = {company:f},",
        rounded=True,
    )
