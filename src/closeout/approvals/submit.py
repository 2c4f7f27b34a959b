"""Submitting close and reopen requests (S9, S12): the checklist and route are snapshotted, the
document (or its lines) waits in the pending state; resubmission and attachments."""

from datetime import date
from decimal import Decimal
from typing import Any

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
    mark_pending,
    notify_context,
    request_data,
    request_emit,
    request_execute,
    request_link,
    requester_guard,
)
from closeout.approvals.selectors import (
    approvers_for,
    route_choose,
)
from closeout.audit.models import AuditAction
from closeout.audit.services import audit_append, to_json_value
from closeout.closing.models import ReasonAction
from closeout.closing.risk import close_risks_for
from closeout.closing.selectors import (
    Checklist,
    close_checklist_for,
    close_preview_for,
)
from closeout.closing.services import (
    check_closable,
    close_date_check,
    document_lock_for,
    named,
    reason_get,
    remark_check,
    selected_lines,
)
from closeout.closing.states import Action, next_state
from closeout.core.errors import (
    InvalidInput,
    InvalidTransition,
)
from closeout.core.notice_kinds import NoticeKind
from closeout.documents.entries import document_entry
from closeout.documents.models import Document
from closeout.notifications.services import notify


def _checklist_snapshot(checklist: Checklist) -> list[dict[str, Any]]:

    return [
        {
            "rule": c.rule.code,
            "label_zh": c.rule.label_zh,
            "label_en": c.rule.label_en,
            "severity": str(c.severity),
            "passed": c.passed,
            "measured": to_json_value(c.measured),
            "threshold": c.threshold,
            "failing_lines": c.failing_lines,
        }
        for c in checklist.checks
    ] + [
        # The risk warnings (S24) flagged at submission, for the approver: advisory rows in
        # the same shape, told apart by the severity "risk".
        {
            "rule": f"risk:{r.code}",
            "label_zh": r.message_zh,
            "label_en": r.message_en,
            "severity": "risk",
            "passed": False,
            "measured": to_json_value({**r.measured, **r.reference}),
            "threshold": r.threshold,
            "failing_lines": r.lines,
        }
        for r in checklist.risk_flags
    ]


def _steps_snapshot(route: ApprovalRoute) -> list[dict[str, Any]]:
    return [
        {"order": s.order, "name": s.name, "role": s.role.code, "sla_hours": s.sla_hours}
        for s in route.steps.select_related("role").order_by("order")
    ]


def _first_step(steps: list[dict[str, Any]]) -> int:
    return min((int(s["order"]) for s in steps), default=1)


def _evaluate_close(
    document: Document,
    *,
    line_nos: list[int] | None,
    remark: str,
    actor: AbstractBaseUser,
    reason_code: str,
) -> tuple[Checklist, Decimal]:
    lines = selected_lines(document, line_nos, Action.CLOSE)
    if not lines:
        raise InvalidInput(
            gettext_noop("%(document)s has no open line to close"),
            params={"document": named(document)},
        )
    # A document request is checked as a whole, so a held line blocks it (no_line_on_hold).
    checklist = close_checklist_for(
        document, line_nos=None if line_nos is None else [line.line_no for line in lines]
    )
    check_closable(checklist, remark=remark)
    checklist.risks = close_risks_for(
        document, actor=actor, reason_code=reason_code, line_nos=line_nos
    )
    preview = close_preview_for(document, line_nos=[line.line_no for line in lines])
    return checklist, preview.released_value_company


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
    reason = reason_get(reason_code, ReasonAction.CLOSE)
    remark_check(remark)
    chosen_date = close_date_check(close_date, document)
    checklist, open_value = _evaluate_close(
        document, line_nos=line_nos, remark=remark, actor=actor, reason_code=reason.code
    )
    exception = bool(checklist.exceptions)
    route = route_choose(
        document=document, action=RequestAction.CLOSE, exception=exception, open_value=open_value
    )
    if route is None and checklist.policy.direct_close_needs_approval:
        raise InvalidTransition(
            gettext_noop(
                "%(document)s: the policy requires approval but no approval route matches; "
                "ask an administrator to configure one"
            ),
            params={"document": named(document)},
            details={"needs": "approval_route"},
        )
    return _submit(
        actor,
        document,
        RequestAction.CLOSE,
        reason.code,
        remark,
        chosen_date,
        line_nos,
        attachments or [],
        checklist,
        exception,
        open_value,
        route,
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
    reason = reason_get(reason_code, ReasonAction.REOPEN)
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
    steps = _steps_snapshot(route) if route else []
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
        current_step=_first_step(steps),
        exception=exception,
        open_value=open_value,
        checklist=_checklist_snapshot(checklist) if checklist else [],
        submitted_at=now,
        step_started_at=now,
    )
    attachments_store(request, actor, attachments)
    if route is None:
        # No approval configured for this close: it executes now, as the requester's close.
        assert checklist is not None  # noqa: S101 (reopen always has a route)
        return request_execute(actor, request, document, now, pending=False)
    return _enter_pending(
        actor,
        request,
        document,
        now,
        exception=exception,
        open_value=open_value,
        attachments=len(attachments),
    )


def _enter_pending(
    actor: AbstractBaseUser, request: CloseRequest, document: Document, now: Any, **data: Any
) -> CloseRequest:
    """Put the document (or the request's lines) into the pending state, record it, and tell
    the approvers of the first step: the end of a submission and of a resubmission."""
    before = document.close_state
    mark_pending(document, request.action, request.line_nos)
    document.refresh_from_db()
    close = request.action == RequestAction.CLOSE
    audit_append(
        actor=actor,
        entries=[
            document_entry(
                action=AuditAction.CLOSE_REQUESTED if close else AuditAction.REOPEN_REQUESTED,
                document=document,
                data=request_data(
                    request,
                    **{"from": before, "to": document.close_state},
                    action=Action.REQUEST_CLOSE if close else Action.REQUEST_REOPEN,
                    **data,
                ),
                reason=request.reason_code,
                request_id=str(request.pk),
            )
        ],
        at=now,
    )
    notify(
        recipients=approvers_for(request),
        kind=NoticeKind.REQUEST_SUBMITTED,
        context=notify_context(request),
        link=request_link(request),
    )
    request_emit(
        "request.submitted", request, **({"resubmitted": True} if "resubmitted" in data else {})
    )
    return request


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
    )
    new_remark = request.remark if remark is None else remark
    remark_check(new_remark)
    new_lines = request.line_nos if line_nos is None else line_nos
    checklist: Checklist | None = None
    if action == RequestAction.CLOSE:
        next_state(document.label, document.close_state, Action.REQUEST_CLOSE)
        request.close_date = close_date_check(close_date or request.close_date, document)
        checklist, open_value = _evaluate_close(
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
    request.route, request.steps = route, _steps_snapshot(route) if route else []
    request.current_step = _first_step(request.steps)
    request.state, request.ended_at = RequestState.PENDING, None
    request.exception, request.open_value = exception, open_value
    request.checklist = _checklist_snapshot(checklist) if checklist else request.checklist
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
    return _enter_pending(
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
