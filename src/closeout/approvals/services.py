"""Close and reopen requests through approval routes (S9, S12), with separation of duties
(S14). Each decision is recorded per step; the last approval executes the close or reopen in
the same transaction, re-checking the blocking rules at that moment."""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_noop, pgettext_lazy

from closeout.access.permissions import Perm
from closeout.access.selectors import user_has_role
from closeout.access.services import require
from closeout.approvals.models import (
    ApprovalDecision,
    ApprovalRoute,
    Attachment,
    CloseRequest,
    Decision,
    RequestAction,
    RequestState,
)
from closeout.approvals.selectors import (
    approvers_for,
    period_is_closed,
    route_choose,
)
from closeout.audit.models import AuditAction, AuditObject
from closeout.audit.services import AuditEntry, audit_append, audit_record, to_json_value
from closeout.closing.models import ReasonAction
from closeout.closing.risk import close_risks_for
from closeout.closing.selectors import (
    Checklist,
    RuleCheck,
    close_checklist_for,
    close_preview_for,
)
from closeout.closing.services import (
    check_closable,
    close_date_check,
    describe_failure,
    document_lock_for,
    execute_close,
    execute_reopen,
    named,
    reason_get,
    remark_check,
    selected_lines,
)
from closeout.closing.states import STATE_LABELS, Action, in_both_languages, next_state
from closeout.closing.transitions import document_state_set, lines_state_set
from closeout.core.errors import (
    DomainError,
    InvalidInput,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    RuleFailed,
    bilingual_join,
    bilingual_label,
    code_words,
)
from closeout.documents.models import CloseState, Document, Line
from closeout.documents.services import document_lock
from closeout.notifications.services import notify, webhook_emit

# --- attachments ---------------------------------------------------------------------------

ATTACHMENT_TYPES: dict[str, tuple[str, tuple[bytes, ...]]] = {
    # extension: (content type, accepted leading bytes; empty = plain text)
    "pdf": ("application/pdf", (b"%PDF-",)),
    "png": ("image/png", (b"\x89PNG\r\n\x1a\n",)),
    "jpg": ("image/jpeg", (b"\xff\xd8\xff",)),
    "jpeg": ("image/jpeg", (b"\xff\xd8\xff",)),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", (b"PK\x03\x04",)),
    "docx": (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        (b"PK\x03\x04",),
    ),
    "csv": ("text/csv", ()),
    "txt": ("text/plain", ()),
}


def _attachment_check(name: str, content: bytes) -> str:
    limit = int(getattr(settings, "CLOSEOUT_ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024))
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if extension not in ATTACHMENT_TYPES:
        raise InvalidInput(
            gettext_noop(
                "attachment '%(name)s': type .%(value)s is not allowed; allowed: %(list)s"
            ),
            details={"field": "attachments", "name": name},
            params={
                "name": name,
                "value": extension or "?",
                "list": ", ".join(f".{e}" for e in ATTACHMENT_TYPES),
            },
        )
    if not content:
        raise InvalidInput(
            gettext_noop("attachment '%(name)s' is empty"),
            details={"field": "attachments"},
            params={"name": name},
        )
    if len(content) > limit:
        raise InvalidInput(
            gettext_noop("attachment '%(name)s' is %(count)s bytes; the limit is %(limit)s"),
            details={"field": "attachments", "name": name},
            params={"name": name, "count": format(len(content), ","), "limit": format(limit, ",")},
        )
    content_type, magic = ATTACHMENT_TYPES[extension]
    if magic and not content.startswith(magic):
        raise InvalidInput(
            gettext_noop("attachment '%(name)s' is not really a .%(extension)s file"),
            details={"field": "attachments", "name": name},
            params={"name": name, "extension": extension},
        )
    if not magic:
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                text = content.decode("gb18030")
            except UnicodeDecodeError as exc:
                raise InvalidInput(
                    gettext_noop("attachment '%(name)s' is not a text file"),
                    details={"field": "attachments"},
                    params={"name": name},
                ) from exc
        if "\x00" in text:
            raise InvalidInput(
                gettext_noop("attachment '%(name)s' is not a text file"), params={"name": name}
            )
    return content_type


def _attachments_store(
    request: CloseRequest, actor: AbstractBaseUser, files: list[tuple[str, bytes]]
) -> list[Attachment]:
    # Check every file before writing any: a bad file must not leave the good ones on disk.
    checked = [(name, content, _attachment_check(name, content)) for name, content in files]
    stored = []
    for name, content, content_type in checked:
        attachment = Attachment(
            request=request,
            original_name=name[:200],
            content_type=content_type,
            size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
            uploaded_by_id=actor.pk,
        )
        attachment.file.save(name, ContentFile(content), save=False)
        attachment.save()
        stored.append(attachment)
    return stored


# --- submission ----------------------------------------------------------------------------


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


def _request_data(request: CloseRequest, **extra: Any) -> dict[str, Any]:
    return {
        "request": request.pk,
        "action": request.action,
        "round": request.round,
        "route": request.route.name if request.route else None,
        "lines": request.line_nos,
        **extra,
    }


def _emit(event: str, request: CloseRequest, **extra: Any) -> None:
    document = request.document
    webhook_emit(
        event=event,
        payload={
            "request": request.pk,
            "action": request.action,
            "state": request.state,
            "document": {
                "type": document.doc_type,
                "number": document.number,
                "close_state": document.close_state,
            },
            **extra,
        },
    )


def _notify_context(request: CloseRequest, **extra: Any) -> dict[str, Any]:
    step = request.step or {}
    return {
        "request_id": request.pk,
        "document": request.document.label,
        "action": request.action,
        "requester": request.requester.get_username(),
        "reason": request.reason_code,
        "step": step.get("name", ""),
        **extra,
    }


def _link(request: CloseRequest) -> str:
    return f"/requests/{request.pk}/"


def _mark_pending(document: Document, action: str, line_nos: list[int] | None) -> None:
    now = timezone.now()
    if action == RequestAction.REOPEN:
        document_state_set(document, Action.REQUEST_REOPEN, now=now)
    elif line_nos is None:
        document_state_set(document, Action.REQUEST_CLOSE, now=now)
    else:
        lines = selected_lines(document, line_nos, Action.REQUEST_CLOSE)
        lines_state_set(
            Line.objects.filter(pk__in=[line.pk for line in lines]), Action.REQUEST_CLOSE
        )
        Document.objects.filter(pk=document.pk).update(version=F("version") + 1)


# The action that ends a pending request without executing it: (request action, ended state).
_ENDING_ACTIONS = {
    (RequestAction.CLOSE, RequestState.REJECTED): Action.REJECT_CLOSE,
    (RequestAction.CLOSE, RequestState.WITHDRAWN): Action.WITHDRAW_CLOSE,
    (RequestAction.REOPEN, RequestState.REJECTED): Action.REJECT_REOPEN,
    (RequestAction.REOPEN, RequestState.WITHDRAWN): Action.WITHDRAW_REOPEN,
}


def _unmark_pending(document: Document, request: CloseRequest, action: Action) -> None:
    """Back to where the request found the document (`action`: rejected or withdrawn)."""
    if request.action == RequestAction.CLOSE and request.line_nos is not None:
        lines = selected_lines(document, request.line_nos, action)
        lines_state_set(Line.objects.filter(pk__in=[line.pk for line in lines]), action)
        Document.objects.filter(pk=document.pk).update(version=F("version") + 1)
        return
    document_state_set(document, action, now=timezone.now())


def request_matches_document(request: CloseRequest, document: Document) -> bool:
    """Invariant 7: a pending request exists exactly while its document (or its lines) waits in
    the matching pending state."""
    if request.action == RequestAction.REOPEN:
        return document.close_state == CloseState.REOPEN_PENDING
    if request.line_nos is None:
        return document.close_state == CloseState.CLOSE_PENDING
    pending = set(
        Line.objects.filter(
            document_id=document.pk, close_state=CloseState.CLOSE_PENDING
        ).values_list("line_no", flat=True)
    )
    return (
        document.close_state in (CloseState.OPEN, CloseState.ON_HOLD)
        and set(request.line_nos) <= pending
    )


_DOINGS = {
    "approved": pgettext_lazy("request decision", "approved"),
    "rejected": pgettext_lazy("request decision", "rejected"),
    "withdrawn": pgettext_lazy("request decision", "withdrawn"),
}


def _check_request_current(request: CloseRequest, document: Document, doing: str) -> None:
    """Refuse to decide, withdraw or resubmit a request whose document has moved on."""
    if request_matches_document(request, document):
        return
    en, zh = in_both_languages(
        "request #%(request)s no longer matches %(document)s, which is now %(state)s: it "
        "cannot be %(doing)s",
        request=request.pk,
        document=document.label,
        state=STATE_LABELS.get(document.close_state, document.close_state),
        doing=_DOINGS[doing],
    )
    raise InvalidTransition(
        en,
        details={
            "request": request.pk,
            "state": document.close_state,
            "message_zh": zh,
        },
    )


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
    _attachments_store(request, actor, attachments)
    if route is None:
        # No approval configured for this close: it executes now, as the requester's close.
        assert checklist is not None  # noqa: S101 (reopen always has a route)
        return _execute(actor, request, document, now, pending=False)
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
    _mark_pending(document, request.action, request.line_nos)
    document.refresh_from_db()
    close = request.action == RequestAction.CLOSE
    audit_append(
        actor=actor,
        entries=[
            AuditEntry(
                action=AuditAction.CLOSE_REQUESTED if close else AuditAction.REOPEN_REQUESTED,
                object_type=AuditObject.DOCUMENT,
                object_id=document.pk,
                object_repr=document.label,
                data=_request_data(
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
        kind="request_submitted",
        context=_notify_context(request),
        link=_link(request),
    )
    _emit("request.submitted", request, **({"resubmitted": True} if "resubmitted" in data else {}))
    return request


# --- decisions -----------------------------------------------------------------------------


def _lock_request(request_id: int) -> CloseRequest:
    request = CloseRequest.objects.select_for_update(no_key=True).filter(pk=request_id).first()
    if request is None:
        raise NotFound(
            gettext_noop("no close request #%(request_id)s"),
            details={"request": request_id},
            params={"request_id": request_id},
        )
    return request


def _lock_request_and_document(request_id: int) -> tuple[CloseRequest, Document]:
    """Lock a request's document, then the request: every writer takes documents before the
    rows that hang off them, so two writers never wait on each other in a cycle."""
    document_id = (
        CloseRequest.objects.filter(pk=request_id).values_list("document_id", flat=True).first()
    )
    if document_id is None:
        raise NotFound(
            gettext_noop("no close request #%(request_id)s"),
            details={"request": request_id},
            params={"request_id": request_id},
        )
    document = document_lock(document_id)
    request = _lock_request(request_id)
    request.document = document
    return request, document


def _check_decider(actor: AbstractBaseUser, request: CloseRequest) -> dict[str, Any]:
    """Separation of duties and the step's role; returns the current step."""
    if request.state != RequestState.PENDING:
        raise InvalidTransition(
            gettext_noop("request #%(id)s is %(state)s; only pending requests can be decided"),
            params={"id": request.pk, "state": bilingual_label(RequestState(request.state).label)},
            details={"state": request.state},
        )
    if actor.pk == request.requester_id:
        raise PermissionDenied(
            gettext_noop("separation of duties: nobody decides their own request (#%(id)s)"),
            params={"id": request.pk},
            details={"rule": "no_self_approval"},
        )
    step = request.step
    if step is None:
        raise InvalidTransition(
            gettext_noop("request #%(request)s has no step %(current_step)s"),
            params={"request": request.pk, "current_step": request.current_step},
        )
    other_steps = ApprovalDecision.objects.filter(request=request, decider_id=actor.pk).exclude(
        step_order=step["order"]
    )
    if other_steps.exists():
        raise PermissionDenied(
            gettext_noop(
                "separation of duties: %(actor)s already decided another step of request "
                "#%(request)s; one person decides one step"
            ),
            details={"rule": "one_step_per_person"},
            params={"actor": actor.get_username(), "request": request.pk},
        )
    document = request.document
    perm = Perm.CLOSE_APPROVE if request.action == RequestAction.CLOSE else Perm.REOPEN_APPROVE
    require(
        actor,
        perm,
        org_unit=document.org_unit,
        doc_type=document.doc_type,
        what=f"request #{request.pk}",
    )
    if not user_has_role(
        actor, str(step["role"]), org_unit=document.org_unit, doc_type=document.doc_type
    ):
        raise PermissionDenied(
            gettext_noop(
                "step '%(name)s' of request #%(request)s needs the role '%(role)s', which "
                "%(actor)s does not hold for %(document)s"
            ),
            details={"permission": f"role:{step['role']}"},
            params={
                "name": step["name"],
                "request": request.pk,
                "role": step["role"],
                "actor": actor.get_username(),
                "document": document.in_words,
            },
        )
    return step


def _record_decision(
    actor: AbstractBaseUser,
    request: CloseRequest,
    step: dict[str, Any],
    decision: str,
    comment: str,
    now: Any,
) -> ApprovalDecision:
    remark_check(comment, field="comment")
    try:
        with transaction.atomic():
            return ApprovalDecision.objects.create(
                request=request,
                round=request.round,
                step_order=step["order"],
                step_name=step["name"],
                decider_id=actor.pk,
                decision=decision,
                comment=comment,
                decided_at=now,
            )
    except IntegrityError as exc:
        raise InvalidTransition(
            gettext_noop("step '%(step)s' of request #%(id)s was already decided"),
            params={"step": step["name"], "id": request.pk},
            details={"request": request.pk},
        ) from exc


def close_request_approve(
    *, actor: AbstractBaseUser, request: CloseRequest, comment: str = ""
) -> CloseRequest:
    """Approve the current step; the last approval executes the close or reopen. If a
    blocking rule fails at that moment, nothing is approved, the refusal is recorded and the
    requester told, and RuleFailed is raised."""
    try:
        return _approve(actor, request.pk, comment)
    except RuleFailed as refusal:
        _record_refusal(actor, request.pk, refusal)
        raise


@transaction.atomic
def _approve(actor: AbstractBaseUser, request_id: int, comment: str) -> CloseRequest:
    request, document = _lock_request_and_document(request_id)
    step = _check_decider(actor, request)
    _check_request_current(request, document, "approved")
    now = timezone.now()
    _record_decision(actor, request, step, Decision.APPROVE, comment, now)
    is_last = step["order"] >= max(int(s["order"]) for s in request.steps)
    audit_append(
        actor=actor,
        entries=[
            AuditEntry(
                action=AuditAction.APPROVAL_DECIDED,
                object_type=AuditObject.CLOSE_REQUEST,
                object_id=request.pk,
                object_repr=f"{request.action} {document.label}",
                data=_request_data(
                    request,
                    step=step["name"],
                    decision=Decision.APPROVE,
                    comment=comment,
                    last=is_last,
                ),
                request_id=str(request.pk),
            )
        ],
        at=now,
    )
    if not is_last:
        # Steps may be numbered with gaps (10, 20, …): the next one is the next higher order.
        request.current_step = min(
            int(s["order"]) for s in request.steps if int(s["order"]) > int(step["order"])
        )
        request.step_started_at = now
        request.save(update_fields=["current_step", "step_started_at"])
        notify(
            recipients=approvers_for(request),
            kind="request_submitted",
            context=_notify_context(request),
            link=_link(request),
        )
        notify(
            recipients=[request.requester],
            kind="request_approved",
            context=_notify_context(
                request,
                approver=actor.get_username(),
                step=step["name"],
                next_step=(request.step or {}).get("name", ""),
            ),
            link=_link(request),
        )
        _emit("request.approved", request, step=step["name"])
        return request
    return _execute(actor, request, document, now)


def _execute(
    actor: AbstractBaseUser,
    request: CloseRequest,
    document: Document,
    now: Any,
    *,
    pending: bool = True,
) -> CloseRequest:
    """Carry out an approved request (`pending`: its document or lines wait in the pending
    state) or a route-less one (nothing was marked pending). Runs in the caller's
    transaction."""
    if request.action == RequestAction.CLOSE:
        # A line request's lines wait in close_pending; a document request's lines are open
        # under its close_pending header (a route-less request executes from open).
        waiting = pending and request.line_nos is not None
        line_action = Action.APPROVE_CLOSE if waiting else Action.CLOSE
        lines = selected_lines(document, request.line_nos, line_action)
        checklist = close_checklist_for(
            document,
            line_nos=None if request.line_nos is None else [line.line_no for line in lines],
        )
        blocking = _blocking_now(checklist, request)
        if blocking:
            raise RuleFailed(
                gettext_noop(
                    "request #%(id)s cannot execute: blocking rules now fail for "
                    "%(document)s: %(rules)s"
                ),
                params={
                    "id": request.pk,
                    "document": named(document),
                    "rules": bilingual_join([describe_failure(c) for c in blocking]),
                },
                details={"rules": [c.rule.code for c in blocking], "request": request.pk},
            )
        execute_close(
            actor=actor,
            document=document,
            lines=lines,
            reason=request.reason_code,
            remark=request.remark,
            close_date=request.close_date or timezone.localdate(),
            checklist=checklist,
            request_id=str(request.pk),
            line_action=line_action,
        )
    else:
        execute_reopen(
            actor=actor,
            document=document,
            reason=request.reason_code,
            remark=request.remark,
            request_id=str(request.pk),
            action=Action.APPROVE_REOPEN,
        )
    request.state, request.ended_at, request.last_error = RequestState.EXECUTED, now, ""
    request.save(update_fields=["state", "ended_at", "last_error"])
    document.refresh_from_db()
    watchers = [
        request.requester,
        *(d.decider for d in request.decisions.select_related("decider")),
    ]
    notify(
        recipients=_unique(watchers),
        kind="request_executed",
        context=_notify_context(request, close_state=document.close_state),
        link=_link(request),
    )
    _emit("request.executed", request)
    return request


def _blocking_now(checklist: Checklist, request: CloseRequest) -> list[RuleCheck]:
    """The blocking failures when a request executes; the request's own lines waiting for this
    approval do not count as "pending approval" against it."""
    own = set(request.line_nos or [])
    return [
        c
        for c in checklist.blocking
        if not (c.rule.code == "no_line_on_hold" and own and set(c.failing_lines) <= own)
    ]


def _unique(users: Sequence[AbstractBaseUser]) -> list[AbstractBaseUser]:
    seen: dict[Any, AbstractBaseUser] = {}
    for user in users:
        seen.setdefault(user.pk, user)
    return list(seen.values())


def _record_refusal(actor: AbstractBaseUser, request_id: int, refusal: DomainError) -> None:
    with transaction.atomic():
        request = _lock_request(request_id)
        request.last_error = refusal.message
        request.save(update_fields=["last_error"])
        audit_record(
            actor=actor,
            action=AuditAction.EXECUTION_REFUSED,
            object_type=AuditObject.CLOSE_REQUEST,
            object_id=request.pk,
            object_repr=f"{request.action} {request.document.label}",
            data={"request": request.pk, "error": refusal.message, **refusal.details},
        )
        notify(
            recipients=[request.requester],
            kind="execution_refused",
            context=_notify_context(
                request, error=refusal.message, rules=refusal.details.get("rules") or []
            ),
            link=_link(request),
        )


def _end_request(
    actor: AbstractBaseUser,
    request: CloseRequest,
    document: Document,
    state: str,
    now: Any,
    reason: str = "",
    **data: Any,
) -> None:
    """A request rejected or withdrawn: the document goes back to where the request found it,
    with one audit event for that change of state."""
    before = document.close_state
    ending = _ENDING_ACTIONS[(RequestAction(request.action), RequestState(state))]
    _unmark_pending(document, request, ending)
    document.refresh_from_db()
    request.state, request.ended_at = state, now
    request.save(update_fields=["state", "ended_at"])
    close = request.action == RequestAction.CLOSE
    audit_append(
        actor=actor,
        entries=[
            AuditEntry(
                action=AuditAction.CLOSE_REQUEST_ENDED
                if close
                else AuditAction.REOPEN_REQUEST_ENDED,
                object_type=AuditObject.DOCUMENT,
                object_id=document.pk,
                object_repr=document.label,
                data=_request_data(
                    request,
                    **{"from": before, "to": document.close_state},
                    action=ending,
                    state=state,
                    **data,
                ),
                reason=reason,
                request_id=str(request.pk),
            )
        ],
        at=now,
    )


@transaction.atomic
def close_request_reject(
    *, actor: AbstractBaseUser, request: CloseRequest, comment: str
) -> CloseRequest:
    """Reject (驳回) with a comment: the document goes back to where it was; the requester may
    change the request and resubmit."""
    if not comment.strip():
        raise InvalidInput(
            gettext_noop("a rejection needs a comment saying what to change"),
            params={},
            details={"field": "comment"},
        )
    request, document = _lock_request_and_document(request.pk)
    step = _check_decider(actor, request)
    _check_request_current(request, document, "rejected")
    now = timezone.now()
    _record_decision(actor, request, step, Decision.REJECT, comment, now)
    _end_request(
        actor,
        request,
        document,
        RequestState.REJECTED,
        now,
        step=step["name"],
        decision=Decision.REJECT,
        comment=comment,
    )
    notify(
        recipients=[request.requester],
        kind="request_rejected",
        context=_notify_context(request, approver=actor.get_username(), comment=comment),
        link=_link(request),
    )
    _emit("request.rejected", request, comment=comment)
    return request


@transaction.atomic
def close_request_withdraw(
    *, actor: AbstractBaseUser, request: CloseRequest, reason: str = ""
) -> CloseRequest:
    """Withdraw (撤回) a pending request: only its requester can."""
    request, document = _lock_request_and_document(request.pk)
    if actor.pk != request.requester_id:
        raise PermissionDenied(
            gettext_noop("only the requester can withdraw request #%(id)s"),
            params={"id": request.pk},
            details={"rule": "requester_only"},
        )
    if request.state != RequestState.PENDING:
        raise InvalidTransition(
            gettext_noop("request #%(id)s is %(state)s, not pending"),
            params={"id": request.pk, "state": bilingual_label(RequestState(request.state).label)},
        )
    _check_request_current(request, document, "withdrawn")
    now = timezone.now()
    _end_request(actor, request, document, RequestState.WITHDRAWN, now, reason=reason)
    deciders = [d.decider for d in request.decisions.select_related("decider")]
    notify(
        recipients=_unique(deciders),
        kind="request_withdrawn",
        context=_notify_context(request),
        link=_link(request),
    )
    _emit("request.withdrawn", request)
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
    request, document = _lock_request_and_document(request.pk)
    if actor.pk != request.requester_id:
        raise PermissionDenied(
            gettext_noop("only the requester can resubmit request #%(id)s"),
            params={"id": request.pk},
            details={"rule": "requester_only"},
        )
    if request.state != RequestState.REJECTED:
        raise InvalidTransition(
            gettext_noop("request #%(id)s is %(state)s, not rejected"),
            params={"id": request.pk, "state": bilingual_label(RequestState(request.state).label)},
        )
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
    _attachments_store(request, actor, attachments or [])
    if route is None:
        if action == RequestAction.REOPEN:
            raise InvalidTransition(
                gettext_noop("%(document)s: no reopen approval route is configured"),
                params={"document": document.in_words},
            )
        return _execute(actor, request, document, now, pending=False)
    return _enter_pending(
        actor,
        request,
        document,
        now,
        exception=exception,
        open_value=open_value,
        resubmitted=True,
    )


def attachment_add(
    *, actor: AbstractBaseUser, request: CloseRequest, name: str, content: bytes
) -> Attachment:
    """Add a file to a pending or rejected request (requester only)."""
    with transaction.atomic():
        request = _lock_request(request.pk)
        if actor.pk != request.requester_id:
            raise PermissionDenied(
                gettext_noop("only the requester can add files to request #%(request)s"),
                params={"request": request.pk},
            )
        if request.state not in (RequestState.PENDING, RequestState.REJECTED):
            raise InvalidTransition(
                gettext_noop("request #%(request)s is %(state)s"),
                params={
                    "request": request.pk,
                    "state": code_words(request.state, RequestState(request.state).label),
                },
            )
        attachment = _attachments_store(request, actor, [(name, content)])[0]
        audit_record(
            actor=actor,
            action=AuditAction.ATTACHMENT_ADDED,
            object_type=AuditObject.CLOSE_REQUEST,
            object_id=request.pk,
            object_repr=f"{request.action} #{request.pk}",
            data={
                "name": attachment.original_name,
                "size": attachment.size,
                "sha256": attachment.sha256,
            },
        )
        return attachment


# --- batches -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchItemResult:
    request_id: int
    ok: bool
    state: str
    message: str


def close_requests_decide_batch(
    *, actor: AbstractBaseUser, request_ids: list[int], decision: str, comment: str = ""
) -> list[BatchItemResult]:
    """Batch approve or reject (批量审批): each request in its own transaction, each with its
    own result; one failure does not stop the others."""
    if decision not in Decision.values:
        raise InvalidInput(
            gettext_noop("unknown decision '%(decision)s'"),
            details={"field": "decision"},
            params={"decision": decision},
        )
    if decision == Decision.REJECT and not comment.strip():
        raise InvalidInput(
            gettext_noop("a batch rejection needs a comment"),
            params={},
            details={"field": "comment"},
        )
    results: list[BatchItemResult] = []
    for request_id in request_ids:
        try:
            request = CloseRequest.objects.get(pk=request_id)
            if decision == Decision.APPROVE:
                done = close_request_approve(actor=actor, request=request, comment=comment)
            else:
                done = close_request_reject(actor=actor, request=request, comment=comment)
            results.append(BatchItemResult(request_id, True, done.state, ""))
        except CloseRequest.DoesNotExist:
            results.append(
                BatchItemResult(request_id, False, "", f"no close request #{request_id}")
            )
        except DomainError as error:
            state = CloseRequest.objects.filter(pk=request_id).values_list("state", flat=True)
            results.append(BatchItemResult(request_id, False, next(iter(state), ""), error.message))
    return results


def approvals_overdue_notify(*, now: Any = None) -> int:
    """Periodic: tell the approvers of steps waiting longer than their SLA, once per step."""
    from datetime import timedelta

    moment = now or timezone.now()
    count = 0
    for request in CloseRequest.objects.filter(state=RequestState.PENDING).select_related(
        "document", "document__org_unit", "requester"
    ):
        step = request.step
        if step is None or request.overdue_notified_step >= request.current_step:
            continue
        if request.step_started_at + timedelta(hours=int(step["sla_hours"])) > moment:
            continue
        with transaction.atomic():
            CloseRequest.objects.filter(pk=request.pk).update(
                overdue_notified_step=request.current_step
            )
            hours = int((moment - request.step_started_at).total_seconds() // 3600)
            notify(
                recipients=[*approvers_for(request), request.requester],
                kind="approval_overdue",
                context=_notify_context(
                    request, waiting_hours=hours, sla_hours=int(step["sla_hours"])
                ),
                link=_link(request),
            )
        count += 1
    return count


__all__ = [
    "BatchItemResult",
    "approvals_overdue_notify",
    "attachment_add",
    "close_request_approve",
    "close_request_reject",
    "close_request_resubmit",
    "close_request_submit",
    "close_request_withdraw",
    "close_requests_decide_batch",
    "period_is_closed",
    "reopen_request_submit",
]
