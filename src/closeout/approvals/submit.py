"""Submitting close and reopen requests (S9, S12): the checklist and route are snapshotted, the
document (or its lines) waits in the pending state; resubmission and attachments."""

from datetime import date
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.approvals.attachments import attachments_store
from closeout.approvals.models import (
    ApprovalRoute,
    CloseRequest,
    RequestAction,
    RequestState,
)
from closeout.approvals.requests import (
    lock_request_and_document,
    request_execute,
    requester_guard,
)
from closeout.approvals.selectors import (
    route_choose,
)
from closeout.approvals.submit_checks import (
    checklist_snapshot,
    close_checks,
    enter_pending,
    evaluate_close,
    first_step,
    steps_snapshot,
)
from closeout.closing.models import ReasonAction
from closeout.closing.reasons import reason_get
from closeout.closing.selectors import (
    Checklist,
)
from closeout.closing.services import (
    close_date_check,
    document_lock_for,
    named,
    remark_check,
)
from closeout.closing.states import Action, next_state
from closeout.core.errors import (
    InvalidInput,
    InvalidTransition,
)
from closeout.documents.models import Document


@transaction.atomic
def close_request_submit(
    *,
    actor: AbstractBaseUser,
    document: Document,
    reason_code: str,
    remark: str = "",
    close_date: date | None = None,
    line_nos: list[int] | None = None,
    attachments: list[tuple[str, bytes]] | None = None,
    expected_version: int | None = None,
) -> CloseRequest:
    """Ask for a close (结案申请). With no route matching, the close executes at once."""
    document = document_lock_for(
        actor,
        document,
        Perm.CLOSE_REQUEST,
        action=Action.REQUEST_CLOSE,
        expected_version=expected_version,
    )
    checked = close_checks(
        actor,
        document,
        reason_get(reason_code, ReasonAction.CLOSE, company_id=document.company_id).code,
        remark,
        close_date,
        line_nos,
        routes=None,
    )
    return _submit(
        actor,
        document,
        RequestAction.CLOSE,
        checked.reason,
        remark,
        checked.close_date,
        line_nos,
        attachments or [],
        checked.checklist,
        checked.exception,
        checked.open_value,
        checked.route,
    )


@transaction.atomic
def reopen_request_submit(
    *,
    actor: AbstractBaseUser,
    document: Document,
    reason_code: str,
    remark: str = "",
    attachments: list[tuple[str, bytes]] | None = None,
    expected_version: int | None = None,
) -> CloseRequest:
    """Ask for a reopen (反结案申请): always through a route (S12)."""
    document = document_lock_for(
        actor,
        document,
        Perm.REOPEN_REQUEST,
        action=Action.REQUEST_REOPEN,
        expected_version=expected_version,
    )
    reason = reason_get(reason_code, ReasonAction.REOPEN, company_id=document.company_id)
    remark_check(remark)
    if not remark.strip():
        raise InvalidInput(
            gettext_noop("a reopen request needs a remark explaining why"),
            params={},
            details={"field": "remark"},
        )
    route = route_choose(
        document=document,
        action=RequestAction.REOPEN,
        exception=False,
        open_value=document.released_value_company,
    )
    if route is None:
        raise InvalidTransition(
            gettext_noop(
                "%(document)s: no reopen approval route is configured; a reopen always needs "
                "management approval"
            ),
            params={"document": named(document)},
            details={"needs": "approval_route"},
        )
    return _submit(
        actor,
        document,
        RequestAction.REOPEN,
        reason.code,
        remark,
        None,
        None,
        attachments or [],
        None,
        False,
        document.released_value_company,
        route,
    )


def _submit(
    actor: AbstractBaseUser,
    document: Document,
    action: str,
    reason: str,
    remark: str,
    close_date: date | None,
    line_nos: list[int] | None,
    attachments: list[tuple[str, bytes]],
    checklist: Checklist | None,
    exception: bool,
    open_value: Decimal,
    route: ApprovalRoute | None,
) -> CloseRequest:
    now = timezone.now()
    steps = steps_snapshot(route) if route else []
    request = CloseRequest.objects.create(
        document=document,
        action=action,
        line_nos=line_nos,
        reason_code=reason,
        remark=remark,
        close_date=close_date,
        requester_id=actor.pk,
        route=route,
        steps=steps,
        current_step=first_step(steps),
        exception=exception,
        open_value=open_value,
        checklist=checklist_snapshot(checklist) if checklist else [],
        submitted_at=now,
        step_started_at=now,
    )
    attachments_store(request, actor, attachments)
    if route is None:
        # No approval configured for this close: it executes now, as the requester's close.
        assert checklist is not None  # noqa: S101 (reopen always has a route)
        return request_execute(actor, request, document, now, pending=False)
    return enter_pending(
        actor,
        request,
        document,
        now,
        exception=exception,
        open_value=open_value,
        attachments=len(attachments),
    )


@transaction.atomic
def close_request_resubmit(
    *,
    actor: AbstractBaseUser,
    request: CloseRequest,
    reason_code: str | None = None,
    remark: str | None = None,
    close_date: date | None = None,
    line_nos: list[int] | None = None,
    attachments: list[tuple[str, bytes]] | None = None,
) -> CloseRequest:
    """Resubmit (重新提交) a rejected request with changes: a new round through the route
    chosen now; the decisions of earlier rounds stay on record."""
    request, document = lock_request_and_document(request.pk)
    requester_guard(actor=actor, request=request, doing="resubmit")
    action = request.action
    reason = reason_get(
        reason_code or request.reason_code,
        ReasonAction.CLOSE if action == RequestAction.CLOSE else ReasonAction.REOPEN,
        company_id=document.company_id,
    )
    new_remark = request.remark if remark is None else remark
    remark_check(new_remark)
    new_lines = request.line_nos if line_nos is None else line_nos
    checklist: Checklist | None = None
    if action == RequestAction.CLOSE:
        next_state(document.label, document.close_state, Action.REQUEST_CLOSE)
        request.close_date = close_date_check(close_date or request.close_date, document)
        checklist, open_value, _lines = evaluate_close(
            document, line_nos=new_lines, remark=new_remark, actor=actor, reason_code=reason.code
        )
        exception = bool(checklist.exceptions)
    else:
        next_state(document.label, document.close_state, Action.REQUEST_REOPEN)
        open_value, exception = document.released_value_company, False
    route = route_choose(
        document=document, action=action, exception=exception, open_value=open_value
    )
    now = timezone.now()
    request.reason_code, request.remark, request.line_nos = reason.code, new_remark, new_lines
    request.round += 1
    request.route, request.steps = route, steps_snapshot(route) if route else []
    request.current_step = first_step(request.steps)
    request.state, request.ended_at = RequestState.PENDING, None
    request.exception, request.open_value = exception, open_value
    request.checklist = checklist_snapshot(checklist) if checklist else request.checklist
    request.submitted_at = request.step_started_at = now
    request.overdue_notified_step = 0
    request.save()
    attachments_store(request, actor, attachments or [])
    if route is None:
        if action == RequestAction.REOPEN:
            raise InvalidTransition(
                gettext_noop("%(document)s: no reopen approval route is configured"),
                params={"document": document.in_words},
            )
        return request_execute(actor, request, document, now, pending=False)
    return enter_pending(
        actor,
        request,
        document,
        now,
        exception=exception,
        open_value=open_value,
        resubmitted=True,
    )


__all__ = [
    "close_request_resubmit",
    "close_request_submit",
    "reopen_request_submit",
]
