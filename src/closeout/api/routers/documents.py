"""Documents: the work queue, one document with lines and checklist, ERP upsert, close,
close and reopen requests, checklist and audit trail of one document."""

from decimal import Decimal
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_noop
from ninja import Query, Router, Schema, Status

from closeout.access.permissions import Perm
from closeout.access.services import require
from closeout.api import present
from closeout.api.routers._common import ERRORS, caller, etag, if_match_version
from closeout.api.schemas import (
    AuditEventOut,
    ChecklistOut,
    CloseIn,
    CloseOut,
    Day,
    DocumentIn,
    DocumentOut,
    DocumentPage,
    LineIn,
    ReopenRequestIn,
    RequestOut,
)
from closeout.api.selectors import audit_row, cursor_value, visible_scope
from closeout.approvals.submit import close_request_submit, reopen_request_submit
from closeout.audit.models import AuditObject
from closeout.audit.selectors import audit_events_for
from closeout.closing.queue import QueueFilter, document_queue
from closeout.closing.selectors import (
    close_checklist_for,
    close_checklist_with_risks,
    verdicts_for,
)
from closeout.closing.services import document_close
from closeout.documents.models import CloseState, Document
from closeout.documents.services import LineData, document_get, document_get_visible, document_sync

router = Router(tags=["documents"])


class QueueParams(Schema):
    doc_type: str
    number: str = ""
    partner: str = ""
    verdict: str = ""
    close_states: str = ""
    org_unit: str = ""
    date_from: Day | None = None
    date_to: Day | None = None
    has_quarantined: bool | None = None
    # Close dimensions: e.g. closed_for=receiving&open_for=invoicing.
    closed_for: str = ""
    open_for: str = ""
    cursor: str | None = None
    limit: int = 50


MAX_LIMIT = 500


def _viewable(request: HttpRequest, doc_type: str, number: str, company: str) -> Document:
    """The document, when the caller may view it; otherwise the 404 of a missing number.
    `company` (a company code) may be left empty unless the number exists in several
    companies the caller may see."""
    return document_get_visible(caller(request), doc_type, number, company=company)


@router.get("", response={200: DocumentPage, **ERRORS}, summary="List documents (work queue)")
def documents_list(request: HttpRequest, params: Query[QueueParams]) -> Any:
    from closeout.core.errors import InvalidInput

    if not 1 <= params.limit <= MAX_LIMIT:
        raise InvalidInput(
            gettext_noop("limit must be 1 to %(max)s"),
            details={"field": "limit"},
            params={"max": MAX_LIMIT},
        )
    states = tuple(s for s in params.close_states.split(",") if s.strip())
    f = QueueFilter(
        doc_type=params.doc_type,
        number=params.number,
        partner=params.partner,
        date_from=params.date_from,
        date_to=params.date_to,
        close_states=states,
        org_unit=params.org_unit,
        verdict=params.verdict,
        has_quarantined=params.has_quarantined,
        closed_for=params.closed_for,
        open_for=params.open_for,
    )
    qs = document_queue(f).filter(visible_scope(caller(request), Perm.DOCUMENT_VIEW, f.doc_type))
    after = cursor_value(params.cursor)
    if after is not None:
        qs = qs.filter(pk__lt=after)
    page = list(qs.select_related("org_unit", "partner", "company__unit")[: params.limit + 1])
    more = len(page) > params.limit
    page = page[: params.limit]
    open_ids = [d.pk for d in page if d.close_state == CloseState.OPEN]
    verdicts = verdicts_for(open_ids, doc_type=f.doc_type) if open_ids else {}
    items = [
        present.document_summary(d, verdicts[d.pk].verdict if d.pk in verdicts else None)
        for d in page
    ]
    return {"items": items, "next_cursor": str(page[-1].pk) if more else None}


@router.get("/{doc_type}/{number}", response={200: DocumentOut, **ERRORS}, summary="One document")
def document_detail(
    request: HttpRequest, doc_type: str, number: str, response: HttpResponse, company: str = ""
) -> Any:
    document = _viewable(request, doc_type, number, company)
    checklist = close_checklist_for(document) if document.close_state == CloseState.OPEN else None
    response["ETag"] = etag(document.version)
    return present.document_out(document, checklist)


@router.put(
    "/{doc_type}/{number}",
    response={200: DocumentOut, 201: DocumentOut, **ERRORS},
    summary="Create or update a document from the ERP",
)
def document_put(
    request: HttpRequest, doc_type: str, number: str, payload: DocumentIn, response: HttpResponse
) -> Any:

    document, created = document_sync(
        actor=caller(request),
        doc_type=doc_type,
        number=number,
        org_unit=payload.org_unit,
        document_date=payload.document_date,
        expected_date=payload.expected_date,
        partner=payload.partner,
        currency=payload.currency,
        exchange_rate=Decimal(payload.exchange_rate) if payload.exchange_rate else None,
        source_system=payload.source_system,
        external_id=payload.external_id,
        if_match=if_match_version(request),
        lines=[line_data(line) for line in payload.lines],
    )
    document = document_get(doc_type, number, company=document.company.code)
    response["ETag"] = etag(document.version)
    return Status(201 if created else 200, present.document_out(document, None))


def line_data(line: LineIn) -> LineData:
    """A line as sent to the upsert (PUT and the bulk endpoint)."""
    return LineData(
        line_no=line.line_no,
        planned_qty=Decimal(line.planned_qty),
        unit_price=Decimal(line.unit_price),
        planned_amount=Decimal(line.planned_amount) if line.planned_amount else None,
        item=line.item,
        item_name=line.item_name,
        description=line.description,
        unit=line.unit,
    )


@router.get(
    "/{doc_type}/{number}/checklist",
    response={200: ChecklistOut, **ERRORS},
    summary="Pre-close checklist (dry run: changes nothing)",
)
def document_checklist(
    request: HttpRequest,
    doc_type: str,
    number: str,
    for_auto: bool = False,
    reason: str = "",
    company: str = "",
) -> Any:
    """With `for_auto` false, also the risk warnings of a manual close by the caller with the
    close `reason` (when given)."""
    document = _viewable(request, doc_type, number, company)
    if for_auto:
        return present.checklist_out(close_checklist_for(document, for_auto=True))
    checklist = close_checklist_with_risks(document, actor=caller(request), reason_code=reason)
    return present.checklist_out(checklist)


@router.post(
    "/{doc_type}/{number}/close", response={200: CloseOut, **ERRORS}, summary="Close directly"
)
def document_close_direct(
    request: HttpRequest,
    doc_type: str,
    number: str,
    payload: CloseIn,
    response: HttpResponse,
    company: str = "",
) -> Any:
    document = _viewable(request, doc_type, number, company)
    result = document_close(
        actor=caller(request),
        expected_version=if_match_version(request),
        document=document,
        reason_code=payload.reason,
        remark=payload.remark,
        close_date=payload.close_date,
        line_nos=payload.line_nos,
    )
    closed = document_get(doc_type, number, company=document.company.code)
    response["ETag"] = etag(closed.version)
    return CloseOut(
        document=present.document_summary(closed),
        lines_closed=result.lines_closed,
        header_closed=result.header_closed,
        released_value=present.s(result.released_value),
    )


@router.post(
    "/{doc_type}/{number}/close-requests",
    response={201: RequestOut, **ERRORS},
    summary="Submit a close request (executes at once when no approval route applies)",
)
def close_request_create(
    request: HttpRequest, doc_type: str, number: str, payload: CloseIn, company: str = ""
) -> Any:
    document = _viewable(request, doc_type, number, company)
    close_request = close_request_submit(
        actor=caller(request),
        expected_version=if_match_version(request),
        document=document,
        reason_code=payload.reason,
        remark=payload.remark,
        close_date=payload.close_date,
        line_nos=payload.line_nos,
    )
    return Status(201, present.request_out(close_request))


@router.post(
    "/{doc_type}/{number}/reopen-requests",
    response={201: RequestOut, **ERRORS},
    summary="Submit a reopen request (反结案申请)",
)
def reopen_request_create(
    request: HttpRequest, doc_type: str, number: str, payload: ReopenRequestIn, company: str = ""
) -> Any:
    document = _viewable(request, doc_type, number, company)
    reopen_request = reopen_request_submit(
        actor=caller(request),
        document=document,
        reason_code=payload.reason,
        remark=payload.remark,
        expected_version=if_match_version(request),
    )
    return Status(201, present.request_out(reopen_request))


@router.get(
    "/{doc_type}/{number}/audit",
    response={200: list[AuditEventOut], **ERRORS},
    summary="Audit trail of one document",
)
def document_audit(request: HttpRequest, doc_type: str, number: str, company: str = "") -> Any:
    document = _viewable(request, doc_type, number, company)
    require(
        caller(request),
        Perm.AUDIT_VIEW,
        org_unit=document.org_unit,
        doc_type=doc_type,
        what=document.label,
    )
    return [audit_row(e) for e in audit_events_for(AuditObject.DOCUMENT, document.pk)]
