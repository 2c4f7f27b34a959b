"""Bulk ERP sync: up to 1,000 documents per request (POST /api/documents/bulk), answered per
item in request order with an outcome and a message in the caller's language; and the message
of each item of POST /api/events/bulk (routers/events.py)."""

from collections import Counter
from decimal import Decimal
from typing import Any, TypeVar

import pydantic
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Router

from closeout.access.permissions import Perm
from closeout.access.services import require
from closeout.api.errors import field_path
from closeout.api.routers._common import ERRORS, caller
from closeout.api.routers.documents import line_data
from closeout.api.schemas import (
    DocumentBulkItemIn,
    DocumentResultOut,
    DocumentsBulkIn,
    DocumentsBulkOut,
    EventResultOut,
    FieldError,
)
from closeout.audit.services import to_json_value
from closeout.documents.sync_bulk import DocumentItem, DocumentResult, documents_sync_many

router = Router(tags=["documents"])

Answer = TypeVar("Answer", EventResultOut, DocumentResultOut)


def with_message(answer: Answer) -> Answer:
    """The item's outcome in a sentence (zh-hans or en), with the reason when there is one."""
    sentences = {
        "applied": _("Event applied."),
        "pending": _("Event stored, pending confirmation."),
        "duplicate": _("Event already posted: nothing changed."),
        "quarantined": _("Event quarantined: %(reason)s"),
        "rejected": _("Refused: %(reason)s"),
        "created": _("Document created."),
        "updated": _("Document updated."),
    }
    answer.message = sentences[answer.outcome] % {"reason": answer.reason}
    return answer


@router.post(
    "/bulk",
    response={200: DocumentsBulkOut, **ERRORS},
    summary="Create or update up to 1,000 documents from the ERP (an answer per item)",
)
def documents_put_bulk(request: HttpRequest, payload: DocumentsBulkIn) -> Any:
    """Each item is a document as for PUT /api/documents/{doc_type}/{number}, with its
    `doc_type` and `number`. New documents are created together; existing ones are updated one
    by one (a closed one is refused: 409 document_locked in its answer). One transaction."""
    actor = caller(request)
    require(actor, Perm.DOCUMENT_SYNC, what="documents")
    parsed = [_parsed(i, raw) for i, raw in enumerate(payload.documents)]
    valid = [(i, p) for i, p in enumerate(parsed) if isinstance(p, DocumentBulkItemIn)]
    synced = documents_sync_many(actor=actor, items=[_document_item(p) for _, p in valid])
    results = list(parsed)
    for (index, item), answer in zip(valid, synced, strict=True):
        results[index] = _answer(index, item, answer)
    out = [with_message(r) for r in results if isinstance(r, DocumentResultOut)]
    return DocumentsBulkOut(counts=dict(Counter(r.outcome for r in out)), results=out)


def _parsed(index: int, raw: Any) -> DocumentBulkItemIn | DocumentResultOut:
    try:
        return DocumentBulkItemIn.model_validate(raw)
    except pydantic.ValidationError as exc:
        errors = [FieldError(field=field_path(e["loc"])[0], message=e["msg"]) for e in exc.errors()]
        got = raw if isinstance(raw, dict) else {}
        return DocumentResultOut(
            index=index,
            doc_type=_text(got.get("doc_type")),
            number=_text(got.get("number")),
            outcome="rejected",
            code="invalid_input",
            reason="; ".join(f"{e.field}: {e.message}" for e in errors),
            errors=errors,
        )


def _text(value: object) -> str | None:
    return value[:60] if isinstance(value, str) else None


def _answer(index: int, item: DocumentBulkItemIn, answer: DocumentResult) -> DocumentResultOut:
    out = DocumentResultOut(
        index=index, doc_type=item.doc_type, number=item.number, outcome="rejected"
    )
    if answer.error is not None:
        exc = answer.error
        field = str(exc.details.get("field", "")) or "document"
        out.code, out.reason = exc.code, exc.message
        out.errors = [FieldError(field=field, message=exc.message)]
        out.details = to_json_value(exc.details)
    elif answer.document is not None:
        out.outcome = "created" if answer.created else "updated"
        out.version = answer.document.version
        out.company = answer.document.company.code
    return out


def _document_item(item: DocumentBulkItemIn) -> DocumentItem:
    return DocumentItem(
        doc_type=item.doc_type,
        number=item.number,
        org_unit=item.org_unit,
        document_date=item.document_date,
        expected_date=item.expected_date,
        partner=item.partner,
        currency=item.currency,
        exchange_rate=Decimal(item.exchange_rate) if item.exchange_rate else None,
        source_system=item.source_system,
        external_id=item.external_id,
        lines=[line_data(line) for line in item.lines],
    )
