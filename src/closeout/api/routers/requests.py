"""Close and reopen requests: read, approve, reject, withdraw."""

from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext_noop
from ninja import Router

from closeout.api import present
from closeout.api.routers._common import ERRORS, caller
from closeout.api.schemas import DecisionIn, RequestOut, WithdrawIn
from closeout.approvals.decide import (
    close_request_approve,
    close_request_reject,
    close_request_withdraw,
)
from closeout.approvals.models import CloseRequest
from closeout.approvals.selectors import request_get_visible
from closeout.core.errors import NotFound

router = Router(tags=["requests"])


def _request(request: HttpRequest, request_id: int) -> CloseRequest:
    """The request, when the caller submitted it or may view its document; otherwise (and when
    there is none) the same 404."""
    found = request_get_visible(caller(request), request_id)
    if found is None:
        raise NotFound(
            gettext_noop("no close or reopen request #%(request_id)s"),
            params={"request_id": request_id},
        )
    return found


@router.get("/{request_id}", response={200: RequestOut, **ERRORS}, summary="One request")
def request_detail(request: HttpRequest, request_id: int) -> Any:
    return present.request_out(_request(request, request_id))


@router.post("/{request_id}/approve", response={200: RequestOut, **ERRORS}, summary="Approve")
def request_approve(request: HttpRequest, request_id: int, payload: DecisionIn) -> Any:
    found = close_request_approve(
        actor=caller(request), request=_request(request, request_id), comment=payload.comment
    )
    return present.request_out(_request(request, found.pk))


@router.post("/{request_id}/reject", response={200: RequestOut, **ERRORS}, summary="Reject")
def request_reject(request: HttpRequest, request_id: int, payload: DecisionIn) -> Any:
    found = close_request_reject(
        actor=caller(request), request=_request(request, request_id), comment=payload.comment
    )
    return present.request_out(_request(request, found.pk))


@router.post("/{request_id}/withdraw", response={200: RequestOut, **ERRORS}, summary="Withdraw")
def request_withdraw(request: HttpRequest, request_id: int, payload: WithdrawIn) -> Any:
    found = close_request_withdraw(
        actor=caller(request), request=_request(request, request_id), reason=payload.reason
    )
    return present.request_out(_request(request, found.pk))
