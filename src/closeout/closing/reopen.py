"""Reopen (反结案): a whole document, many at once (a batch undo), or only the lines of its last
close; each with one audit event per document, and the released commitments given back."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.audit.models import AuditAction
from closeout.audit.services import AuditEntry, audit_append
from closeout.closing.close import (
    document_lock_for,
    named,
    remark_check,
)
from closeout.closing.close_bulk import released_totals_refresh
from closeout.closing.hooks import approval_answers
from closeout.closing.models import ReasonAction
from closeout.closing.reasons import reason_get
from closeout.closing.states import (
    Action,
    check_header_allows_lines,
    next_state,
)
from closeout.closing.transitions import (
    DOCUMENT_CLOSE_CLEARED,
    LINE_CLOSE_CLEARED,
    document_state_set,
    documents_state_set,
    lines_state_set,
)
from closeout.core.doctypes import doc_type_label_lazy
from closeout.core.errors import (
    InvalidInput,
    InvalidTransition,
    document_words,
)
from closeout.core.sql import ids_param
from closeout.documents.entries import document_entry
from closeout.documents.models import (
    BusinessEvent,
    CloseState,
    Document,
    EventStatus,
    Line,
)
from closeout.documents.services import events_apply_quarantined


@dataclass(frozen=True)
class ReopenResult:
    document: Document
    lines_reopened: list[int]
    events_applied: int
    events_still_quarantined: int


@transaction.atomic
def document_reopen(
    *, actor: AbstractBaseUser, document: Document, reason_code: str, remark: str = ""
) -> ReopenResult:
    """Reopen (反结案) a closed document directly: for holders of `reopen.approve`."""
    document = document_lock_for(actor, document, Perm.REOPEN_APPROVE, action=Action.REOPEN)
    reason = reason_get(reason_code, ReasonAction.REOPEN, company_id=document.company_id)
    remark_check(remark)
    if approval_answers().period_is_closed(document.close_date, document.company_id):
        raise InvalidTransition(
            gettext_noop(
                "%(document)s was closed on %(close_date)s, in a closed accounting period: submit "
                "a reopen request, which takes the finance route"
            ),
            details={"needs": "reopen_request"},
            params={
                "document": document_words(
                    document.doc_type, document.number, doc_type_label_lazy(document.doc_type)
                ),
                "close_date": document.close_date,
            },
        )
    return execute_reopen(actor=actor, document=document, reason=reason.code, remark=remark)


def execute_reopen(
    *,
    actor: AbstractBaseUser,
    document: Document,
    reason: str,
    remark: str,
    request_id: str = "",
    action: Action = Action.REOPEN,
    also_lines: Sequence[int] = (),
) -> ReopenResult:
    """Restore exactly what the last close changed: the lines it closed reopen and give back
    what they released; lines closed separately stay closed. Then quarantined events apply.
    `action`: reopen (direct) or approve_reopen (the last approval of a reopen request).
    `also_lines`: line numbers closed by earlier closes of the same batch (an import naming
    one document in several rows), reopened with it; the caller checked nothing changed."""
    now = timezone.now()
    before = {
        "close_state": document.close_state,
        "close_kind": document.close_kind,
        "close_reason": document.close_reason,
        "closed_at": document.closed_at,
        "released_value": document.released_value,
    }
    next_state(document.label, document.close_state, action)
    reopened = _reopen_last_close_lines(document, action, also_lines)
    before_state, _ = document_state_set(
        document, action, now=now, reopened_at=now, **DOCUMENT_CLOSE_CLEARED
    )
    document.refresh_from_db()
    return _reopened(
        actor,
        document,
        AuditAction.DOCUMENT_REOPENED,
        reopened,
        {"before": before, "from": before_state, "to": CloseState.OPEN, "action": action},
        reason=reason,
        remark=remark,
        request_id=request_id,
        now=now,
    )


def _reopened(
    actor: AbstractBaseUser,
    document: Document,
    audit_action: AuditAction,
    reopened: list[tuple[int, Any, Any]],
    data: dict[str, Any],
    *,
    reason: str,
    remark: str,
    request_id: str,
    now: datetime,
) -> ReopenResult:
    """The end of a reopen: quarantined events that may now apply do, then its audit event."""
    results = events_apply_quarantined(actor=actor, document=document)
    applied = sum(1 for r in results if r.outcome == "applied")
    document.refresh_from_db()
    audit_append(
        actor=actor,
        entries=[
            _reopen_entry(
                audit_action,
                document,
                data,
                reopened,
                (applied, len(results) - applied),
                reason=reason,
                remark=remark,
                request_id=request_id,
            )
        ],
        at=now,
    )
    document.refresh_from_db()
    return ReopenResult(document, [n for n, _, _ in reopened], applied, len(results) - applied)


def _reopen_entry(
    audit_action: AuditAction,
    document: Document,
    data: dict[str, Any],
    reopened: list[tuple[int, Any, Any]],
    quarantined: tuple[int, int],
    *,
    reason: str,
    remark: str,
    request_id: str,
) -> AuditEntry:
    """The audit event of a reopen: what it changed, each line with what it gave back, and
    the quarantined events (applied, still quarantined)."""
    return document_entry(
        action=audit_action,
        document=document,
        data={
            **data,
            "lines": [{"line": n, "restored_qty": q, "restored_value": v} for n, q, v in reopened],
            "quarantined_applied": quarantined[0],
            "still_quarantined": quarantined[1],
            **({"remark": remark} if remark else {}),
        },
        reason=reason,
        request_id=request_id,
    )


def execute_reopen_bulk(
    *,
    actor: AbstractBaseUser,
    documents: list[Document],
    reason: str,
    remark: str,
    request_id: str = "",
) -> dict[int, list[int]]:
    """The set-based twin of `execute_reopen` for many documents (a batch undo's chunk): each
    closed document's last close is restored exactly — its lines reopen and give back what they
    released, lines closed separately stay closed — in a few statements, with one audit event
    per document, the same as `execute_reopen` writes. The caller holds the documents' locks
    (re-read under them) and checked every guard. A document that is not closed, or holds
    quarantined events (which apply one by one), is left out; returns, per document reopened,
    the lines reopened. (Long: one straight sequence of set-based steps, in the order of
    `execute_reopen`'s, kept together so the two can be read side by side.)"""
    candidates = [d for d in documents if d.close_state == CloseState.CLOSED]
    waiting = set(
        BusinessEvent.objects.filter(
            document_id__in=ids_param([d.pk for d in candidates]),
            status=EventStatus.QUARANTINED,
        ).values_list("document_id", flat=True)
    )
    chosen = [d for d in candidates if d.pk not in waiting]
    if not chosen:
        return {}
    now = timezone.now()
    ids = [d.pk for d in chosen]
    by_seq: dict[int, list[int]] = {}
    for document in chosen:
        by_seq.setdefault(document.close_seq, []).append(document.pk)
    which = Q()
    for seq, members in by_seq.items():
        which |= Q(document_id__in=ids_param(members), closed_in=seq)
    lines = Line.objects.filter(which)
    reopened: dict[int, list[tuple[int, Any, Any]]] = {pk: [] for pk in ids}
    for pk, line_no, qty, value in (
        lines.filter(close_state=CloseState.CLOSED)
        .order_by("document_id", "line_no")
        .values_list("document_id", "line_no", "released_qty", "released_value")
    ):
        reopened[pk].append((line_no, qty, value))
    lines_state_set(lines, Action.REOPEN, **LINE_CLOSE_CLEARED)
    released_totals_refresh(ids)
    changed = documents_state_set(
        ids, Action.REOPEN, now=now, reopened_at=now, **DOCUMENT_CLOSE_CLEARED
    )
    if changed != len(ids):  # the caller's locks make this impossible; never half done
        raise InvalidTransition(
            gettext_noop("%(count)s documents changed while being reopened; try again"),
            params={"count": len(ids) - changed},
            details={"action": str(Action.REOPEN)},
        )
    entries = [
        _reopen_entry(
            AuditAction.DOCUMENT_REOPENED,
            document,
            {
                "before": {
                    "close_state": document.close_state,
                    "close_kind": document.close_kind,
                    "close_reason": document.close_reason,
                    "closed_at": document.closed_at,
                    "released_value": document.released_value,
                },
                "from": CloseState.CLOSED,
                "to": CloseState.OPEN,
                "action": Action.REOPEN,
            },
            reopened[document.pk],
            (0, 0),
            reason=reason,
            remark=remark,
            request_id=request_id,
        )
        for document in chosen
    ]
    audit_append(actor=actor, entries=entries, at=now)
    return {pk: [n for n, _, _ in lines_of] for pk, lines_of in reopened.items()}


def _reopen_last_close_lines(
    document: Document, action: Action, also_lines: Sequence[int] = ()
) -> list[tuple[int, Any, Any]]:
    """Reopen the lines the document's last close closed (and the closed lines `also_lines`),
    clearing what they released; returns (line no, released qty, released value) of each."""
    which = Q(closed_in=document.close_seq)
    if also_lines:
        which |= Q(line_no__in=list(also_lines), close_state=CloseState.CLOSED)
    lines = Line.objects.filter(which, document_id=document.pk)
    reopened = list(
        lines.filter(close_state=CloseState.CLOSED)
        .order_by("line_no")
        .values_list("line_no", "released_qty", "released_value")
    )
    lines_state_set(lines, action, **LINE_CLOSE_CLEARED)
    released_totals_refresh([document.pk])
    return reopened


def execute_lines_reopen(
    *,
    actor: AbstractBaseUser,
    document: Document,
    reason: str,
    remark: str,
    request_id: str = "",
    also_lines: Sequence[int] = (),
) -> ReopenResult:
    """Undo a close that left its header open (a line close, 行结案): the lines that close closed
    (the document's last close, and the closed lines `also_lines` earlier closes of the same
    batch closed) reopen and give back exactly what they released; lines closed separately
    stay closed; then quarantined events apply. The caller holds the document's lock and
    checked the actor's reopen.approve and the closed-period rule."""
    check_header_allows_lines(named(document), document.close_state, Action.REOPEN)
    now = timezone.now()
    reopened = _reopen_last_close_lines(document, Action.REOPEN, also_lines)
    if not reopened:
        raise InvalidInput(
            gettext_noop("%(document)s has no line closed by its last close to reopen"),
            params={"document": named(document)},
            details={"field": "lines"},
        )
    Document.objects.filter(pk=document.pk).update(version=F("version") + 1)
    return _reopened(
        actor,
        document,
        AuditAction.LINES_REOPENED,
        reopened,
        {"from": CloseState.OPEN, "to": CloseState.OPEN, "action": Action.REOPEN},
        reason=reason,
        remark=remark,
        request_id=request_id,
        now=now,
    )
