"""Deciding close and reopen requests (S9, S12, S14): approve, reject, withdraw, batch decisions
and overdue escalation. Each decision is recorded per step; the last approval executes the close or
reopen in the same transaction, re-checking the blocking rules at that moment."""

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.access.selectors import user_has_role
from closeout.access.services import require
from closeout.approvals.models import (
    ApprovalDecision,
    CloseRequest,
    Decision,
    RequestAction,
    RequestState,
)
from closeout.approvals.requests import (
    ENDING_ACTIONS,
    check_request_current,
    lock_request,
    lock_request_and_document,
    notify_context,
    request_data,
    request_emit,
    request_execute,
    request_link,
    requester_guard,
    unique_users,
    unmark_pending,
)
from closeout.approvals.selectors import (
    approvers_for,
)
from closeout.audit.models import AuditAction, AuditObject
from closeout.audit.services import AuditEntry, audit_append, audit_record
from closeout.closing.services import (
    remark_check,
)
from closeout.core.errors import (
    DomainError,
    InvalidInput,
    InvalidTransition,
    PermissionDenied,
    RuleFailed,
    bilingual_label,
)
from closeout.core.notice_kinds import NoticeKind
from closeout.documents.entries import document_entry
from closeout.documents.models import Document
from closeout.notifications.services import notify


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
    request, document = lock_request_and_document(request_id)
    step = _check_decider(actor, request)
    check_request_current(request, document, "approved")
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
                data=request_data(
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
            kind=NoticeKind.REQUEST_SUBMITTED,
            context=notify_context(request),
            link=request_link(request),
        )
        notify(
            recipients=[request.requester],
            kind=NoticeKind.REQUEST_APPROVED,
            context=notify_context(
                request,
                approver=actor.get_username(),
                step=step["name"],
                next_step=(request.step or {}).get("name", ""),
            ),
            link=request_link(request),
        )
        request_emit("request.approved", request, step=step["name"])
        return request
    return request_execute(actor, request, document, now)


def _record_refusal(actor: AbstractBaseUser, request_id: int, refusal: DomainError) -> None:
    with transaction.atomic():
        request = lock_request(request_id)
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
            kind=NoticeKind.EXECUTION_REFUSED,
            context=notify_context(
                request, error=refusal.message, rules=refusal.details.get("rules") or []
            ),
            link=request_link(request),
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
    ending = ENDING_ACTIONS[(RequestAction(request.action), RequestState(state))]
    unmark_pending(document, request, ending)
    document.refresh_from_db()
    request.state, request.ended_at = state, now
    request.save(update_fields=["state", "ended_at"])
    close = request.action == RequestAction.CLOSE
    audit_append(
        actor=actor,
        entries=[
            document_entry(
                action=AuditAction.CLOSE_REQUEST_ENDED
                if close
                else AuditAction.REOPEN_REQUEST_ENDED,
                document=document,
                data=request_data(
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
    request, document = lock_request_and_document(request.pk)
    step = _check_decider(actor, request)
    check_request_current(request, document, "rejected")
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
        kind=NoticeKind.REQUEST_REJECTED,
        context=notify_context(request, approver=actor.get_username(), comment=comment),
        link=request_link(request),
    )
    request_emit("request.rejected", request, comment=comment)
    return request


@transaction.atomic
def close_request_withdraw(
    *, actor: AbstractBaseUser, request: CloseRequest, reason: str = ""
) -> CloseRequest:
    """Withdraw (撤回) a pending request: only its requester can."""
    request, document = lock_request_and_document(request.pk)
    requester_guard(actor=actor, request=request, doing="withdraw")
    check_request_current(request, document, "withdrawn")
    now = timezone.now()
    _end_request(actor, request, document, RequestState.WITHDRAWN, now, reason=reason)
    deciders = [d.decider for d in request.decisions.select_related("decider")]
    notify(
        recipients=unique_users(deciders),
        kind=NoticeKind.REQUEST_WITHDRAWN,
        context=notify_context(request),
        link=request_link(request),
    )
    request_emit("request.withdrawn", request)
    return request


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
                kind=NoticeKind.APPROVAL_OVERDUE,
                context=notify_context(
                    request, waiting_hours=hours, sla_hours=int(step["sla_hours"])
                ),
                link=request_link(request),
            )
        count += 1
    return count


__all__ = [
    "BatchItemResult",
    "approvals_overdue_notify",
    "close_request_approve",
    "close_request_reject",
    "close_request_withdraw",
    "close_requests_decide_batch",
]
