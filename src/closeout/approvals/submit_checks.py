"""The checks and records a close or reopen request shares, one request or many: the checklist
and risks at submission, the route's steps, the checks of a close request on its locked document,
and the entry into the pending state."""

from collections.abc import Sequence
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
from closeout.closing.checks_many import CloseCase, close_checklists_for, close_risks_for_many
from closeout.closing.close import lines_chosen, lines_locked
from closeout.closing.close_preview import chosen, close_preview_for, open_lines_of_many, preview_of
from closeout.closing.guards import no_open_line
from closeout.closing.risk import close_risks_for
from closeout.closing.selectors import (
    Checklist,
    close_checklist_for,
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
    DomainError,
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
    exception, route = close_route(document, checklist, open_value, routes=routes)
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


def close_route(
    document: Document,
    checklist: Checklist,
    open_value: Decimal,
    *,
    routes: list[ApprovalRoute] | None,
) -> tuple[bool, ApprovalRoute | None]:
    """Whether the close is an exception, and its approval route (None: none applies);
    refused when the policy demands approval and no route applies."""
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
    return exception, route


@dataclass(frozen=True)
class CloseStart:
    """A close request on a locked document whose permission, state, reason, remark and close
    date passed: what `close_checks_many` checks further."""

    document: Document
    reason: str
    remark: str
    close_date: date
    line_nos: list[int] | None


def close_checks_many(
    actor: AbstractBaseUser, starts: Sequence[CloseStart], *, routes: list[ApprovalRoute]
) -> list[CloseChecked | DomainError]:
    """What `close_checks` gives each request after its start (each document once), in the
    same order of refusals, read set-based: the lines locked in one query, the checklists and
    risks of `closing.checks_many`, the previews from the same open lines."""
    results: list[CloseChecked | DomainError | None] = [None] * len(starts)
    locked = lines_locked([s.document.pk for s in starts])
    chosen_lines: dict[int, list[Line]] = {}
    for n, s in enumerate(starts):
        try:
            lines = lines_chosen(s.document, locked[s.document.pk], s.line_nos, Action.CLOSE)
            if not lines:
                raise no_open_line(named(s.document))
            chosen_lines[n] = lines
        except DomainError as error:
            results[n] = error
    # A document request is checked as a whole, so a held line blocks it (no_line_on_hold).
    checklists = close_checklists_for(
        [
            CloseCase(starts[n].document, None if starts[n].line_nos is None else nos)
            for n, nos in ((n, [x.line_no for x in taken]) for n, taken in chosen_lines.items())
        ]
    )
    for n in list(chosen_lines):
        try:
            check_closable(checklists[starts[n].document.pk], remark=starts[n].remark)
        except DomainError as error:
            results[n] = error
            del chosen_lines[n]
    passed = [(n, starts[n]) for n in chosen_lines]
    opened = open_lines_of_many([s.document for _n, s in passed])
    risks = close_risks_for_many(
        [CloseCase(s.document, s.line_nos, s.reason) for _n, s in passed],
        actor=actor,
        open_lines=opened,
    )
    for n, s in passed:
        checklist, lines = checklists[s.document.pk], chosen_lines[n]
        checklist.risks = risks[s.document.pk]
        taken = chosen(opened.get(s.document.pk, []), [line.line_no for line in lines])
        open_value = preview_of(s.document, [r.as_preview_row() for r in taken])
        value = open_value.released_value_company
        try:
            exception, route = close_route(s.document, checklist, value, routes=routes)
        except DomainError as error:
            results[n] = error
            continue
        results[n] = CloseChecked(
            s.document,
            s.reason,
            s.remark,
            s.close_date,
            s.line_nos,
            lines,
            checklist,
            exception,
            value,
            route,
        )
    return [r for r in results if r is not None]


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
