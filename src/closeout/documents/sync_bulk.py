"""Many documents pushed by an ERP in one request. New documents are created set-based (their
organisation units, partners, items and external ids looked up once per request, the documents
and lines inserted together, one audit event each); a document that exists already, or that
appears twice in the request, goes through `services.document_sync`, which checks its lock and
version. Every item is answered in request order; a refused item changes nothing."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Q

from closeout.access.permissions import Perm
from closeout.access.services import require, user_has_perm
from closeout.audit.services import audit_append
from closeout.core.companies import company_of
from closeout.core.errors import DomainError
from closeout.core.models import Company, Item, OrgUnit, Partner
from closeout.core.rows import rows_insert
from closeout.core.services import items_get_or_create, unknown_org_unit
from closeout.documents.models import CloseState, Document, Line
from closeout.documents.services import (
    IN_CHUNK,
    LineData,
    LineInput,
    NewDocument,
    document_checked,
    document_new,
    document_rate,
    document_sync,
    document_unchanged,
    documents_lock_many,
    documents_numbered_many,
    external_id_taken,
    unknown_partner,
)
from closeout.documents.types import spec_for


@dataclass(frozen=True)
class DocumentItem:
    doc_type: str
    number: str
    org_unit: str
    document_date: date
    lines: list[LineData]
    partner: str = ""
    expected_date: date | None = None
    currency: str = "CNY"
    # None: the book rate of the document date (documents.services.document_rate).
    exchange_rate: Decimal | None = None
    source_system: str = "closeout"
    external_id: str = ""


@dataclass(frozen=True)
class DocumentResult:
    index: int
    document: Document | None = None
    created: bool = False
    error: DomainError | None = None


@dataclass
class _Known:
    """Master data of the request's new documents, each looked up once."""

    units: dict[str, OrgUnit] = field(default_factory=dict)
    partners: dict[str, Partner] = field(default_factory=dict)
    items: dict[str, Item] = field(default_factory=dict)
    taken: dict[tuple[str, str], Document] = field(default_factory=dict)
    allowed: dict[tuple[int, str], bool] = field(default_factory=dict)
    rates: dict[tuple[int, str, date], Decimal] = field(default_factory=dict)
    companies: dict[int, Company] = field(default_factory=dict)

    def company_of(self, unit: OrgUnit) -> Company:
        """The unit's company, looked up once per unit and request."""
        if unit.pk not in self.companies:
            self.companies[unit.pk] = company_of(unit)
        return self.companies[unit.pk]


def documents_sync_many(
    *, actor: AbstractBaseUser, items: Sequence[DocumentItem]
) -> list[DocumentResult]:
    """Create or update `items` (at most MAX_BULK_ITEMS) in one transaction."""
    numbered = documents_numbered_many((item.doc_type, item.number) for item in items)
    companies = _companies_of_units({item.org_unit for item in items})
    first_new: dict[tuple[int, str, str], int] = {}
    existing: dict[tuple[int, str, str], list[tuple[int, Document]]] = {}
    for index, item in enumerate(items):
        company_id = companies.get(item.org_unit)
        if company_id is None:
            continue  # an unknown unit: refused one by one, with its reason
        key = (company_id, item.doc_type, item.number)
        stored = [
            d for d in numbered.get((item.doc_type, item.number), []) if d.company_id == company_id
        ]
        if stored:
            existing.setdefault(key, []).append((index, stored[0]))
        else:
            # Numbers are unique per company: new in the unit's company.
            first_new.setdefault(key, index)
    new_indexes = sorted(first_new.values())
    # A document sent once in the request and stored already: checked together for an
    # identical re-send; any other goes one by one.
    resent = dict(sent[0] for sent in existing.values() if len(sent) == 1)
    answers: dict[int, DocumentResult] = {}
    with transaction.atomic():
        answers.update(_create_new(actor, items, new_indexes))
        answers.update(_unchanged(actor, items, resent))
        for index, item in enumerate(items):
            if index not in answers:
                answers[index] = _sync_one(actor, index, item)
    return [answers[i] for i in range(len(items))]


def _sync_one(actor: AbstractBaseUser, index: int, item: DocumentItem) -> DocumentResult:
    try:
        document, created = document_sync(
            actor=actor,
            doc_type=item.doc_type,
            number=item.number,
            org_unit=item.org_unit,
            document_date=item.document_date,
            lines=item.lines,
            partner=item.partner,
            expected_date=item.expected_date,
            currency=item.currency,
            exchange_rate=item.exchange_rate,
            source_system=item.source_system,
            external_id=item.external_id,
        )
    except DomainError as exc:
        return DocumentResult(index, error=exc)
    return DocumentResult(index, document=document, created=created)


def _unchanged(
    actor: AbstractBaseUser, items: Sequence[DocumentItem], resent: dict[int, Document]
) -> dict[int, DocumentResult]:
    """The stored documents sent again without a change, answered `updated` at their version
    with nothing written (as `document_sync` answers them): locked in id order, their lines,
    partners and items read once for the request, permission asked once per unit and type.
    A document that changed, is closed, or fails any check is left out: it goes one by one,
    which changes it or refuses it with its reason (and records a refusal)."""
    if not resent:
        return {}
    locked = documents_lock_many(d.pk for d in resent.values())
    lines: dict[int, dict[int, Line]] = {}
    for line in Line.objects.filter(document_id__in=sorted(locked)).order_by("document_id"):
        lines.setdefault(line.document_id, {})[line.line_no] = line
    chosen = [items[i] for i in resent]
    units = {u.code: u for u in OrgUnit.objects.filter(code__in={i.org_unit for i in chosen})}
    partners = {
        p.code: p for p in Partner.objects.filter(code__in={i.partner for i in chosen if i.partner})
    }
    codes = {line.item for item in chosen for line in item.lines if line.item}
    known_items = {i.code: i for i in Item.objects.filter(code__in=codes)}
    allowed: dict[tuple[int, str], bool] = {}

    def may_sync(unit: OrgUnit, doc_type: str) -> bool:
        if (unit.pk, doc_type) not in allowed:
            allowed[(unit.pk, doc_type)] = user_has_perm(
                actor, Perm.DOCUMENT_SYNC, org_unit=unit, doc_type=doc_type
            )
        return allowed[(unit.pk, doc_type)]

    answers: dict[int, DocumentResult] = {}
    for index, stored in resent.items():
        item, document = items[index], locked.get(stored.pk)
        unit = units.get(item.org_unit)
        if (
            document is None
            or unit is None
            or document.close_state not in (CloseState.OPEN, CloseState.ON_HOLD)
            or not may_sync(unit, item.doc_type)
            or not may_sync(document.org_unit, document.doc_type)
            or (item.partner and item.partner not in partners)
            or (
                item.external_id
                and (document.source_system, document.external_id)
                != (item.source_system, item.external_id)
            )
            or any(line.item and line.item not in known_items for line in item.lines)
        ):
            continue
        try:
            document_checked(
                number=item.number,
                source_system=item.source_system,
                external_id=item.external_id,
                exchange_rate=item.exchange_rate,
                line_nos=[line.line_no for line in item.lines],
            )
            same = document_unchanged(
                document=document,
                existing=lines.get(document.pk, {}),
                lines=[_line_input(line, known_items) for line in item.lines],
                expected_date=item.expected_date,
                partner=partners.get(item.partner) if item.partner else None,
            )
        except DomainError:
            continue  # refused one by one, with its reason
        if same:
            answers[index] = DocumentResult(index, document=document, created=False)
    return answers


def _create_new(
    actor: AbstractBaseUser, items: Sequence[DocumentItem], indexes: list[int]
) -> dict[int, DocumentResult]:
    """The new documents, created together; those refused answered with their error. When a
    concurrent request created one of them first, none is created here: they go one by one."""
    if not indexes:
        return {}
    known = _known(items, indexes)
    built: dict[int, NewDocument] = {}
    answers: dict[int, DocumentResult] = {}
    for index in indexes:
        try:
            built[index] = _built(actor, items[index], known)
        except DomainError as exc:
            answers[index] = DocumentResult(index, error=exc)
    try:
        with transaction.atomic():
            _insert(actor, list(built.values()))
    except IntegrityError:
        return answers
    answers.update(
        (index, DocumentResult(index, document=new.document, created=True))
        for index, new in built.items()
    )
    return answers


def _companies_of_units(codes: set[str]) -> dict[str, int]:
    """Organisation unit code → the id of its company (units that do not exist are absent)."""
    return {
        unit.code: company_of(unit).pk for unit in OrgUnit.objects.filter(code__in=sorted(codes))
    }


def _known(items: Sequence[DocumentItem], indexes: list[int]) -> _Known:
    chosen = [items[i] for i in indexes]
    known = _Known()
    known.units = {u.code: u for u in OrgUnit.objects.filter(code__in={i.org_unit for i in chosen})}
    partners = {i.partner for i in chosen if i.partner}
    known.partners = {p.code: p for p in Partner.objects.filter(code__in=partners)}
    wanted = {
        line.item: (line.item_name or line.item, line.unit)
        for item in chosen
        for line in item.lines
        if line.item
    }
    known.items = items_get_or_create(wanted) if wanted else {}
    ids = sorted({(i.source_system, i.external_id) for i in chosen if i.external_id})
    for start in range(0, len(ids), IN_CHUNK):
        query = Q()
        for source, external in ids[start : start + IN_CHUNK]:
            query |= Q(source_system=source, external_id=external)
        for document in Document.objects.select_related("org_unit").filter(query):
            known.taken[(document.source_system, document.external_id)] = document
    return known


def _built(actor: AbstractBaseUser, item: DocumentItem, known: _Known) -> NewDocument:
    """The checks `document_sync` makes of a new document, on the request's master data."""
    spec_for(item.doc_type)
    unit = known.units.get(item.org_unit)
    if unit is None:
        raise unknown_org_unit(item.org_unit)
    scope = (unit.pk, item.doc_type)
    if scope not in known.allowed:
        known.allowed[scope] = user_has_perm(
            actor, Perm.DOCUMENT_SYNC, org_unit=unit, doc_type=item.doc_type
        )
    if not known.allowed[scope]:
        require(actor, Perm.DOCUMENT_SYNC, org_unit=unit, doc_type=item.doc_type, what=item.number)
    partner = known.partners.get(item.partner) if item.partner else None
    if item.partner and partner is None:
        raise unknown_partner(item.partner)
    clash = known.taken.get((item.source_system, item.external_id)) if item.external_id else None
    if clash is not None:
        raise external_id_taken(actor, clash)
    document_checked(
        number=item.number,
        source_system=item.source_system,
        external_id=item.external_id,
        exchange_rate=item.exchange_rate,
        line_nos=[line.line_no for line in item.lines],
    )
    company = known.company_of(unit)
    rate = document_rate(
        company,
        currency=item.currency,
        day=item.document_date,
        given=item.exchange_rate,
        doc_type=item.doc_type,
        number=item.number,
        cache=known.rates,
    )
    new = document_new(
        doc_type=item.doc_type,
        number=item.number,
        company=company,
        org_unit=unit,
        document_date=item.document_date,
        lines=[_line_input(line, known.items) for line in item.lines],
        partner=partner,
        expected_date=item.expected_date,
        currency=item.currency,
        exchange_rate=rate,
        source_system=item.source_system,
        external_id=item.external_id,
    )
    if item.external_id:
        # A second new document with the same external id in this request is refused.
        known.taken[(item.source_system, item.external_id)] = new.document
    return new


def _line_input(line: LineData, items: dict[str, Item]) -> LineInput:
    return LineInput(
        line_no=line.line_no,
        planned_qty=line.planned_qty,
        unit_price=line.unit_price,
        item=items[line.item] if line.item else None,
        description=line.description,
        unit=line.unit,
        planned_amount=line.planned_amount,
    )


def _insert(actor: AbstractBaseUser, built: list[NewDocument]) -> None:
    rows_insert([new.document for new in built])
    lines: list[Line] = []
    for new in built:
        for line in new.lines:
            line.document = new.document
        lines.extend(new.lines)
    rows_insert(lines)
    audit_append(actor=actor, entries=[new.created_entry() for new in built])
