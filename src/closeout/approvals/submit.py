"""Submitting close and reopen requests (S9, S12): the checklist and route are snapshotted, the
document (or its lines) waits in the pending state; resubmission and attachments."""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.access.services import require, user_has_perm
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
    active_routes,
    approvers_for,
    route_choose,
)
from closeout.audit.models import AuditAction
from closeout.audit.services import AuditEntry, audit_append, to_json_value
from closeout.closing.models import ReasonAction
from closeout.closing.reasons import reason_get
from closeout.closing.risk import close_risks_for
from closeout.closing.selectors import (
    Checklist,
    close_checklist_for,
    close_preview_for,
)
from closeout.closing.services import (
    check_closable,
    close_date_check,
    close_documents_bulk,
    document_lock_for,
    named,
    remark_check,
    selected_lines,
)
from closeout.closing.states import Action, next_state
from closeout.core.errors import (
    DomainError,
    InvalidInput,
    InvalidTransition,
)
from closeout.core.notice_kinds import NoticeKind
from closeout.core.rows import rows_insert
from closeout.core.sql import ids_param
from closeout.documents.entries import document_entry
from closeout.documents.lookup import document_lock
from closeout.documents.models import CloseKind, CloseState, Document, Line
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
    checked = _close_checks(
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


@dataclass
class _CloseChecked:
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


def _close_checks(
    actor: AbstractBaseUser,
    document: Document,
    reason: str,
    remark: str,
    close_date: date | None,
    line_nos: list[int] | None,
    *,
    routes: list[ApprovalRoute] | None,
) -> _CloseChecked:
    """The checks of a close request on a locked document whose permission, state and reason
    were checked: remark, close date, the checklist and risks, the route (from `routes` when
    given), and the policy's demand for approval."""
    remark_check(remark)
    chosen_date = close_date_check(close_date, document)
    checklist, open_value, lines = _evaluate_close(
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
    return _CloseChecked(
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


@dataclass(frozen=True)
class CloseRequestItem:
    """One close request of a bulk submit (`close_requests_submit`)."""

    document: Document
    reason_code: str
    remark: str = ""
    close_date: date | None = None
    line_nos: list[int] | None = None


class _Bulk:
    """What the requests of one bulk submit share: the actor's permission per organisation
    unit and type, the reasons, the close routes and their steps."""

    def __init__(self, actor: AbstractBaseUser) -> None:
        self.actor = actor
        self.routes = active_routes(RequestAction.CLOSE)
        self._perms: dict[tuple[int, str], bool] = {}
        self._reasons: dict[tuple[str, int], str | DomainError] = {}
        self._steps: dict[int, list[dict[str, Any]]] = {}

    def require(self, document: Document) -> None:
        key = (document.org_unit_id, document.doc_type)
        if key not in self._perms:
            self._perms[key] = user_has_perm(
                self.actor,
                Perm.CLOSE_REQUEST,
                org_unit=document.org_unit,
                doc_type=document.doc_type,
            )
        if not self._perms[key]:  # refused: the single check says so in its own words
            require(
                self.actor,
                Perm.CLOSE_REQUEST,
                org_unit=document.org_unit,
                doc_type=document.doc_type,
                what=document.label,
            )

    def reason(self, code: str, company_id: int) -> str:
        """The reason `code` for a document of the company (per company: codes can be)."""
        key = (code, company_id)
        if key not in self._reasons:
            try:
                self._reasons[key] = reason_get(
                    code, ReasonAction.CLOSE, company_id=company_id
                ).code
            except DomainError as error:
                self._reasons[key] = error
        found = self._reasons[key]
        if isinstance(found, DomainError):
            raise found
        return found

    def steps(self, route: ApprovalRoute | None) -> list[dict[str, Any]]:
        if route is None:
            return []
        if route.pk not in self._steps:
            self._steps[route.pk] = _steps_snapshot(route)
        return self._steps[route.pk]


@transaction.atomic
def close_requests_submit(
    *, actor: AbstractBaseUser, items: Sequence[CloseRequestItem]
) -> list[CloseRequest | DomainError]:
    """Submit many close requests at once, each all-or-nothing with the checks, records and
    audit events of `close_request_submit`: the result per item is its request (executed at
    once where no route applies) or the DomainError that refused it. The documents are locked
    once, in id order; permissions, reasons and routes are read once; the request records are
    inserted together (COPY on PostgreSQL). A document named again after its first item is
    submitted one by one after the others, so it sees what the first one did."""
    results: list[CloseRequest | DomainError | None] = [None] * len(items)
    ids = sorted({item.document.pk for item in items})
    documents = {
        d.pk: d
        for d in Document.objects.select_for_update(of=("self",), no_key=True)
        .select_related("org_unit")
        .filter(pk__in=ids)
        .order_by("pk")
    }
    bulk = _Bulk(actor)
    checked: list[tuple[int, _CloseChecked]] = []
    again: list[int] = []
    seen: set[int] = set()
    for i, item in enumerate(items):
        if item.document.pk in seen:
            again.append(i)
            continue
        seen.add(item.document.pk)
        try:
            with transaction.atomic():  # a savepoint: the line locks of a refused item go
                checked.append((i, _bulk_check(bulk, documents, item)))
        except DomainError as error:
            results[i] = error
    now = timezone.now()
    requests = [_bulk_record(bulk, c, now) for _i, c in checked]
    rows_insert(requests)
    routeless: list[tuple[int, _CloseChecked, CloseRequest]] = []
    for (i, c), request in zip(checked, requests, strict=True):
        if c.route is None:
            routeless.append((i, c, request))
        else:
            results[i] = _bulk_pending(actor, c, request, now)
    for i, result in _bulk_close(actor, routeless, now).items():
        results[i] = result
    for i in again:
        item = items[i]
        try:
            results[i] = close_request_submit(
                actor=actor,
                document=item.document,
                reason_code=item.reason_code,
                remark=item.remark,
                close_date=item.close_date,
                line_nos=item.line_nos,
            )
        except DomainError as error:
            results[i] = error
    return [r for r in results if r is not None]


def _bulk_check(
    bulk: _Bulk, documents: dict[int, Document], item: CloseRequestItem
) -> _CloseChecked:
    document = documents.get(item.document.pk) or document_lock(item.document.pk)
    bulk.require(document)
    next_state(named(document), document.close_state, Action.REQUEST_CLOSE)
    return _close_checks(
        bulk.actor,
        document,
        bulk.reason(item.reason_code, document.company_id),
        item.remark,
        item.close_date,
        item.line_nos,
        routes=bulk.routes,
    )


def _bulk_record(bulk: _Bulk, checked: _CloseChecked, now: Any) -> CloseRequest:
    """The request record of a checked item; a route-less one is recorded executed, as its
    close follows in the same transaction (or the record goes again with a refused close)."""
    steps = bulk.steps(checked.route)
    request = CloseRequest(
        document=checked.document,
        action=RequestAction.CLOSE,
        line_nos=checked.line_nos,
        reason_code=checked.reason,
        remark=checked.remark,
        close_date=checked.close_date,
        requester_id=bulk.actor.pk,
        route=checked.route,
        steps=steps,
        current_step=_first_step(steps),
        exception=checked.exception,
        open_value=checked.open_value,
        checklist=_checklist_snapshot(checked.checklist),
        submitted_at=now,
        step_started_at=now,
    )
    # The requester is known: its notifications need not read it again.
    request._state.fields_cache["requester"] = bulk.actor
    if checked.route is None:
        request.state, request.ended_at = RequestState.EXECUTED, now
    return request


def _bulk_pending(
    actor: AbstractBaseUser, checked: _CloseChecked, request: CloseRequest, now: Any
) -> CloseRequest | DomainError:
    """Put a routed request's document (or lines) into the pending state, as a single submit
    does; a refusal removes the request record again."""
    try:
        with transaction.atomic():  # a savepoint: the item all-or-nothing
            return _enter_pending(
                actor,
                request,
                checked.document,
                now,
                exception=checked.exception,
                open_value=checked.open_value,
                attachments=0,
            )
    except DomainError as error:
        CloseRequest.objects.filter(pk=request.pk).delete()
        return error


def _bulk_close(
    actor: AbstractBaseUser,
    members: list[tuple[int, _CloseChecked, CloseRequest]],
    now: Any,
) -> dict[int, CloseRequest | DomainError]:
    """Execute the route-less requests at once, set-based: their lines (checked just now,
    under the same locks) close in one go per (type, reason, remark, date), a header with its
    last line, and each document gets the audit event a single request's close records."""
    groups: dict[tuple[str, str, str, date], list[tuple[int, _CloseChecked, CloseRequest]]]
    groups = defaultdict(list)
    for member in members:
        c = member[1]
        groups[(c.document.doc_type, c.reason, c.remark, c.close_date)].append(member)
    entries: list[AuditEntry] = []
    changed: dict[int, AuditEntry] = {}
    for (doc_type, reason, remark, day), group in groups.items():
        line_ids = [line.pk for _i, c, _r in group for line in c.lines]
        for entry in close_documents_bulk(
            document_ids=[c.document.pk for _i, c, _r in group],
            doc_type=doc_type,
            kind=CloseKind.MANUAL,
            reason=reason,
            now=now,
            actor=actor,
            remark=remark,
            close_date=day,
            line_ids=line_ids,
        ):
            changed[int(entry.object_id)] = entry
    released = _lines_released([line.pk for _i, c, _r in members for line in c.lines])
    results: dict[int, CloseRequest | DomainError] = {}
    done: list[tuple[_CloseChecked, CloseRequest]] = []
    for i, c, request in members:
        found = changed.get(c.document.pk)
        if found is None:  # nothing closed after all: no request either
            CloseRequest.objects.filter(pk=request.pk).delete()
            results[i] = InvalidInput(
                gettext_noop("%(document)s has no open line to close"),
                params={"document": named(c.document)},
            )
            continue
        c.document.close_state = found.data["to"]
        entries.append(_close_entry(found, c, request, released[c.document.pk]))
        done.append((c, request))
        results[i] = request
    audit_append(actor=actor, entries=entries, at=now)
    for c, request in done:
        notify(
            recipients=[actor],
            kind=NoticeKind.REQUEST_EXECUTED,
            context=notify_context(request, close_state=c.document.close_state),
            link=request_link(request),
        )
        request_emit("request.executed", request)
    return results


def _close_entry(
    entry: AuditEntry, c: _CloseChecked, request: CloseRequest, lines: list[dict[str, Any]]
) -> AuditEntry:
    """The bulk close's audit entry of a document, with what `execute_close` records."""
    data: dict[str, Any] = {
        "from": CloseState.OPEN,
        "to": entry.data["to"],
        "action": Action.CLOSE,
        "kind": CloseKind.MANUAL,
        "close_date": c.close_date,
        "lines": lines,
        "released_value": sum((line["released_value"] for line in lines), Decimal(0)),
        "exceptions": [check.rule.code for check in c.checklist.exceptions],
        "warnings": [check.rule.code for check in c.checklist.warnings],
    }
    if c.remark:
        data["remark"] = c.remark
    entry.data, entry.object_repr = data, c.document.label
    entry.request_id = str(request.pk)
    return entry


def _lines_released(line_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Per document, what each of the closed lines released, in line order."""
    released: dict[int, list[dict[str, Any]]] = defaultdict(list)
    rows = (
        Line.objects.filter(pk__in=ids_param(line_ids))
        .order_by("document_id", "line_no")
        .values_list(
            "document_id", "line_no", "released_qty", "released_value", "released_value_company"
        )
    )
    for doc_id, line_no, qty, value, value_company in rows:
        released[doc_id].append(
            {
                "line": line_no,
                "released_qty": qty,
                "released_value": value,
                "released_value_company": value_company,
            }
        )
    return released


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
        company_id=document.company_id,
    )
    new_remark = request.remark if remark is None else remark
    remark_check(new_remark)
    new_lines = request.line_nos if line_nos is None else line_nos
    checklist: Checklist | None = None
    if action == RequestAction.CLOSE:
        next_state(document.label, document.close_state, Action.REQUEST_CLOSE)
        request.close_date = close_date_check(close_date or request.close_date, document)
        checklist, open_value, _lines = _evaluate_close(
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
    "CloseRequestItem",
    "close_request_resubmit",
    "close_request_submit",
    "close_requests_submit",
    "reopen_request_submit",
]
