"""Close dimensions (关闭维度) of a document's lines: close or reopen one dimension (receiving,
invoicing, payment; shipping, invoicing, collection) of some lines."""

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Field, Router, Schema

from closeout.api import present
from closeout.api.routers._common import ERRORS, caller, etag, if_match_version
from closeout.api.schemas import Code, DocumentSummary, In, LineNo, Text
from closeout.closing.dimension_services import line_dimension_close, line_dimension_reopen
from closeout.closing.dimension_writes import DimensionResult
from closeout.documents.models import Document
from closeout.documents.services import document_get, document_get_visible

router = Router(tags=["documents"])


class DimensionCloseIn(In):
    dimension: Code
    reason: Code
    remark: Text = ""
    # Without line numbers: every open line not yet closed in the dimension.
    line_nos: list[LineNo] | None = Field(default=None, max_length=5000)


class DimensionReopenIn(In):
    dimension: Code
    reason: Code
    remark: Text = ""
    line_nos: list[LineNo] = Field(min_length=1, max_length=5000)


class DimensionOut(Schema):
    document: DocumentSummary
    dimension: str
    lines: list[int]
    # Lines whose last open dimension this was: closed as a whole.
    lines_closed: list[int]
    # Released from (close) or given back to (reopen) the on-order / reserved quantity.
    released_qty: str


def _out(result: DimensionResult, document: Document, response: HttpResponse) -> Any:
    document = document_get(document.doc_type, document.number, company=document.company.code)
    response["ETag"] = etag(document.version)
    return DimensionOut(
        document=present.document_summary(document),
        dimension=result.dimension,
        lines=result.lines,
        lines_closed=result.lines_closed,
        released_qty=present.s(result.released_qty),
    )


def _change(
    request: HttpRequest,
    doc_type: str,
    number: str,
    payload: DimensionCloseIn | DimensionReopenIn,
    response: HttpResponse,
    service: Callable[..., DimensionResult],
    company: str,
) -> Any:
    """Close or reopen (`service`) a dimension of a document the caller may see."""
    actor = caller(request)
    document = document_get_visible(actor, doc_type, number, company=company)
    result = service(
        actor=actor,
        document=document,
        dimension=payload.dimension,
        reason_code=payload.reason,
        remark=payload.remark,
        line_nos=payload.line_nos,
        expected_version=if_match_version(request),
    )
    return _out(result, document, response)


@router.post(
    "/{doc_type}/{number}/dimensions/close",
    response={200: DimensionOut, **ERRORS},
    summary="Close one dimension of lines (关闭维度: 收货关闭, 开票关闭 …)",
)
def dimension_close(
    request: HttpRequest,
    doc_type: str,
    number: str,
    payload: DimensionCloseIn,
    response: HttpResponse,
    company: str = "",
) -> Any:
    return _change(request, doc_type, number, payload, response, line_dimension_close, company)


@router.post(
    "/{doc_type}/{number}/dimensions/reopen",
    response={200: DimensionOut, **ERRORS},
    summary="Reopen one dimension of lines",
)
def dimension_reopen(
    request: HttpRequest,
    doc_type: str,
    number: str,
    payload: DimensionReopenIn,
    response: HttpResponse,
    company: str = "",
) -> Any:
    return _change(request, doc_type, number, payload, response, line_dimension_reopen, company)
