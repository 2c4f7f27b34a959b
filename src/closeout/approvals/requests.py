"""What close and reopen requests share between submission and decision: locking, request data
for events and notifications, the pending marks on documents and lines, the check that a request
is still current, and carrying out an approved (or route-less) request."""

from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_noop, pgettext_lazy

from closeout.approvals.models import (
    CloseRequest,
    RequestAction,
    RequestState,
)
from closeout.closing.selectors import (
    Checklist,
    RuleCheck,
    close_checklist_for,
)
from closeout.closing.services import (
    describe_failure,
    execute_close,
    execute_reopen,
    named,
    selected_lines,
)
from closeout.closing.states import STATE_LABELS, Action, in_both_languages
from closeout.closing.transitions import document_state_set, lines_state_set
from closeout.core.errors import (
    InvalidTransition,
    NotFound,
    PermissionDenied,
    RuleFailed,
    bilingual_join,
    bilingual_label,
)
from closeout.core.notice_kinds import NoticeKind
from closeout.documents.models import CloseState, Document, Line
from closeout.documents.services import document_lock
from closeout.notifications.services import notify
from closeout.notifications.webhooks import webhook_emit


def request_data(request: CloseRequest, **extra: Any) -> dict[str, Any]:
    return {
        "request": request.pk,
        "action": request.action,
        "round": request.round,
        "route": request.route.name if request.route else None,
        "lines": request.line_nos,
        **extra,
    }


def request_emit(event: str, request: CloseRequest, **extra: Any) -> None:
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
        company_id=document.company_id,
    )


def notify_context(request: CloseRequest, **extra: Any) -> dict[str, Any]:
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


def request_link(request: CloseRequest) -> str:
    return f"/requests/{request.pk}/"


def mark_pending(document: Document, action: str, line_nos: list[int] | None) -> None:
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
ENDING_ACTIONS = {
    (RequestAction.CLOSE, RequestState.REJECTED): Action.REJECT_CLOSE,
    (RequestAction.CLOSE, RequestState.WITHDRAWN): Action.WITHDRAW_CLOSE,
    (RequestAction.REOPEN, RequestState.REJECTED): Action.REJECT_REOPEN,
    (RequestAction.REOPEN, RequestState.WITHDRAWN): Action.WITHDRAW_REOPEN,
}


def unmark_pending(document: Document, request: CloseRequest, action: Action) -> None:
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


DOINGS = {
    "approved": pgettext_lazy("request decision", "approved"),
    "rejected": pgettext_lazy("request decision", "rejected"),
    "withdrawn": pgettext_lazy("request decision", "withdrawn"),
}


def check_request_current(request: CloseRequest, document: Document, doing: str) -> None:
    """Refuse to decide, withdraw or resubmit a request whose document has moved on."""
    if request_matches_document(request, document):
        return
    en, zh = in_both_languages(
        "request #%(request)s no longer matches %(document)s, which is now %(state)s: it "
        "cannot be %(doing)s",
        request=request.pk,
        document=document.label,
        state=STATE_LABELS.get(document.close_state, document.close_state),
        doing=DOINGS[doing],
    )
    raise InvalidTransition(
        en,
        details={
            "request": request.pk,
            "state": document.close_state,
            "message_zh": zh,
        },
    )


def lock_request(request_id: int) -> CloseRequest:
    request = CloseRequest.objects.select_for_update(no_key=True).filter(pk=request_id).first()
    if request is None:
        raise NotFound(
            gettext_noop("no close request #%(request_id)s"),
            details={"request": request_id},
            params={"request_id": request_id},
        )
    return request


def lock_request_and_document(request_id: int) -> tuple[CloseRequest, Document]:
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
    request = lock_request(request_id)
    request.document = document
    return request, document


# What only the requester may do to a request, and the state it must be in for it.
REQUESTER_ONLY = {
    "withdraw": gettext_noop("only the requester can withdraw request #%(id)s"),
    "resubmit": gettext_noop("only the requester can resubmit request #%(id)s"),
}
NOT_IN_STATE = {
    RequestState.PENDING: gettext_noop("request #%(id)s is %(state)s, not pending"),
    RequestState.REJECTED: gettext_noop("request #%(id)s is %(state)s, not rejected"),
}
REQUESTER_STEPS = {"withdraw": RequestState.PENDING, "resubmit": RequestState.REJECTED}


def requester_guard(*, actor: AbstractBaseUser, request: CloseRequest, doing: str) -> None:
    """The one guard of what a requester does to their own request (`doing`: withdraw, resubmit):
    PermissionDenied for anyone else, then InvalidTransition unless the request is in the state
    that step needs (pending to withdraw, rejected to resubmit)."""
    if actor.pk != request.requester_id:
        raise PermissionDenied(
            REQUESTER_ONLY[doing], params={"id": request.pk}, details={"rule": "requester_only"}
        )
    if request.state != REQUESTER_STEPS[doing]:
        raise InvalidTransition(
            NOT_IN_STATE[REQUESTER_STEPS[doing]],
            params={"id": request.pk, "state": bilingual_label(RequestState(request.state).label)},
        )


def request_execute(
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
        blocking = blocking_now(checklist, request)
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
        recipients=unique_users(watchers),
        kind=NoticeKind.REQUEST_EXECUTED,
        context=notify_context(request, close_state=document.close_state),
        link=request_link(request),
    )
    request_emit("request.executed", request)
    return request


def blocking_now(checklist: Checklist, request: CloseRequest) -> list[RuleCheck]:
    """The blocking failures when a request executes; the request's own lines waiting for this
    approval do not count as "pending approval" against it."""
    own = set(request.line_nos or [])
    return [
        c
        for c in checklist.blocking
        if not (c.rule.code == "no_line_on_hold" and own and set(c.failing_lines) <= own)
    ]


def unique_users(users: Sequence[AbstractBaseUser]) -> list[AbstractBaseUser]:
    seen: dict[Any, AbstractBaseUser] = {}
    for user in users:
        seen.setdefault(user.pk, user)
    return list(seen.values())
