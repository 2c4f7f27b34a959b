"""Hold and release (冻结 / 解冻) of a document or of chosen lines: a held line blocks its close
and quarantines its business events until it is released."""

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.audit.models import AuditAction, AuditObject
from closeout.audit.services import AuditEntry, audit_append
from closeout.closing.close import (
    document_lock_for,
    selected_lines,
)
from closeout.closing.states import (
    Action,
)
from closeout.closing.transitions import (
    document_state_set,
    lines_state_set,
)
from closeout.core.errors import (
    InvalidInput,
)
from closeout.documents.models import (
    CloseState,
    Document,
    Line,
)
from closeout.documents.services import events_apply_quarantined


@transaction.atomic
def document_hold(
    *, actor: AbstractBaseUser, document: Document, reason: str, line_nos: list[int] | None = None
) -> Document:
    """Hold (冻结) a document or some of its lines: events are quarantined, nothing closes."""
    document = document_lock_for(actor, document, Perm.HOLD)
    if not reason.strip():
        raise InvalidInput(
            gettext_noop("a hold needs a reason"), details={"field": "reason"}, params={}
        )
    now = timezone.now()
    action: AuditAction
    data: dict[str, Any]
    if line_nos is None:
        before, after = document_state_set(document, Action.HOLD, now=now, hold_reason=reason)
        action, data = AuditAction.DOCUMENT_HELD, {"from": before, "to": after}
    else:
        lines = selected_lines(document, line_nos, Action.HOLD)
        lines_state_set(
            Line.objects.filter(pk__in=[line.pk for line in lines]),
            Action.HOLD,
            hold_reason=reason,
        )
        Document.objects.filter(pk=document.pk).update(version=F("version") + 1)
        state = document.close_state
        action = AuditAction.LINES_HELD
        data = {"lines": line_nos, "from": state, "to": state, "line_to": CloseState.ON_HOLD}
    data["action"] = Action.HOLD
    audit_append(
        actor=actor,
        entries=[
            AuditEntry(action, AuditObject.DOCUMENT, document.pk, document.label, data, reason)
        ],
        at=now,
    )
    document.refresh_from_db()
    return document


@transaction.atomic
def document_release(
    *,
    actor: AbstractBaseUser,
    document: Document,
    reason: str = "",
    line_nos: list[int] | None = None,
) -> Document:
    """Release (解冻) a held document or lines; events quarantined meanwhile then apply."""
    document = document_lock_for(actor, document, Perm.HOLD)
    now = timezone.now()
    action: AuditAction
    data: dict[str, Any]
    if line_nos is None:
        before, after = document_state_set(document, Action.RELEASE, now=now, hold_reason="")
        action, data = AuditAction.DOCUMENT_RELEASED, {"from": before, "to": after}
    else:
        lines = selected_lines(document, line_nos, Action.RELEASE)
        lines_state_set(
            Line.objects.filter(pk__in=[line.pk for line in lines]), Action.RELEASE, hold_reason=""
        )
        Document.objects.filter(pk=document.pk).update(version=F("version") + 1)
        state = document.close_state
        action = AuditAction.LINES_RELEASED
        data = {"lines": line_nos, "from": state, "to": state, "line_to": CloseState.OPEN}
    data["action"] = Action.RELEASE
    document.refresh_from_db()
    results = events_apply_quarantined(actor=actor, document=document)
    data["quarantined_applied"] = sum(1 for r in results if r.outcome == "applied")
    audit_append(
        actor=actor,
        entries=[
            AuditEntry(action, AuditObject.DOCUMENT, document.pk, document.label, data, reason)
        ],
        at=now,
    )
    document.refresh_from_db()
    return document
