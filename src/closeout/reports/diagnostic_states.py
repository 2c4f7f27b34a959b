"""Consistency checks of close states against what happened: closed documents with business
events waiting in quarantine, complete documents left open, and reopens never closed again
(read from the audit trail).
"""

from datetime import timedelta
from typing import Any

from django.db.models import (
    CharField,
    Count,
    Exists,
    F,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Cast
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from closeout.audit.models import AuditAction, AuditEvent, AuditObject
from closeout.closing.selectors import verdict_condition
from closeout.core.doctypes import doc_type_codes
from closeout.documents.models import BusinessEvent, CloseState, Document, EventStatus
from closeout.reports.diagnostic_base import (
    CLOSED_STATES,
    NOT_CLOSED_STATES,
    Check,
    Column,
    Options,
    document_rows,
)


def closed_with_events(options: Options) -> QuerySet[Any]:
    """Closed documents holding quarantined business events that arrived after the close."""
    waiting = BusinessEvent.objects.filter(
        document_id=OuterRef("pk"), status=EventStatus.QUARANTINED
    )
    stats = waiting.values("document_id").annotate(n=Count("pk"), last=Max("occurred_at"))
    qs = Document.objects.filter(close_state__in=CLOSED_STATES).filter(Exists(waiting))
    qs = qs.annotate(problem=Value("quarantined_events", output_field=CharField()))
    return document_rows(
        qs,
        quarantined=Subquery(stats.values("n")),
        latest_event=Subquery(stats.values("last")),
        closed_on=F("close_date"),
    )


def complete_but_open(options: Options) -> QuerySet[Any]:
    """Open documents whose every closing rule passes (the very condition of the "ready to
    close" queue filter), left open."""
    condition = Q(pk__in=[])
    for doc_type in doc_type_codes():
        condition |= Q(doc_type=doc_type) & verdict_condition(doc_type, "ready")
    qs = Document.objects.filter(close_state=CloseState.OPEN).filter(condition)
    qs = qs.annotate(problem=Value("ready_but_open", output_field=CharField()))
    return document_rows(
        qs,
        doc_date=F("document_date"),
        last_activity=F("last_activity_at"),
        amount=F("total_amount_company"),
    )


def reopened_not_closed(options: Options) -> QuerySet[Any]:
    """Documents reopened (反结案) more than N days ago and not closed again since, read from
    the audit trail: the last DOCUMENT_REOPENED event with no close event after it."""
    events = AuditEvent.objects.filter(
        object_type=AuditObject.DOCUMENT, object_id=Cast(OuterRef("pk"), CharField(max_length=64))
    )
    last_reopen = events.filter(action=AuditAction.DOCUMENT_REOPENED).order_by("-seq")
    closed_after = events.filter(
        action__in=(AuditAction.DOCUMENT_CLOSED, AuditAction.LINES_CLOSED),
        seq__gt=OuterRef("reopen_seq"),
    )
    cutoff = options.now - timedelta(days=options.stale_days)
    qs = (
        Document.objects.filter(close_state__in=NOT_CLOSED_STATES)
        .annotate(
            reopen_seq=Subquery(last_reopen.values("seq")[:1]),
            last_reopen_at=Subquery(last_reopen.values("at")[:1]),
        )
        .filter(last_reopen_at__lt=cutoff)
        .exclude(Exists(closed_after))
        .annotate(problem=Value("reopened_not_closed", output_field=CharField()))
    )
    return document_rows(qs, reopened=F("last_reopen_at"), reopen_event=F("reopen_seq"))


CLOSED_WITH_EVENTS = Check(
    "closed_with_events",
    _("Closed documents with later business events"),
    _(
        "Business arrived after the close and waits in quarantine: reopen the document so "
        "the events apply, or confirm with the sender that they belong elsewhere."
    ),
    "document",
    (
        Column("quarantined", _("Quarantined events")),
        Column("latest_event", _("Latest event")),
        Column("closed_on", _("Close date")),
    ),
    closed_with_events,
)
COMPLETE_BUT_OPEN = Check(
    "complete_but_open",
    _("Complete documents still open"),
    _(
        "Every closing rule passes: close them (batch close from the queue, verdict “ready "
        "to close”), or check why the automatic close leaves them (switched off in the "
        "policy, grace days)."
    ),
    "document",
    (
        Column("doc_date", _("Date")),
        Column("last_activity", _("Last activity")),
        Column("amount", _("Amount")),
    ),
    complete_but_open,
)
REOPENED_NOT_CLOSED = Check(
    "reopened_not_closed",
    _("Reopened documents not closed again"),
    _(
        "A reopen is meant to be short: finish the correction and close the document again, "
        "or ask its owner why it stays open."
    ),
    "document",
    (
        Column("reopened", _("Reopened at")),
        Column("reopen_event", _("Audit event #")),
    ),
    reopened_not_closed,
)

STATE_PROBLEMS: dict[str, str | Promise] = {
    "quarantined_events": _("events quarantined after the close"),
    "ready_but_open": _("every rule passes, still open"),
    "reopened_not_closed": _("reopened and not closed again"),
}
