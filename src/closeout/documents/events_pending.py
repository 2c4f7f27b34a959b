"""Events waiting to apply: a pending event confirmed (its measures move then), and the events
quarantined on a closed or held line, applied after a reopen or release."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.access.services import require, user_has_perm
from closeout.audit.models import AuditAction
from closeout.audit.services import AuditEntry, audit_append
from closeout.core.errors import (
    EventRefused,
    InvalidInput,
    NotFound,
)
from closeout.documents.event_effects import event_apply
from closeout.documents.events import (
    EventResult,
    PostOutcome,
    activity_touch,
    event_audit_entry,
    event_quarantine_reason,
)
from closeout.documents.lookup import document_lock
from closeout.documents.models import (
    BusinessEvent,
    Document,
    EventStatus,
    Line,
)


def event_missing(event_id: int) -> NotFound:
    """The answer for an unknown event id, and for one of a document the caller may not see."""
    return NotFound(
        gettext_noop("no business event #%(id)s"),
        params={"id": event_id},
        details={"event": event_id},
    )


@transaction.atomic
def event_confirm(*, actor: AbstractBaseUser | None, event_id: int) -> EventResult:
    """Apply a pending event (e.g. a receipt after inspection, a cost after review). An event
    the actor may not see (another unit's document) is answered as a missing one."""
    found = BusinessEvent.objects.filter(pk=event_id).values_list("document_id", flat=True)
    document_id = found.first()
    if document_id is None:
        raise event_missing(event_id)
    document = document_lock(document_id)
    if actor is not None:
        if not user_has_perm(
            actor, Perm.DOCUMENT_VIEW, org_unit=document.org_unit, doc_type=document.doc_type
        ):
            raise event_missing(event_id)
        require(
            actor,
            Perm.DOCUMENT_SYNC,
            org_unit=document.org_unit,
            doc_type=document.doc_type,
            what=document.label,
        )
    event = BusinessEvent.objects.select_for_update(no_key=True).get(pk=event_id)
    if event.status != EventStatus.PENDING:
        raise InvalidInput(
            gettext_noop("event %(external_id)s of %(document)s is %(status)s, not pending"),
            params={
                "external_id": event.external_id,
                "document": document.label,
                "status": event.status,
            },
            details={"event": event_id, "status": event.status},
        )
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
    changes = event_apply(event, document, line)
    event.status, event.applied_at = EventStatus.APPLIED, timezone.now()
    event.save(update_fields=["status", "applied_at"])
    activity_touch(document, event.occurred_at)
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
            changes = event_apply(event, document, line)
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
        activity_touch(document, event.occurred_at)
        entries.append(
            event_audit_entry(AuditAction.EVENT_RELEASED_FROM_QUARANTINE, event, document, changes)
        )
        results.append(EventResult(event, PostOutcome.APPLIED))
    audit_append(actor=actor, entries=entries)
    return results


__all__ = ["event_confirm", "events_apply_quarantined"]
