"""Close and reopen requests: read, approve, reject, withdraw."""

from typing import Any

from django.http import HttpRequest
from ninja import Router

from closeout.access.permissions import Perm
from closeout.access.services import require
from closeout.api import present
from closeout.api.routers._common import ERRORS, caller
from closeout.api.schemas import DecisionIn, RequestOut, WithdrawIn
from closeout.approvals.models import CloseRequest
from closeout.approvals.services import (
    close_request_approve,
    close_request_reject,
    close_request_withdraw,
)
from closeout.core.errors import NotFound

router = Router(tags=["requests"])


def _request(request_id: int) -> CloseRequest:
    found = (
        CloseRequest.objects.select_related("document", "document__org_unit", "requester", "route")
        .filter(pk=request_id)
        .first()
    )
    if found is None:
        raise NotFound(f"no close or reopen request #{request_id}")
    return found


@router.get("/{request_id}", response={200: RequestOut, **ERRORS}, summary="One request")
def request_detail(request: HttpRequest, request_id: int) -> Any:
    found = _request(request_id)
    actor = caller(request)
    if actor.pk != found.requester_id:
        require(
            actor,
            Perm.DOCUMENT_VIEW,
            org_unit=found.document.org_unit,
            doc_type=found.document.doc_type,
            what=f"request #{request_id}",
        )
    return present.request_out(found)


@router.post("/{request_id}/approve", response={200: RequestOut, **ERRORS}, summary="Approve")
def request_approve(request: HttpRequest, request_id: int, payload: DecisionIn) -> Any:
    found = close_request_approve(
        actor=caller(request), request=_request(request_id), comment=payload.comment
    )
    return present.request_out(_request(found.pk))


@router.post("/{request_id}/reject", response={200: RequestOut, **ERRORS}, summary="Reject")
def request_reject(request: HttpRequest, request_id: int, payload: DecisionIn) -> Any:
    found = close_request_reject(
        actor=caller(request), request=_request(request_id), comment=payload.comment
    )
    return present.request_out(_request(found.pk))


@router.post("/{request_id}/withdraw", response={200: RequestOut, **ERRORS}, summary="Withdraw")
def request_withdraw(request: HttpRequest, request_id: int, payload: WithdrawIn) -> Any:
    found = close_request_withdraw(
        actor=caller(request), request=_request(request_id), reason=payload.reason
    )
    return present.request_out(_request(found.pk))
