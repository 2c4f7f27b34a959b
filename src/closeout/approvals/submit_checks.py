"""The checks and records a close or reopen request shares, one request or many: the checklist
and risks at submission, the route's steps, the checks of a close request on its locked document,
and the entry into the pending state."""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.utils.translation import gettext_noop

from closeout.approvals.models import (
    ApprovalRoute,
    CloseRequest,
    RequestAction,
)
from closeout.approvals.requests import (
    mark_pending,
    notify_context,
    request_data,
    request_emit,
    request_link,
)
from closeout.approvals.selectors import (
    approvers_for,
    route_choose,
)
from closeout.audit.models import AuditAction
from closeout.audit.services import audit_append, to_json_value
from closeout.closing.risk import close_risks_for
from closeout.closing.selectors import (
    Checklist,
    close_checklist_for,
    close_preview_for,
)
from closeout.closing.services import (
    check_closable,
    close_date_check,
    named,
    remark_check,
    selected_lines,
)
from closeout.closing.states import Action
from closeout.core.errors import (
    InvalidInput,
    InvalidTransition,
)
from closeout.core.notice_kinds import NoticeKind
from closeout.documents.entries import document_entry
from closeout.documents.models import Document, Line
from closeout.notifications.services import notify


def checklist_snapshot(checklist: Checklist) -> list[dict[str, Any]]:

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


def steps_snapshot(route: ApprovalRoute) -> list[dict[str, Any]]:
    return [
        {"order": s.order, "name": s.name, "role": s.role.code, "sla_hours": s.sla_hours}
        for s in route.steps.select_related("role").order_by("order")
    ]


def first_step(steps: list[dict[str, Any]]) -> int:
    return min((int(s["order"]) for s in steps), default=1)


def evaluate_close(
    document: Document,
    *,
    line_nos: list[int] | None,
    remark: str,
    actor: AbstractBaseUser,
    reason_code: str,
) -> tuple[Checklist, Decimal, list[Line]]:
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
    return checklist, preview.released_value_company, lines


@dataclass
class CloseChecked:
    """A close request that passed its checks: what its record and its close take."""

    document: Document
    reason: str
    remark: str
    close_date: date
    line_nos: list[int] | None
    lines: list[Line]
    checklist: Checklist
    exception: bool
    open_value: Decimal
    route: ApprovalRoute | None


def close_checks(
    actor: AbstractBaseUser,
    document: Document,
    reason: str,
    remark: str,
    close_date: date | None,
    line_nos: list[int] | None,
    *,
    routes: list[ApprovalRoute] | None,
) -> CloseChecked:
    """The checks of a close request on a locked document whose permission, state and reason
    were checked: remark, close date, the checklist and risks, the route (from `routes` when
    given), and the policy's demand for approval."""
    remark_check(remark)
    chosen_date = close_date_check(close_date, document)
    checklist, open_value, lines = evaluate_close(
        document, line_nos=line_nos, remark=remark, actor=actor, reason_code=reason
    )
    exception = bool(checklist.exceptions)
    route = route_choose(
        document=document,
        action=RequestAction.CLOSE,
        exception=exception,
        open_value=open_value,
        routes=routes,
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
    return CloseChecked(
        document,
        reason,
        remark,
        chosen_date,
        line_nos,
        lines,
        checklist,
        exception,
        open_value,
        route,
    )


def enter_pending(
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
