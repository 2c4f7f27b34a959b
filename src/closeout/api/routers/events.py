"""Business events from the ERP: one or many per call, each posted in its own transaction and
answered on its own (applied / pending / duplicate / quarantined / rejected)."""

from collections import Counter
from typing import Any

import pydantic
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.http import HttpRequest
from ninja import Router

from closeout.access.permissions import Perm
from closeout.access.services import require
from closeout.api.errors import field_path
from closeout.api.routers._common import ERRORS, caller
from closeout.api.routers.bulk import with_message
from closeout.api.schemas import (
    EventIn,
    EventResultOut,
    EventsBulkIn,
    EventsIn,
    EventsOut,
    FieldError,
)
from closeout.audit.services import to_json_value
from closeout.core.errors import DomainError, EventConflict
from closeout.documents.events_bulk import EventItem, event_item_post, events_post_many
from closeout.documents.events_pending import event_confirm
from closeout.documents.models import Document
from closeout.documents.services import EventResult, document_get_visible

router = Router(tags=["events"])

# Events committed together (each still in its own savepoint).
COMMIT_EVERY = 100


def _rejected(index: int, external_id: Any, code: str, errors: list[FieldError]) -> EventResultOut:
    return EventResultOut(
        index=index,
        external_id=str(external_id) if external_id is not None else None,
        outcome="rejected",
        code=code,
        reason="; ".join(f"{e.field}: {e.message}" for e in errors),
        errors=errors,
    )


@router.post("", response={200: EventsOut, **ERRORS}, summary="Post business events")
def events_post(request: HttpRequest, payload: EventsIn) -> Any:
    actor = caller(request)
    require(actor, Perm.DOCUMENT_SYNC, what="business events")
    documents: dict[tuple[str, str, str], Document | DomainError] = {}
    results: list[EventResultOut] = []
    for start in range(0, len(payload.events), COMMIT_EVERY):
        # Each event runs in its own (nested) transaction inside `event_post`, so a refused
        # event leaves nothing behind; committing every COMMIT_EVERY events instead of after
        # each one saves a disk flush per event while keeping row locks short.
        with transaction.atomic():
            stop = min(start + COMMIT_EVERY, len(payload.events))
            results.extend(
                _post_one(actor, i, payload.events[i], documents) for i in range(start, stop)
            )
    counts: Counter[str] = Counter(r.outcome for r in results)
    return EventsOut(counts=dict(counts), results=results)


def _parsed(index: int, raw: Any) -> EventIn | EventResultOut:
    """The item checked against EventIn, or its rejection naming the fields."""
    external_id = raw.get("external_id") if isinstance(raw, dict) else None
    try:
        item = EventIn.model_validate(raw)
    except pydantic.ValidationError as exc:
        errors = [FieldError(field=field_path(e["loc"])[0], message=e["msg"]) for e in exc.errors()]
        return _rejected(index, external_id, "invalid_input", errors)
    if item.occurred_at is not None and item.occurred_at.utcoffset() is None:
        errors = [FieldError(field="occurred_at", message="needs a UTC offset (ISO 8601)")]
        return _rejected(index, external_id, "invalid_input", errors)
    return item


def _refusal(index: int, external_id: str, exc: DomainError) -> EventResultOut:
    fields = exc.details.get("fields")
    if isinstance(exc, EventConflict) and isinstance(fields, dict):
        errors = [
            FieldError(field=name, message=f"stored {d['stored']}, sent {d['sent']}")
            for name, d in fields.items()
        ]
    else:
        field = str(exc.details.get("field", "")) or "event"
        errors = [FieldError(field=field, message=exc.message)]
    rejected = _rejected(index, external_id, exc.code, errors)
    rejected.details = to_json_value(exc.details)
    if isinstance(exc, EventConflict):
        rejected.reason = exc.message
    return rejected


def _answer(index: int, external_id: str, result: EventResult) -> EventResultOut:
    return EventResultOut(
        index=index,
        external_id=external_id,
        outcome=str(result.outcome),  # type: ignore[arg-type]
        event_id=result.event.pk,
        reason=result.event.quarantine_reason,
    )


def _post_one(
    actor: AbstractBaseUser,
    index: int,
    raw: Any,
    documents: dict[tuple[str, str, str], Document | DomainError],
) -> EventResultOut:
    item = _parsed(index, raw)
    if isinstance(item, EventResultOut):
        return item
    key = (item.doc_type, item.number, item.company)
    if key not in documents:
        try:
            # A document the caller may not view is answered as a missing one.
            documents[key] = document_get_visible(
                actor, item.doc_type, item.number, company=item.company
            )
        except DomainError as exc:
            documents[key] = exc
    found = documents[key]
    try:
        if isinstance(found, DomainError):
            raise found
        result = event_item_post(actor=actor, document=found, item=_event_item(item))
    except DomainError as exc:
        return _refusal(index, item.external_id, exc)
    return _answer(index, item.external_id, result)


@router.post(
    "/{event_id}/confirm",
    response={200: EventResultOut, **ERRORS},
    summary="Confirm a pending business event (it applies now, or is quarantined)",
)
def event_confirm_view(request: HttpRequest, event_id: int) -> Any:
    """A pending event (posted with `pending: true`, e.g. a receipt awaiting inspection) keeps
    its document from closing until the ERP confirms it here: it then moves its line's
    measures, or is quarantined when the line has closed or is held meanwhile. Another unit's
    event is answered 404, as a missing one."""
    actor = caller(request)
    require(actor, Perm.DOCUMENT_SYNC, what="business events")
    result = event_confirm(actor=actor, event_id=event_id)
    return with_message(_answer(0, result.event.external_id, result))


@router.post(
    "/bulk",
    response={200: EventsOut, **ERRORS},
    summary="Post up to 1,000 business events set-based (one transaction, an answer per item)",
)
def events_post_bulk(request: HttpRequest, payload: EventsBulkIn) -> Any:
    """The events are posted together under the locks of their documents (taken in id order):
    a few queries per request. Each item is answered in request order with its outcome and a
    message; a refused item changes nothing and the others still post."""
    actor = caller(request)
    require(actor, Perm.DOCUMENT_SYNC, what="business events")
    parsed = [_parsed(i, raw) for i, raw in enumerate(payload.events)]
    valid = [(i, p) for i, p in enumerate(parsed) if isinstance(p, EventIn)]
    posted = events_post_many(actor=actor, items=[_event_item(p) for _, p in valid])
    results = list(parsed)
    for (index, item), answer in zip(valid, posted, strict=True):
        if answer.error is not None:
            results[index] = _refusal(index, item.external_id, answer.error)
        elif answer.result is not None:
            results[index] = _answer(index, item.external_id, answer.result)
    out = [with_message(r) for r in results if isinstance(r, EventResultOut)]
    return EventsOut(counts=dict(Counter(r.outcome for r in out)), results=out)


def _event_item(item: EventIn) -> EventItem:
    return EventItem(
        doc_type=item.doc_type,
        number=item.number,
        company=item.company,
        kind=item.kind,
        external_id=item.external_id,
        line_no=item.line_no,
        quantity=item.quantity,
        amount=item.amount,
        occurred_at=item.occurred_at,
        source_system=item.source_system,
        pending=item.pending,
        note=item.note,
    )
