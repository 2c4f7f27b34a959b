"""Documents as the ERP sends them: checked, created or updated with their lines (the header
and lines of a closed document are read-only), with their totals and the audit events. The
checks of the values sent are in `document_values`."""

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
from closeout.core.companies import company_of
from closeout.core.errors import (
    DocumentLocked,
    PermissionDenied,
    StaleVersion,
    bilingual_label,
)
from closeout.core.models import Company, OrgUnit, Partner
from closeout.core.money import round_amount
from closeout.documents.document_values import (
    LineInput,
    check_totals,
    document_checked,
    document_rate,
    line_values,
)
from closeout.documents.entries import document_entry
from closeout.documents.lookup import document_lock, locked_message
from closeout.documents.models import (
    CloseState,
    Document,
    Line,
)
from closeout.documents.types import spec_for

_LINE_FIELDS = ("item_id", "description", "unit", "unit_price", "planned_qty", "planned_amount")


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
    values = [line_values(line, currency) for line in lines]
    total = sum((v["planned_amount"] for v in values), Decimal(0))
    check_totals(total, exchange_rate)
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
    """Whether the stored `line` already holds `values` (from `line_values`)."""
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
        if line is None or not line_unchanged(line, line_values(data, document.currency)):
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
        values = line_values(data, document.currency)
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
    check_totals(total, document.exchange_rate)
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
    "NewDocument",
    "document_new",
    "document_upsert",
]
