"""Writes of documents and business events: upsert from an ERP, posting events (idempotent by
external id), applying them to line measures, and quarantining what arrives for closed lines;
the ERP synchronisation of partners and documents by codes."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.access.services import require, user_has_perm
from closeout.audit.models import AuditAction, AuditObject
from closeout.audit.services import AuditEntry, audit_append, audit_record
from closeout.core.companies import company_of
from closeout.core.errors import (
    Bilingual,
    CompanyAmbiguous,
    Conflict,
    DocumentLocked,
    EventConflict,
    EventRefused,
    InvalidInput,
    NotFound,
    PermissionDenied,
    StaleVersion,
    bilingual_label,
)
from closeout.core.inputs import Column, check_fits, check_length, max_length_of
from closeout.core.models import Company, Item, OrgUnit, Partner, PartnerKind
from closeout.core.money import plain, round_amount, to_decimal
from closeout.core.services import item_get_or_create
from closeout.documents.hooks import event_hooks
from closeout.documents.models import (
    BusinessEvent,
    CloseState,
    DocType,
    Document,
    EventKind,
    EventStatus,
    Line,
)
from closeout.documents.types import SIGNED_MEASURES, DocTypeSpec, Op, spec_for


def document_get(doc_type: str, number: str, company: str = "") -> Document:
    """The document of `doc_type` numbered `number`; numbers are unique per company, so with
    no `company` code a number held by several companies is refused as ambiguous."""
    return _document_pick(_documents_numbered(doc_type, number, company), doc_type, number)


def _documents_numbered(doc_type: str, number: str, company: str) -> list[Document]:
    spec_for(doc_type)  # a clear error for an unknown type
    qs = Document.objects.select_related("org_unit", "partner", "company__unit").filter(
        doc_type=doc_type, number=number
    )
    if company:
        qs = qs.filter(company__unit__code=company)
    return list(qs.order_by("company_id")[:50])


def _document_pick(found: list[Document], doc_type: str, number: str) -> Document:
    if not found:
        raise document_missing(doc_type, number)
    if len(found) > 1:
        codes = [d.company.code for d in found]
        raise CompanyAmbiguous(
            gettext_noop(
                "%(doc_type)s %(number)s exists in several companies (%(companies)s): "
                "name the company (company=CODE)"
            ),
            params={
                "doc_type": _type_words(doc_type),
                "number": number,
                "companies": ", ".join(codes),
            },
            details={"doc_type": doc_type, "number": number, "companies": codes},
        )
    return found[0]


def documents_numbered_many(
    keys: Iterable[tuple[str, str]],
) -> dict[tuple[str, str], list[Document]]:
    """Every document of each (doc_type, number) pair, in all companies, in one query per type
    and chunk; the caller picks the company (`document_pick_from`). A missing pair is absent."""
    wanted = set(keys)
    found: dict[tuple[str, str], list[Document]] = {}
    for doc_type in {t for t, _ in wanted}:
        numbers = sorted(n for t, n in wanted if t == doc_type)
        for start in range(0, len(numbers), IN_CHUNK):
            for document in (
                Document.objects.select_related("org_unit", "partner", "company__unit")
                .filter(doc_type=doc_type, number__in=numbers[start : start + IN_CHUNK])
                .order_by("company_id")
            ):
                found.setdefault((document.doc_type, document.number), []).append(document)
    return found


def document_pick_from(
    candidates: list[Document], doc_type: str, number: str, company: str = ""
) -> Document:
    """As `document_get` among documents already read: the one of `company`, or the only one;
    missing or ambiguous otherwise. Give only the candidates the caller may see, so that an
    ambiguity never names a company the caller may not see."""
    if company:
        candidates = [d for d in candidates if d.company.code == company]
    return _document_pick(candidates, doc_type, number)


def documents_lock_many(document_ids: Iterable[int]) -> dict[int, Document]:
    """`document_lock` for many documents: locked in id order (the lock order of every writer,
    so two writers never wait on each other in a circle), re-read under the lock."""
    ids = sorted(set(document_ids))
    return {
        document.pk: document
        for document in Document.objects.select_for_update(of=("self",), no_key=True)
        .select_related("org_unit")
        .filter(pk__in=ids)
        .order_by("pk")
    }


# Values per `IN (...)` list: below SQLite's limit of bound parameters.
IN_CHUNK = 900


def document_missing(doc_type: str, number: str) -> NotFound:
    """The answer for a number that does not exist, and word for word the answer for one the
    caller may not see: nobody learns that another unit's document exists."""
    return NotFound(
        gettext_noop("no %(doc_type)s numbered '%(number)s'"),
        params={"doc_type": _type_words(doc_type), "number": number},
        details={"doc_type": doc_type, "number": number},
    )


def _type_words(doc_type: str) -> Bilingual:
    """A document type in a message: its code in English (as the API always said), its name
    in Chinese."""
    if doc_type not in DocType.values:
        return Bilingual(doc_type, doc_type)
    return Bilingual(doc_type, bilingual_label(DocType(doc_type).label).zh)


def document_require_visible(
    actor: AbstractBaseUser, document: Document, perm: str = Perm.DOCUMENT_VIEW
) -> None:
    """NotFound, exactly as for a missing number, unless `actor` holds `perm` (by default:
    may view documents) over the document's unit and type."""
    if not user_has_perm(actor, perm, org_unit=document.org_unit, doc_type=document.doc_type):
        raise document_missing(document.doc_type, document.number)


def document_get_visible(
    actor: AbstractBaseUser,
    doc_type: str,
    number: str,
    perm: str = Perm.DOCUMENT_VIEW,
    company: str = "",
) -> Document:
    """`document_get` for a caller: a document outside the caller's scope does not exist, and
    only the companies whose document the caller may see make a number ambiguous."""
    found = [
        document
        for document in _documents_numbered(doc_type, number, company)
        if user_has_perm(actor, perm, org_unit=document.org_unit, doc_type=document.doc_type)
    ]
    return _document_pick(found, doc_type, number)


def document_lock(document_id: int) -> Document:
    """Re-read the document under a row lock: every state check works on this fresh copy.
    Only the document row is locked (`FOR UPDATE OF`), never its organisation unit, so writes
    to different documents of one unit do not wait on each other."""
    return (
        Document.objects.select_for_update(of=("self",), no_key=True)
        .select_related("org_unit")
        .get(pk=document_id)
    )


def locked_message(document: Document) -> str:
    if document.close_state == CloseState.ARCHIVED:
        return (
            f"{document.label} is archived (最终结案, final): it is read-only for ever and "
            "can never be changed or reopened"
        )
    return (
        f"{document.label} is {document.close_state}: it is locked against changes and "
        "must be reopened (反结案) first"
    )


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


def _column(model: type[Document] | type[Line] | type[BusinessEvent], name: str) -> Column:
    return Column.of(model._meta.get_field(name))  # type: ignore[arg-type]


# The sizes of the numeric columns numbers are checked against before they are written.
QTY_COLUMN = _column(Line, "planned_qty")
PRICE_COLUMN = _column(Line, "unit_price")
AMOUNT_COLUMN = _column(Line, "planned_amount")
RATE_COLUMN = _column(Document, "exchange_rate")
TOTAL_COLUMN = _column(Document, "total_amount")
COMPANY_TOTAL_COLUMN = _column(Document, "total_amount_company")


def _line_values(data: LineInput, currency: str) -> dict[str, Any]:
    if data.line_no <= 0:
        raise InvalidInput(
            f"line {data.line_no}: line numbers start at 1", details={"field": "line_no"}
        )
    if data.planned_qty < 0 or data.unit_price < 0:
        raise InvalidInput(
            f"line {data.line_no}: planned quantity and unit price must not be negative",
            details={"field": "planned_qty", "line_no": data.line_no},
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
    exchange_rate: Decimal,
    line_nos: list[int],
) -> None:
    """The checks of a document's own values before anything is looked up or written."""
    if not number.strip():
        raise InvalidInput("document number is empty", details={"field": "number"})
    for name, value in (
        ("number", number),
        ("source_system", source_system),
        ("external_id", external_id),
    ):
        check_length(value, field=name, max_length=max_length_of(Document, name))
    check_fits(exchange_rate, RATE_COLUMN, field="exchange_rate")
    seen: set[int] = set()
    for line_no in line_nos:
        if line_no in seen:
            raise InvalidInput(
                f"{number}: line {line_no} appears twice", details={"field": "lines"}
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
    exchange_rate: Decimal = Decimal(1),
    source_system: str = "closeout",
    external_id: str = "",
    expected_version: int | None = None,
) -> Document:
    """Create a document with its lines, or update an open one. A closed document is refused
    (and the refusal recorded): it must be reopened first (S11). With `expected_version` the
    change applies only if the document (read under its lock) is still at that version, 0
    meaning "does not exist yet"."""
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
                f"{doc_type} {number} is at version {current}, not {expected_version}: "
                "read it again and retry",
                details={"version": current},
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
                exchange_rate=exchange_rate,
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
        audit_record(
            actor=actor,
            action=AuditAction.DOCUMENT_CHANGE_REFUSED,
            object_type=AuditObject.DOCUMENT,
            object_id=refused.pk,
            object_repr=refused.label,
            data={"close_state": refused.close_state},
            reason="change to a locked document refused",
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
        f"{who} lacks permission '{Perm.DOCUMENT_SYNC.value}' ({Perm.DOCUMENT_SYNC.label}) "
        f"for {existing.label}",
        details={"permission": Perm.DOCUMENT_SYNC.value, "user": who, "org_unit": None},
    )


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
        return AuditEntry(
            action=AuditAction.DOCUMENT_CREATED,
            object_type=AuditObject.DOCUMENT,
            object_id=document.pk,
            object_repr=document.label,
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
                f"{document.label} line {line.line_no} is {line.close_state}: "
                "it must be reopened (反结案) before it can change",
                details={"line_no": line.line_no},
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
    audit_record(
        actor=actor,
        action=AuditAction.DOCUMENT_UPDATED,
        object_type=AuditObject.DOCUMENT,
        object_id=document.pk,
        object_repr=document.label,
        data=changes,
    )


# --- business events -----------------------------------------------------------------------


class PostOutcome(StrEnum):
    APPLIED = "applied"
    PENDING = "pending"
    DUPLICATE = "duplicate"
    QUARANTINED = "quarantined"


@dataclass(frozen=True)
class EventResult:
    event: BusinessEvent
    outcome: PostOutcome


def event_quarantine_reason(document: Document, line: Line | None, kind: str = "") -> str:
    if document.close_state == CloseState.ARCHIVED:
        # Kept as evidence but never applied: an archived document never reopens.
        return "document is archived (final): this event can never be released"
    if document.close_state not in (CloseState.OPEN, CloseState.CLOSE_PENDING):
        return f"document is {document.close_state}"
    if line is not None and line.close_state not in (CloseState.OPEN, CloseState.CLOSE_PENDING):
        return f"line {line.line_no} is {line.close_state}"
    if line is not None and kind:
        # An event of a closed dimension (a receipt on a line closed for receiving) waits;
        # the others apply (closing answers, documents.hooks).
        return event_hooks().quarantine_reason(document.doc_type, line, kind)
    return ""


def _apply(event: BusinessEvent, document: Document, line: Line | None) -> dict[str, Any]:
    """Move the measures; returns before/after for the audit event. Refused (EventRefused,
    nothing written) when the event would drive a measure below zero."""
    changes = event_effect(event, document, line)
    if line is not None and event.kind != EventKind.ACCEPTANCE:
        line.save(update_fields=list(changes))
    return changes


def event_effect(event: BusinessEvent, document: Document, line: Line | None) -> dict[str, Any]:
    """The event's effect on the line's measures (or the document's acceptance), set on the
    objects in memory only, saved by the caller; before/after for the audit event. Refused
    (EventRefused, nothing changed) when it would drive a measure below zero."""
    spec = spec_for(document.doc_type)
    if event.kind == EventKind.ACCEPTANCE:
        before = document.accepted_on
        document.accepted_on = timezone.localdate(event.occurred_at)
        return {"accepted_on": {"before": before, "after": document.accepted_on}}
    assert line is not None  # noqa: S101 (validated when the event was posted)
    effects = spec.effects[EventKind(event.kind)]
    changes: dict[str, Any] = {}
    for effect in effects:
        value: Decimal = getattr(event, effect.source)
        before = getattr(line, effect.field)
        current = before or Decimal(0)
        if effect.op is Op.SET:
            after = value
        elif effect.op is Op.ADD:
            after = current + value
        elif effect.op is Op.SUBTRACT:
            after = current - value
        else:
            after = max(current - value, Decimal(0))
        # Many events add up: the line's measure must still fit its column.
        check_fits(
            after,
            _column(Line, effect.field),
            field=effect.source,
            what=f"line {line.line_no} {effect.field} {current:f} → {after:f}",
            rounded=True,
        )
        changes[effect.field] = {"before": before, "after": after}
    _refuse_below_zero(spec, document, line, event, changes)
    for name, change in changes.items():
        setattr(line, name, change["after"])
    return changes


def _refuse_below_zero(
    spec: DocTypeSpec,
    document: Document,
    line: Line,
    event: BusinessEvent,
    changes: dict[str, Any],
) -> None:
    """One guard for every type and event kind: after an event's effect, no measure that counts
    or sums something (all but the signed stock adjustment) may have moved below zero. A return
    beyond what was received, a credit note beyond what was invoiced are refused here."""
    sources = {e.field: e.source for e in spec.effects[EventKind(event.kind)]}
    failing = {
        name: change
        for name, change in changes.items()
        if name not in SIGNED_MEASURES
        and change["after"] < 0
        and change["after"] < (change["before"] or Decimal(0))
    }
    if not failing:
        return
    kind = str(event.kind).replace("_", " ")
    parts = [
        f"{sources[name]} {plain(getattr(event, sources[name]))} is more than "
        f"{spec.measure_label(name)} {plain(change['before'] or Decimal(0))} "
        f"(it would become {plain(change['after'])})"
        for name, change in failing.items()
    ]
    raise EventRefused(
        f"{document.label} line {line.line_no}: {kind} {event.external_id} of "
        + ", and of ".join(parts)
        + "; refused: a line's measures cannot go below zero (post what it depends on first, "
        "or correct the event)",
        details={
            "document": document.label,
            "line_no": line.line_no,
            "event": event.external_id,
            "kind": event.kind,
            "field": sources[next(iter(failing))],
            "measures": {
                name: {
                    "label": spec.measure_label(name),
                    "before": plain(change["before"] or Decimal(0)),
                    sources[name]: plain(getattr(event, sources[name])),
                    "after": plain(change["after"]),
                }
                for name, change in failing.items()
            },
        },
    )


def event_audit_entry(
    action: AuditAction,
    event: BusinessEvent,
    document: Document,
    data: dict[str, Any],
    reason: str = "",
) -> AuditEntry:
    return AuditEntry(
        action=action,
        object_type=AuditObject.DOCUMENT,
        object_id=document.pk,
        object_repr=document.label,
        data={
            "event": event.external_id,
            "kind": event.kind,
            "line": getattr(event.line, "line_no", None),
            "quantity": event.quantity,
            "amount": event.amount,
            **data,
        },
        reason=reason,
    )


@dataclass(frozen=True)
class SentEvent:
    """What a caller sent for an event, to compare with the event stored under its id."""

    document: Document
    kind: str
    line_no: int | None
    quantity: Decimal
    amount: Decimal
    occurred_at: datetime | None  # None: not sent (it defaults to now), so not compared


def event_checked(
    *,
    document: Document,
    kind: str,
    external_id: str,
    line_no: int | None,
    quantity: object,
    amount: object,
    occurred_at: datetime | None,
    source_system: str,
) -> SentEvent:
    """The checks of an event's own values (InvalidInput naming the field), before anything is
    looked up or written; what was sent, to compare with an event stored under its id."""
    spec = spec_for(document.doc_type)
    if not external_id.strip():
        raise InvalidInput("event external id is empty", details={"field": "external_id"})
    for name, value in (("external_id", external_id), ("source_system", source_system)):
        check_length(value, field=name, max_length=max_length_of(BusinessEvent, name))
    if kind not in EventKind.values:
        raise InvalidInput(f"unknown event kind '{kind}'", details={"field": "kind"})
    allowed = set(spec.effects) | set(spec.header_events)
    if EventKind(kind) not in allowed:
        raise InvalidInput(
            f"a {document.doc_type} takes no '{kind}' events; allowed: "
            + ", ".join(sorted(str(k) for k in allowed)),
            details={"field": "kind"},
        )
    qty = to_decimal(quantity, field="quantity", column=_column(BusinessEvent, "quantity"))
    amt = to_decimal(amount, field="amount", column=_column(BusinessEvent, "amount"))
    # A stock adjustment is signed by nature: a count below book needs a negative one.
    qty_must_be_positive = kind != EventKind.STOCK_ADJUSTMENT
    if (qty < 0 and qty_must_be_positive) or amt < 0:
        raise InvalidInput(
            f"event {external_id}: quantity and amount must not be negative "
            "(post a return or credit note instead)",
            details={"field": "quantity" if qty < 0 else "amount"},
        )
    return SentEvent(
        document=document,
        kind=kind,
        line_no=None if EventKind(kind) in spec.header_events else line_no,
        quantity=qty,
        amount=amt,
        occurred_at=occurred_at,
    )


def event_line(document: Document, kind: str, line_no: int | None, line: Line | None) -> None:
    """Refuse a line event without a line number, or for a line the document lacks (`line` is
    what the caller found for `line_no`)."""
    if EventKind(kind) in spec_for(document.doc_type).header_events:
        return
    if line_no is None:
        raise InvalidInput(
            f"{document.label}: a {kind} needs a line number", details={"field": "line_no"}
        )
    if line is None:
        raise NotFound(f"{document.label} has no line {line_no}", details={"field": "line_no"})


def event_post(
    *,
    actor: AbstractBaseUser | None,
    document: Document,
    kind: str,
    external_id: str,
    line_no: int | None = None,
    quantity: object = "0",
    amount: object = "0",
    occurred_at: datetime | None = None,
    source_system: str = "closeout",
    pending: bool = False,
    note: str = "",
) -> EventResult:
    """Post one business event. Posting the same external id again changes nothing (duplicate).
    An event for a closed or held line is stored as quarantined: never applied, never dropped."""
    spec = spec_for(document.doc_type)
    if actor is not None:
        require(
            actor,
            Perm.DOCUMENT_SYNC,
            org_unit=document.org_unit,
            doc_type=document.doc_type,
            what=document.label,
        )
    sent = event_checked(
        document=document,
        kind=kind,
        external_id=external_id,
        line_no=line_no,
        quantity=quantity,
        amount=amount,
        occurred_at=occurred_at,
        source_system=source_system,
    )
    qty, amt = sent.quantity, sent.amount
    duplicate = _duplicate(source_system, external_id, sent)
    if duplicate is not None:
        return duplicate
    try:
        with transaction.atomic():
            return _event_post_locked(
                actor,
                document.pk,
                spec.header_events,
                kind,
                external_id,
                line_no,
                qty,
                amt,
                occurred_at or timezone.now(),
                source_system,
                pending,
                note,
            )
    except IntegrityError:
        # Another caller posted the same external id at the same moment.
        duplicate = _duplicate(source_system, external_id, sent)
        if duplicate is None:
            raise
        return duplicate


def _differences(existing: BusinessEvent, sent: SentEvent) -> dict[str, dict[str, Any]]:
    stored_line = existing.line.line_no if existing.line is not None else None
    pairs: list[tuple[str, Any, Any]] = [
        ("document", existing.document.label, sent.document.label),
        ("kind", existing.kind, sent.kind),
        ("line_no", stored_line, sent.line_no),
        ("quantity", existing.quantity, sent.quantity),
        ("amount", existing.amount, sent.amount),
    ]
    if sent.occurred_at is not None:
        # Compared by business date: a resend may carry the time with another precision.
        pairs.append(
            (
                "occurred_at",
                timezone.localdate(existing.occurred_at).isoformat(),
                timezone.localdate(sent.occurred_at).isoformat(),
            )
        )
    return {
        name: {
            "stored": plain(stored) if isinstance(stored, Decimal) else stored,
            "sent": plain(value) if isinstance(value, Decimal) else value,
        }
        for name, stored, value in pairs
        if stored != value
    }


def _duplicate(source_system: str, external_id: str, sent: SentEvent) -> EventResult | None:
    """The stored event when this is an identical repeat (a duplicate, changes nothing); an
    EventConflict naming the fields that differ when the same external id comes with other
    values; None for a new external id."""
    existing = (
        BusinessEvent.objects.select_related("document", "line")
        .filter(source_system=source_system, external_id=external_id)
        .first()
    )
    if existing is None:
        return None
    return event_repeated(existing, sent)


def event_repeated(existing: BusinessEvent, sent: SentEvent) -> EventResult:
    """`existing` was stored under the external id sent again: a duplicate when the values are
    the same, else EventConflict naming the fields that differ."""
    source_system, external_id = existing.source_system, existing.external_id
    differ = _differences(existing, sent)
    if not differ:
        return EventResult(existing, PostOutcome.DUPLICATE)
    where = "another document" if "document" in differ else existing.document.label
    listed = ", ".join(f"{name} {d['stored']} (sent {d['sent']})" for name, d in differ.items())
    raise EventConflict(
        f"external id '{external_id}' from {source_system} was already used for a "
        f"{existing.kind} on {where} with other values: {listed}; an external id names one "
        "event: send the same values to repeat it, or a new external id for a new event",
        details={"external_id": external_id, "source_system": source_system, "fields": differ},
    )


def _event_post_locked(
    actor: AbstractBaseUser | None,
    document_id: int,
    header_events: frozenset[EventKind],
    kind: str,
    external_id: str,
    line_no: int | None,
    qty: Decimal,
    amt: Decimal,
    occurred_at: datetime,
    source_system: str,
    pending: bool,
    note: str,
) -> EventResult:
    document = document_lock(document_id)
    line: Line | None = None
    if EventKind(kind) not in header_events and line_no is not None:
        line = (
            Line.objects.select_for_update(no_key=True)
            .filter(document=document, line_no=line_no)
            .first()
        )
    event_line(document, kind, line_no, line)
    event = BusinessEvent(
        document=document,
        line=line,
        kind=kind,
        source_system=source_system,
        external_id=external_id,
        quantity=qty,
        amount=amt,
        occurred_at=occurred_at,
        posted_by_id=actor.pk if actor is not None else None,
        note=note,
    )
    if line is not None:
        event_hooks().reopen_for_event(
            actor=actor, document=document, line=line, kind=kind, external_id=external_id
        )
    reason = event_quarantine_reason(document, line, kind)
    if reason:
        event.status, event.quarantine_reason = EventStatus.QUARANTINED, reason
        event.save()
        audit_append(
            actor=actor,
            entries=[event_audit_entry(AuditAction.EVENT_QUARANTINED, event, document, {}, reason)],
        )
        return EventResult(event, PostOutcome.QUARANTINED)
    if pending:
        event.status = EventStatus.PENDING
        event.save()
        audit_append(
            actor=actor, entries=[event_audit_entry(AuditAction.EVENT_PENDING, event, document, {})]
        )
        return EventResult(event, PostOutcome.PENDING)
    event.status, event.applied_at = EventStatus.APPLIED, timezone.now()
    event.save()
    changes = _apply(event, document, line)
    _touch(document, occurred_at)
    audit_append(
        actor=actor,
        entries=[event_audit_entry(AuditAction.EVENT_APPLIED, event, document, changes)],
    )
    return EventResult(event, PostOutcome.APPLIED)


# What an applied event changes on its document (besides the line's measures).
TOUCHED_FIELDS = ["last_activity_at", "version", "accepted_on"]


def document_touched(document: Document, at: datetime) -> None:
    """In memory: the document saw business at `at` (a new version); saved by the caller."""
    document.last_activity_at = max(filter(None, [document.last_activity_at, at]))
    document.version += 1


def _touch(document: Document, at: datetime) -> None:
    document_touched(document, at)
    document.save(update_fields=TOUCHED_FIELDS)


@transaction.atomic
def event_confirm(*, actor: AbstractBaseUser | None, event_id: int) -> EventResult:
    """Apply a pending event (e.g. a receipt after inspection, a cost after review)."""
    event = BusinessEvent.objects.get(pk=event_id)
    document = document_lock(event.document_id)
    if actor is not None:
        require(
            actor,
            Perm.DOCUMENT_SYNC,
            org_unit=document.org_unit,
            doc_type=document.doc_type,
            what=document.label,
        )
    event = BusinessEvent.objects.select_for_update(no_key=True).get(pk=event_id)
    if event.status != EventStatus.PENDING:
        raise InvalidInput(f"event {event.external_id} is {event.status}, not pending")
    line = (
        Line.objects.select_for_update(no_key=True).get(pk=event.line_id) if event.line_id else None
    )
    reason = event_quarantine_reason(document, line, event.kind)
    if reason:
        event.status, event.quarantine_reason = EventStatus.QUARANTINED, reason
        event.save(update_fields=["status", "quarantine_reason"])
        audit_append(
            actor=actor,
            entries=[event_audit_entry(AuditAction.EVENT_QUARANTINED, event, document, {}, reason)],
        )
        return EventResult(event, PostOutcome.QUARANTINED)
    changes = _apply(event, document, line)
    event.status, event.applied_at = EventStatus.APPLIED, timezone.now()
    event.save(update_fields=["status", "applied_at"])
    _touch(document, event.occurred_at)
    audit_append(
        actor=actor,
        entries=[event_audit_entry(AuditAction.EVENT_CONFIRMED, event, document, changes)],
    )
    return EventResult(event, PostOutcome.APPLIED)


def events_apply_quarantined(
    *, actor: AbstractBaseUser | None, document: Document
) -> list[EventResult]:
    """After a reopen or release, apply the document's quarantined events in the order they
    arrived; an event whose line is still closed or held stays quarantined with the reason.
    The caller holds the document lock and its transaction."""
    results: list[EventResult] = []
    entries: list[AuditEntry] = []
    for event in (
        BusinessEvent.objects.select_for_update(no_key=True)
        .filter(document=document, status=EventStatus.QUARANTINED)
        .order_by("id")
    ):
        line = Line.objects.get(pk=event.line_id) if event.line_id else None
        reason = event_quarantine_reason(document, line, event.kind)
        if reason:
            if reason != event.quarantine_reason:
                event.quarantine_reason = reason
                event.save(update_fields=["quarantine_reason"])
            results.append(EventResult(event, PostOutcome.QUARANTINED))
            continue
        try:
            changes = _apply(event, document, line)
        except EventRefused as refused:
            # Stored before its line was locked; now it would drive a measure below zero:
            # it stays quarantined, with the reason, until the data is corrected.
            if refused.message != event.quarantine_reason:
                event.quarantine_reason = refused.message
                event.save(update_fields=["quarantine_reason"])
            results.append(EventResult(event, PostOutcome.QUARANTINED))
            continue
        event.status, event.applied_at, event.quarantine_reason = (
            EventStatus.APPLIED,
            timezone.now(),
            "",
        )
        event.save(update_fields=["status", "applied_at", "quarantine_reason"])
        _touch(document, event.occurred_at)
        entries.append(
            event_audit_entry(AuditAction.EVENT_RELEASED_FROM_QUARANTINE, event, document, changes)
        )
        results.append(EventResult(event, PostOutcome.APPLIED))
    audit_append(actor=actor, entries=entries)
    return results


# --- ERP synchronisation -----------------------------------------------------------------------


def partner_sync(
    *, actor: AbstractBaseUser, code: str, name: str, kind: str, active: bool = True
) -> tuple[Partner, bool]:
    """Create or update a supplier/customer from the ERP (by code); a creation or a change is
    audited with the values before and after, an identical resend changes nothing."""
    require(actor, Perm.DOCUMENT_SYNC, what=f"partner {code}")
    if kind not in PartnerKind.values:
        raise InvalidInput(
            f"unknown partner kind '{kind}'; use one of: {', '.join(PartnerKind.values)}",
            details={"field": "kind"},
        )
    if not code.strip() or not name.strip():
        raise InvalidInput("partner code and name must not be empty", details={"field": "name"})
    for field, value in (("code", code), ("name", name)):
        check_length(value, field=field, max_length=max_length_of(Partner, field))
    with transaction.atomic():
        partner, created = Partner.objects.select_for_update(no_key=True).get_or_create(
            code=code, defaults={"name": name, "kind": kind, "active": active}
        )
        before = {"name": partner.name, "kind": partner.kind, "active": partner.active}
        after = {"name": name, "kind": kind, "active": active}
        if created:
            audit_record(
                actor=actor,
                action=AuditAction.PARTNER_CREATED,
                object_type=AuditObject.PARTNER,
                object_id=partner.pk,
                object_repr=f"partner {code}",
                data=after,
            )
        elif before != after:
            partner.name, partner.kind, partner.active = name, kind, active
            partner.save(update_fields=["name", "kind", "active"])
            audit_record(
                actor=actor,
                action=AuditAction.PARTNER_UPDATED,
                object_type=AuditObject.PARTNER,
                object_id=partner.pk,
                object_repr=f"partner {code}",
                data={
                    field: {"before": before[field], "after": after[field]}
                    for field in after
                    if before[field] != after[field]
                },
            )
    return partner, created


@dataclass(frozen=True)
class LineData:
    line_no: int
    planned_qty: Decimal
    unit_price: Decimal
    item: str = ""
    item_name: str = ""
    description: str = ""
    unit: str = "EA"
    planned_amount: Decimal | None = None


def unknown_org_unit(code: str) -> InvalidInput:
    return InvalidInput(
        gettext_noop("unknown organisation unit '%(code)s'"),
        params={"code": code},
        details={"field": "org_unit"},
    )


def unknown_partner(code: str) -> InvalidInput:
    return InvalidInput(
        gettext_noop("unknown partner '%(code)s': push it first (PUT /api/partners/%(code)s)"),
        params={"code": code},
        details={"field": "partner"},
    )


def external_id_taken(actor: AbstractBaseUser, clash: Document) -> Conflict:
    """The refusal of a document whose source system and external id `clash` already holds;
    the other document is named only to a caller who may see it."""
    shown = (
        clash.label
        if user_has_perm(
            actor, Perm.DOCUMENT_VIEW, org_unit=clash.org_unit, doc_type=clash.doc_type
        )
        else "another document"
    )
    return Conflict(
        f"external id '{clash.external_id}' from {clash.source_system} already belongs to {shown}",
        details={"field": "external_id", "document": shown},
    )


def document_sync(
    *,
    actor: AbstractBaseUser,
    doc_type: str,
    number: str,
    org_unit: str,
    document_date: date,
    lines: list[LineData],
    partner: str = "",
    expected_date: date | None = None,
    currency: str = "CNY",
    exchange_rate: Decimal = Decimal(1),
    source_system: str = "closeout",
    external_id: str = "",
    if_match: int | None = None,
) -> tuple[Document, bool]:
    """Upsert a document pushed by an ERP, by codes: resolves the organisation unit, partner
    and items, then calls `document_upsert` (which checks permission and the lock). Returns
    (document, created)."""
    spec_for(doc_type)
    unit = OrgUnit.objects.filter(code=org_unit).first()
    if unit is None:
        raise unknown_org_unit(org_unit)
    require(actor, Perm.DOCUMENT_SYNC, org_unit=unit, doc_type=doc_type, what=number)
    partner_obj: Partner | None = None
    if partner:
        partner_obj = Partner.objects.filter(code=partner).first()
        if partner_obj is None:
            raise unknown_partner(partner)
    company = company_of(unit)
    existing = Document.objects.filter(company=company, doc_type=doc_type, number=number).exists()
    if external_id:
        clash = (
            Document.objects.filter(source_system=source_system, external_id=external_id)
            .exclude(company=company, doc_type=doc_type, number=number)
            .first()
        )
        if clash is not None:
            raise external_id_taken(actor, clash)
    inputs = [
        LineInput(
            line_no=line.line_no,
            planned_qty=line.planned_qty,
            unit_price=line.unit_price,
            item=item_get_or_create(
                code=line.item, name=line.item_name or line.item, unit=line.unit
            )
            if line.item
            else None,
            description=line.description,
            unit=line.unit,
            planned_amount=line.planned_amount,
        )
        for line in lines
    ]
    try:
        document = document_upsert(
            actor=actor,
            doc_type=doc_type,
            number=number,
            org_unit=unit,
            document_date=document_date,
            lines=inputs,
            partner=partner_obj,
            expected_date=expected_date,
            currency=currency,
            exchange_rate=exchange_rate,
            source_system=source_system,
            external_id=external_id,
            expected_version=if_match,
        )
    except IntegrityError as exc:
        # Another request created the same document at the same moment.
        raise Conflict(
            f"{doc_type} {number} was written by another request at the same time; retry",
            details={"number": number},
        ) from exc
    return document, not existing
