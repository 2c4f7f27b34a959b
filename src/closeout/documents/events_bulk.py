"""Many business events posted set-based: a few queries per request instead of a dozen per
event, with the guarantees of `services.event_post` one by one (its rules are reused, not
copied): idempotent by external id (a repeat is a duplicate, other values a conflict), an event
for a closed or held line quarantined, permission and scope per document, the documents locked
in id order, one audit event per change, and an answer per item in request order. A bad item
is answered on its own and changes nothing; the others still post."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict, cast

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.db.models import Field, Model, Q
from django.utils import timezone
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.access.services import require, user_has_perm
from closeout.audit.models import AuditAction
from closeout.audit.services import AuditEntry, audit_append
from closeout.core.errors import Conflict, DomainError
from closeout.core.rows import rows_insert
from closeout.documents.hooks import event_hooks
from closeout.documents.models import BusinessEvent, Document, EventKind, EventStatus, Line
from closeout.documents.services import (
    IN_CHUNK,
    TOUCHED_FIELDS,
    EventResult,
    PostOutcome,
    SentEvent,
    document_missing,
    document_pick_from,
    document_touched,
    documents_lock_many,
    documents_numbered_many,
    event_audit_entry,
    event_checked,
    event_effect,
    event_line,
    event_post,
    event_quarantine_reason,
    event_repeated,
)

# Items per request of the bulk endpoints.
MAX_BULK_ITEMS = 1000


@dataclass(frozen=True)
class EventItem:
    doc_type: str
    number: str
    kind: str
    external_id: str
    # The company's code; needed only when the number exists in several companies.
    company: str = ""
    line_no: int | None = None
    quantity: object = "0"
    amount: object = "0"
    occurred_at: datetime | None = None
    source_system: str = "closeout"
    pending: bool = False
    note: str = ""

    def values(self) -> "EventValues":
        """The event's own values, as `event_checked` and `event_post` take them."""
        return EventValues(
            kind=self.kind,
            external_id=self.external_id,
            line_no=self.line_no,
            quantity=self.quantity,
            amount=self.amount,
            occurred_at=self.occurred_at,
            source_system=self.source_system,
        )


class EventValues(TypedDict):
    kind: str
    external_id: str
    line_no: int | None
    quantity: object
    amount: object
    occurred_at: datetime | None
    source_system: str


def event_item_post(
    *, actor: AbstractBaseUser | None, document: Document, item: EventItem
) -> EventResult:
    """One item posted on its own (`event_post`, its own savepoint): the one-by-one endpoint's
    path; `events_post_many` posts many under one set of locks."""
    return event_post(
        actor=actor, document=document, pending=item.pending, note=item.note, **item.values()
    )


@dataclass(frozen=True)
class ItemResult:
    """The answer to one item: its outcome and event, or the error that refused it."""

    index: int
    result: EventResult | None = None
    error: DomainError | None = None


class ScopeCheck:
    """Permission answers per (organisation unit, type), asked once per request."""

    def __init__(self, actor: AbstractBaseUser | None) -> None:
        self.actor = actor
        self.known: dict[tuple[str, int, str], bool] = {}

    def has(self, perm: Perm, document: Document) -> bool:
        if self.actor is None:
            return True
        key = (str(perm), document.org_unit_id, document.doc_type)
        if key not in self.known:
            self.known[key] = user_has_perm(
                self.actor, perm, org_unit=document.org_unit, doc_type=document.doc_type
            )
        return self.known[key]

    def require_sync(self, document: Document) -> None:
        """As `document_get_visible` then `event_post`: out of view is missing; in view but
        without the sync permission is refused, naming the permission."""
        if not self.has(Perm.DOCUMENT_VIEW, document):
            raise document_missing(document.doc_type, document.number)
        if not self.has(Perm.DOCUMENT_SYNC, document):
            require(
                self.actor,
                Perm.DOCUMENT_SYNC,
                org_unit=document.org_unit,
                doc_type=document.doc_type,
                what=document.label,
            )


def events_post_many(
    *, actor: AbstractBaseUser | None, items: Sequence[EventItem]
) -> list[ItemResult]:
    """Post `items` (at most MAX_BULK_ITEMS) in one transaction; an answer per item, in order."""
    checked, refused = _check_items(actor, items)
    try:
        return _post_checked(actor, items, checked, refused)
    except IntegrityError:
        # A concurrent request stored one of these external ids between our look-up and our
        # insert (on another document than ours, else our lock would have waited for it):
        # read again, now that it is committed.
        try:
            return _post_checked(actor, items, checked, refused)
        except IntegrityError as exc:
            raise Conflict(
                gettext_noop("another request posted the same events at the same time; retry"),
                details={"field": "events"},
                params={},
            ) from exc


def _check_items(
    actor: AbstractBaseUser | None, items: Sequence[EventItem]
) -> tuple[dict[int, SentEvent], dict[int, DomainError]]:
    """The documents, permission and each item's own values, before any lock."""
    numbered = documents_numbered_many((item.doc_type, item.number) for item in items)
    scope = ScopeCheck(actor)
    checked: dict[int, SentEvent] = {}
    refused: dict[int, DomainError] = {}
    for index, item in enumerate(items):
        try:
            # Only the documents the caller may view take part: out of view is missing.
            seen = [
                d
                for d in numbered.get((item.doc_type, item.number), [])
                if scope.has(Perm.DOCUMENT_VIEW, d)
            ]
            document = document_pick_from(seen, item.doc_type, item.number, item.company)
            scope.require_sync(document)
            checked[index] = event_checked(document=document, **item.values())
        except DomainError as exc:
            refused[index] = exc
    return checked, refused


class _Posting:
    """The state of one request's posting under its locks: what is written at the end."""

    def __init__(self, actor: AbstractBaseUser | None, document_ids: set[int]) -> None:
        self.actor = actor
        self.documents = documents_lock_many(document_ids)
        self.lines = {
            (line.document_id, line.line_no): line
            for line in Line.objects.select_for_update(no_key=True)
            .filter(document_id__in=sorted(document_ids))
            .order_by("document_id", "line_no")
        }
        # Lines with a close dimension closed: only their events ask about dimensions.
        self.dimension_lines = event_hooks().lines_with_closed_dimensions(
            [line.pk for line in self.lines.values()]
        )
        self.new_events: list[BusinessEvent] = []
        self.entries: list[AuditEntry] = []
        self.dirty_lines: dict[int, Line] = {}
        self.line_fields: set[str] = set()
        self.touched: dict[int, Document] = {}

    def post(self, item: EventItem, sent: SentEvent) -> EventResult:
        document = self.documents[sent.document.pk]
        line = self.lines.get((document.pk, sent.line_no)) if sent.line_no is not None else None
        event_line(document, item.kind, item.line_no, line)
        event = BusinessEvent(
            document=document,
            line=line,
            kind=item.kind,
            source_system=item.source_system,
            external_id=item.external_id,
            quantity=sent.quantity,
            amount=sent.amount,
            occurred_at=item.occurred_at or timezone.now(),
            posted_by_id=self.actor.pk if self.actor is not None else None,
            note=item.note,
        )
        dimensions = False
        if line is not None and line.pk in self.dimension_lines:
            dimensions = True
            # As one by one: a return may reopen the close dimension it belongs to (policy).
            event_hooks().reopen_for_event(
                actor=self.actor,
                document=document,
                line=line,
                kind=item.kind,
                external_id=item.external_id,
            )
        reason = event_quarantine_reason(document, line, item.kind if dimensions else "")
        if reason:
            event.status, event.quarantine_reason = EventStatus.QUARANTINED, reason
            return self._stored(
                event, PostOutcome.QUARANTINED, AuditAction.EVENT_QUARANTINED, {}, reason
            )
        if item.pending:
            event.status = EventStatus.PENDING
            return self._stored(event, PostOutcome.PENDING, AuditAction.EVENT_PENDING, {})
        changes = event_effect(event, document, line)  # EventRefused: nothing changed
        event.status, event.applied_at = EventStatus.APPLIED, timezone.now()
        if line is not None and event.kind != EventKind.ACCEPTANCE:
            self.dirty_lines[line.pk] = line
            self.line_fields.update(changes)
        document_touched(document, event.occurred_at)
        self.touched[document.pk] = document
        return self._stored(event, PostOutcome.APPLIED, AuditAction.EVENT_APPLIED, changes)

    def _stored(
        self,
        event: BusinessEvent,
        outcome: PostOutcome,
        action: AuditAction,
        changes: dict[str, Any],
        reason: str = "",
    ) -> EventResult:
        self.new_events.append(event)
        self.entries.append(event_audit_entry(action, event, event.document, changes, reason))
        return EventResult(event, outcome)

    def write(self) -> None:
        rows_insert(self.new_events)
        rows_update(list(self.dirty_lines.values()), sorted(self.line_fields))
        rows_update(list(self.touched.values()), TOUCHED_FIELDS)
        audit_append(actor=self.actor, entries=self.entries)


def rows_update(objects: Sequence[Model], fields: Sequence[str]) -> None:
    """Save `fields` of many rows of one model: one UPDATE by primary key sent for all rows at
    once (`executemany`, pipelined by psycopg), far cheaper than `bulk_update`'s CASE WHEN."""
    if not objects or not fields:
        return
    meta = objects[0]._meta
    columns = [cast("Field[Any, Any]", meta.get_field(name)) for name in fields]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(str(column.column))} = %s" for column in columns)
    table, key = quote(meta.db_table), quote(str(meta.pk.column) if meta.pk else "id")
    sql = f"UPDATE {table} SET {assignments} WHERE {key} = %s"  # noqa: S608 (model names)
    rows = [
        [column.get_db_prep_save(getattr(obj, column.attname), connection) for column in columns]
        + [obj.pk]
        for obj in objects
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _stored_events(
    items: Sequence[EventItem], indexes: list[int]
) -> dict[tuple[str, str], BusinessEvent]:
    """The events already stored under the external ids of these items (one query per source
    system and chunk)."""
    by_source: dict[str, set[str]] = {}
    for index in indexes:
        by_source.setdefault(items[index].source_system, set()).add(items[index].external_id)
    found: dict[tuple[str, str], BusinessEvent] = {}
    for source, ids in by_source.items():
        listed = sorted(ids)
        for start in range(0, len(listed), IN_CHUNK):
            query = Q(source_system=source, external_id__in=listed[start : start + IN_CHUNK])
            for event in BusinessEvent.objects.select_related("document", "line").filter(query):
                found[(event.source_system, event.external_id)] = event
    return found


def _post_checked(
    actor: AbstractBaseUser | None,
    items: Sequence[EventItem],
    checked: dict[int, SentEvent],
    refused: dict[int, DomainError],
) -> list[ItemResult]:
    indexes = sorted(checked)
    answers: dict[int, ItemResult] = {i: ItemResult(i, error=e) for i, e in refused.items()}
    with transaction.atomic():
        posting = _Posting(actor, {checked[i].document.pk for i in indexes})
        # Looked up under the document locks: a concurrent post of the same events on the
        # same documents has committed by now, and is seen as the duplicate it is.
        stored = _stored_events(items, indexes)
        for index in indexes:
            item, sent = items[index], checked[index]
            key = (item.source_system, item.external_id)
            try:
                if key in stored:
                    answers[index] = ItemResult(index, event_repeated(stored[key], sent))
                    continue
                result = posting.post(item, sent)
            except DomainError as exc:
                answers[index] = ItemResult(index, error=exc)
                continue
            stored[key] = result.event
            answers[index] = ItemResult(index, result)
        posting.write()
    return [answers[i] for i in range(len(items))]
