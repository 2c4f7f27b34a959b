"""Documents as the ERP sends them: checked, created or updated with their lines (the header
and lines of a closed document are read-only), with their totals and the audit events."""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.access.services import require, user_has_perm
from closeout.audit.models import AuditAction
from closeout.audit.services import AuditEntry, audit_append
from closeout.core.companies import book_rate_table, company_of, rate_in_force
from closeout.core.errors import (
    Bilingual,
    DocumentLocked,
    InvalidInput,
    PermissionDenied,
    StaleVersion,
    bilingual_label,
)
from closeout.core.inputs import Column, check_fits, check_length, max_length_of
from closeout.core.models import Company, Item, OrgUnit, Partner
from closeout.core.money import round_amount
from closeout.documents.entries import document_entry
from closeout.documents.lookup import document_lock, locked_message, type_words
from closeout.documents.models import (
    BusinessEvent,
    CloseState,
    Document,
    Line,
)
from closeout.documents.types import spec_for


@dataclass(frozen=True)
class LineInput:
    line_no: int
    planned_qty: Decimal
    unit_price: Decimal
    item: Item | None = None
    description: str = ""
    unit: str = "EA"
    planned_amount: Decimal | None = None


_LINE_FIELDS = ("item_id", "description", "unit", "unit_price", "planned_qty", "planned_amount")


def column_of(model: type[Document] | type[Line] | type[BusinessEvent], name: str) -> Column:
    return Column.of(model._meta.get_field(name))  # type: ignore[arg-type]


# The sizes of the numeric columns numbers are checked against before they are written.
QTY_COLUMN = column_of(Line, "planned_qty")


PRICE_COLUMN = column_of(Line, "unit_price")


AMOUNT_COLUMN = column_of(Line, "planned_amount")


RATE_COLUMN = column_of(Document, "exchange_rate")


TOTAL_COLUMN = column_of(Document, "total_amount")


COMPANY_TOTAL_COLUMN = column_of(Document, "total_amount_company")


def _line_values(data: LineInput, currency: str) -> dict[str, Any]:
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


def document_upsert(
    *,
    actor: AbstractBaseUser | None,
    doc_type: str,
    number: str,
    org_unit: OrgUnit,
    document_date: date,
    lines: list[LineInput],
    partner: Partner | None = None,
    expected_date: date | None = None,
    currency: str = "CNY",
    exchange_rate: Decimal | None = None,
    source_system: str = "closeout",
    external_id: str = "",
    expected_version: int | None = None,
) -> Document:
    """Create a document with its lines, or update an open one. A closed document is refused
    (and the refusal recorded): it must be reopened first (S11). With `expected_version` the
    change applies only if the document (read under its lock) is still at that version, 0
    meaning "does not exist yet". Without `exchange_rate` a new document takes the book rate
    of its document date (`document_rate`)."""
    spec_for(doc_type)
    if actor is not None:
        require(actor, Perm.DOCUMENT_SYNC, org_unit=org_unit, doc_type=doc_type, what=number)
    document_checked(
        number=number,
        source_system=source_system,
        external_id=external_id,
        exchange_rate=exchange_rate,
        line_nos=[line.line_no for line in lines],
    )
    refused: Document | None = None
    company = company_of(org_unit)
    with transaction.atomic():
        existing = Document.objects.filter(
            company=company, doc_type=doc_type, number=number
        ).first()
        if existing is not None and actor is not None:
            _require_sync_existing(actor, existing)
        current = document_lock(existing.pk).version if existing is not None else 0
        if expected_version is not None and current != expected_version:
            raise StaleVersion(
                gettext_noop(
                    "%(doc_type)s %(number)s is at version %(current)s, not %(expected_version)s: "
                    "read it again and retry"
                ),
                details={"version": current},
                params={
                    "doc_type": doc_type,
                    "number": number,
                    "current": current,
                    "expected_version": expected_version,
                },
            )
        if existing is None:
            document = _document_create(
                actor,
                doc_type=doc_type,
                number=number,
                company=company,
                org_unit=org_unit,
                document_date=document_date,
                lines=lines,
                partner=partner,
                expected_date=expected_date,
                currency=currency,
                exchange_rate=document_rate(
                    company,
                    currency=currency,
                    day=document_date,
                    given=exchange_rate,
                    doc_type=doc_type,
                    number=number,
                ),
                source_system=source_system,
                external_id=external_id,
            )
            return document
        document = document_lock(existing.pk)
        if document.close_state not in (CloseState.OPEN, CloseState.ON_HOLD):
            refused = document
        else:
            _document_update(actor, document, lines, expected_date, partner)
            return document
    with transaction.atomic():
        audit_append(
            actor=actor,
            entries=[
                document_entry(
                    action=AuditAction.DOCUMENT_CHANGE_REFUSED,
                    document=refused,
                    data={"close_state": refused.close_state},
                    reason="change to a locked document refused",
                )
            ],
        )
    raise DocumentLocked(locked_message(refused), details={"number": number, "doc_type": doc_type})


def _require_sync_existing(actor: AbstractBaseUser, existing: Document) -> None:
    """An update must be allowed where the document is, not only where the caller says it is;
    the refusal names no unit (the caller may not know where the document lies)."""
    if user_has_perm(
        actor, Perm.DOCUMENT_SYNC, org_unit=existing.org_unit, doc_type=existing.doc_type
    ):
        return
    who = actor.get_username()
    raise PermissionDenied(
        gettext_noop("%(who)s lacks permission '%(perm)s' (%(label)s) for %(document)s"),
        details={"permission": Perm.DOCUMENT_SYNC.value, "user": who, "org_unit": None},
        params={
            "who": who,
            "perm": Perm.DOCUMENT_SYNC.value,
            "label": Perm.DOCUMENT_SYNC.label,
            "document": existing.in_words,
        },
    )


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


def _check_totals(total: Decimal, exchange_rate: Decimal) -> None:
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


@dataclass(frozen=True)
class NewDocument:
    """A document and its lines built in memory and checked, not yet saved."""

    document: Document
    lines: list[Line]

    def created_entry(self) -> AuditEntry:
        """The audit event of its creation (once saved)."""
        document = self.document
        return document_entry(
            action=AuditAction.DOCUMENT_CREATED,
            document=document,
            data={
                "lines": len(self.lines),
                "total_amount": document.total_amount,
                "currency": document.currency,
            },
        )


def document_new(
    *,
    doc_type: str,
    number: str,
    company: Company,
    org_unit: OrgUnit,
    document_date: date,
    lines: list[LineInput],
    partner: Partner | None,
    expected_date: date | None,
    currency: str,
    exchange_rate: Decimal,
    source_system: str,
    external_id: str,
) -> NewDocument:
    values = [_line_values(line, currency) for line in lines]
    total = sum((v["planned_amount"] for v in values), Decimal(0))
    _check_totals(total, exchange_rate)
    document = Document(
        doc_type=doc_type,
        number=number,
        company=company,
        org_unit=org_unit,
        partner=partner,
        document_date=document_date,
        expected_date=expected_date,
        currency=currency,
        exchange_rate=exchange_rate,
        total_amount=total,
        total_amount_company=round_amount(total * exchange_rate, company.base_currency),
        source_system=source_system,
        external_id=external_id,
    )
    return NewDocument(
        document,
        [
            Line(document=document, line_no=line.line_no, **value)
            for line, value in zip(lines, values, strict=True)
        ],
    )


def _document_create(actor: AbstractBaseUser | None, **fields: Any) -> Document:
    new = document_new(**fields)
    new.document.save()
    for line in new.lines:
        line.document = new.document
    Line.objects.bulk_create(new.lines)
    audit_append(actor=actor, entries=[new.created_entry()])
    return new.document


def line_unchanged(line: Line, values: dict[str, Any]) -> bool:
    """Whether the stored `line` already holds `values` (from `_line_values`)."""
    return all(getattr(line, f) == values[f] for f in _LINE_FIELDS)


def document_unchanged(
    *,
    document: Document,
    existing: dict[int, Line],
    lines: list[LineInput],
    expected_date: date | None,
    partner: Partner | None,
) -> bool:
    """Whether `_document_update` would change nothing: an identical re-send (every sent line
    stored with the same values, the same expected date and partner). Raises what the update
    raises for a bad line."""
    if expected_date != document.expected_date:
        return False
    if partner is not None and partner.pk != document.partner_id:
        return False
    for data in lines:
        line = existing.get(data.line_no)
        if line is None or not line_unchanged(line, _line_values(data, document.currency)):
            return False
    return True


def _document_update(
    actor: AbstractBaseUser | None,
    document: Document,
    lines: list[LineInput],
    expected_date: date | None,
    partner: Partner | None,
) -> None:
    """Apply an ERP re-send to a stored document: new lines, changed open lines (a closed line
    refuses the change), the expected date and the partner, then one audit event with what
    changed, and nothing at all when nothing did. Long because each field compares and records
    its own change."""
    existing = {line.line_no: line for line in document.lines.all()}
    changes: dict[str, Any] = {}
    for data in lines:
        values = _line_values(data, document.currency)
        line = existing.get(data.line_no)
        if line is None:
            Line.objects.create(document=document, line_no=data.line_no, **values)
            changes[f"line {data.line_no}"] = {"before": None, "after": values}
            continue
        if line_unchanged(line, values):
            continue
        before = {f: getattr(line, f) for f in _LINE_FIELDS}
        if line.close_state != CloseState.OPEN:
            raise DocumentLocked(
                gettext_noop(
                    "%(document)s line %(line_no)s is %(close_state)s: it must be reopened "
                    "(反结案) before it can change"
                ),
                details={"line_no": line.line_no},
                params={
                    "document": document.in_words,
                    "line_no": line.line_no,
                    "close_state": bilingual_label(CloseState(line.close_state).label),
                },
            )
        for f, v in values.items():
            setattr(line, f, v)
        line.save(update_fields=list(values))
        changes[f"line {data.line_no}"] = {"before": before, "after": values}
    if expected_date != document.expected_date:
        changes["expected_date"] = {"before": document.expected_date, "after": expected_date}
        document.expected_date = expected_date
    if partner is not None and partner.pk != document.partner_id:
        changes["partner"] = {"before": document.partner_id, "after": partner.pk}
        document.partner = partner
    if not changes:
        return
    total = sum((line.planned_amount for line in document.lines.all()), Decimal(0))
    _check_totals(total, document.exchange_rate)
    document.total_amount = total
    document.total_amount_company = round_amount(
        total * document.exchange_rate, document.company.base_currency
    )
    document.version += 1
    document.save()
    audit_append(
        actor=actor,
        entries=[
            document_entry(
                action=AuditAction.DOCUMENT_UPDATED,
                document=document,
                data=changes,
            )
        ],
    )


__all__ = [
    "AMOUNT_COLUMN",
    "COMPANY_TOTAL_COLUMN",
    "PRICE_COLUMN",
    "QTY_COLUMN",
    "RATE_COLUMN",
    "TOTAL_COLUMN",
    "LineInput",
    "NewDocument",
    "document_checked",
    "document_new",
    "document_upsert",
]
