"""Business events (receipts, shipments, invoices, payments…): idempotent by external id,
applied to the line measures of their document type, quarantined on a closed or held line and
applied after a reopen or release. This module posts them (checks, duplicates, the three
outcomes); what an applied event does to its line is in `event_effects`, the waiting ones in
`events_pending`, the set-based post in `events_bulk`."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.access.services import require
from closeout.audit.models import AuditAction
from closeout.audit.services import AuditEntry, audit_append
from closeout.core.doctypes import doc_type_label_lazy
from closeout.core.errors import (
    Bilingual,
    EventConflict,
    InvalidInput,
    NotFound,
    bilingual_label,
    code_words,
)
from closeout.core.inputs import check_length, max_length_of
from closeout.core.money import plain, to_decimal
from closeout.documents.document_values import column_of
from closeout.documents.entries import document_entry
from closeout.documents.event_effects import event_apply
from closeout.documents.hooks import event_hooks
from closeout.documents.lookup import document_lock
from closeout.documents.models import (
    BusinessEvent,
    CloseState,
    Document,
    EventKind,
    EventStatus,
    Line,
)
from closeout.documents.types import spec_for


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


def event_audit_entry(
    action: AuditAction,
    event: BusinessEvent,
    document: Document,
    data: dict[str, Any],
    reason: str = "",
) -> AuditEntry:
    return document_entry(
        action=action,
        document=document,
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
        raise InvalidInput(
            gettext_noop("event external id is empty"), details={"field": "external_id"}, params={}
        )
    for name, value in (("external_id", external_id), ("source_system", source_system)):
        check_length(value, field=name, max_length=max_length_of(BusinessEvent, name))
    if kind not in EventKind.values:
        raise InvalidInput(
            gettext_noop("unknown event kind '%(kind)s'"),
            details={"field": "kind"},
            params={"kind": kind},
        )
    allowed = set(spec.effects) | set(spec.header_events)
    if EventKind(kind) not in allowed:
        raise InvalidInput(
            gettext_noop("a %(doc_type)s takes no '%(kind)s' events; allowed: %(list)s"),
            details={"field": "kind"},
            params={
                "doc_type": code_words(document.doc_type, doc_type_label_lazy(document.doc_type)),
                "kind": code_words(kind, EventKind(kind).label),
                "list": Bilingual(
                    ", ".join(sorted(str(k) for k in allowed)),
                    "、".join(bilingual_label(k.label).zh for k in sorted(allowed)),
                ),
            },
        )
    qty = to_decimal(quantity, field="quantity", column=column_of(BusinessEvent, "quantity"))
    amt = to_decimal(amount, field="amount", column=column_of(BusinessEvent, "amount"))
    # A stock adjustment is signed by nature: a count below book needs a negative one.
    qty_must_be_positive = kind != EventKind.STOCK_ADJUSTMENT
    if (qty < 0 and qty_must_be_positive) or amt < 0:
        raise InvalidInput(
            gettext_noop(
                "event %(external_id)s: quantity and amount must not be negative (post a return "
                "or credit note instead)"
            ),
            details={"field": "quantity" if qty < 0 else "amount"},
            params={"external_id": external_id},
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
            gettext_noop("%(document)s: a %(kind)s needs a line number"),
            details={"field": "line_no"},
            params={
                "document": document.in_words,
                "kind": code_words(kind, EventKind(kind).label),
            },
        )
    if line is None:
        raise NotFound(
            gettext_noop("%(document)s has no line %(line_no)s"),
            details={"field": "line_no"},
            params={
                "document": document.in_words,
                "line_no": line_no,
            },
        )


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
        gettext_noop(
            "external id '%(external_id)s' from %(source_system)s was already used for a %(kind)s "
            "on %(where)s with other values: %(listed)s; an external id names one event: send the "
            "same values to repeat it, or a new external id for a new event"
        ),
        details={"external_id": external_id, "source_system": source_system, "fields": differ},
        params={
            "external_id": external_id,
            "source_system": source_system,
            "kind": existing.kind,
            "where": where,
            "listed": listed,
        },
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
    """Post one business event on a locked document: find its line, then quarantine it (closed or
    held line, closed dimension), keep it pending (needs confirmation) or apply it to the line's
    measures, each with its one audit event. Long because the three outcomes share the lookups
    before them and differ only at the end."""
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
    changes = event_apply(event, document, line)
    activity_touch(document, occurred_at)
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


def activity_touch(document: Document, at: datetime) -> None:
    document_touched(document, at)
    document.save(update_fields=TOUCHED_FIELDS)


__all__ = [
    "TOUCHED_FIELDS",
    "EventResult",
    "PostOutcome",
    "SentEvent",
    "document_touched",
    "event_audit_entry",
    "event_checked",
    "event_line",
    "event_post",
    "event_quarantine_reason",
    "event_repeated",
]
