"""The ordered writes of one dimension change (关闭维度) on a locked document.

`dimension_close_locked` closes a dimension on chosen lines: the rows of the sparse table, the
on-order quantity released where the dimension releases it, one audit event, and the line
closed as a whole where this was its last open dimension. `dimension_reopen_locked` reverses
it: a line closed as a whole reopens first with its other dimensions closed, the rows go, what
they released is on order again, one audit event. The hand services, the rule, the event
reopen and the batch undo (`dimension_services`, `dimension_undo`) all write through these.
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import F
from django.utils import timezone

from closeout.audit.models import AuditAction, AuditObject
from closeout.audit.services import AuditEntry, audit_append
from closeout.closing.dimensions import Dimension, dimensions_of
from closeout.closing.models import DimensionCloseKind, LineDimensionClose
from closeout.closing.rules import open_qty_expr
from closeout.closing.selectors import close_checklist_for
from closeout.closing.services import AUTO_REASON, execute_close, released_totals_refresh
from closeout.closing.states import Action
from closeout.closing.transitions import (
    LINE_CLOSE_CLEARED,
    line_dimensions_close,
    line_dimensions_reopen,
    lines_state_set,
)
from closeout.documents.models import CloseState, Document, Line
from closeout.documents.services import events_apply_quarantined


@dataclass(frozen=True)
class DimensionResult:
    document: Document
    dimension: str
    lines: list[int]
    lines_closed: list[int]
    released_qty: Decimal


def _released(document: Document, dimension: Dimension, lines: list[Line]) -> dict[int, Decimal]:
    if not dimension.releases_commitment:
        return {}
    rows = Line.objects.filter(pk__in=[line.pk for line in lines]).values_list(
        "pk", open_qty_expr()
    )
    return {pk: Decimal(qty or 0) for pk, qty in rows}


def _entry(
    action: AuditAction,
    document: Document,
    before: str,
    data: dict[str, Any],
    reason: str,
    *,
    request_id: str = "",
) -> AuditEntry:
    """The audit event of a dimension change; the document's version moves with it."""
    Document.objects.filter(pk=document.pk).update(version=F("version") + 1)
    return AuditEntry(
        action=action,
        object_type=AuditObject.DOCUMENT,
        object_id=document.pk,
        object_repr=document.label,
        data={"from": before, "to": document.close_state, **data},
        reason=reason,
        request_id=request_id,
    )


def dimension_close_locked(
    *,
    actor: AbstractBaseUser | None,
    document: Document,
    dim: Dimension,
    lines: list[Line],
    closed: dict[int, set[str]],
    reason: str,
    remark: str,
    kind: str,
    request_id: str = "",
) -> DimensionResult:
    """Close one dimension on the chosen lines of a locked document: the dimension rows through
    `closing.transitions`, the on-order quantity released where the dimension releases it, one
    audit event, and the line closed as a whole where this was its last open dimension. Long
    because each of those steps is a few statements that must run in this order in one
    transaction."""
    now = timezone.now()
    before = document.close_state
    count = len(dimensions_of(document.doc_type))
    last = [line for line in lines if len(closed.get(line.pk, set())) + 1 >= count]
    partial = [line for line in lines if line not in last]
    released = _released(document, dim, lines)
    line_dimensions_close(
        [
            LineDimensionClose(
                document_id=document.pk,
                line_id=line.pk,
                dimension=dim.code,
                kind=kind,
                reason=reason,
                remark=remark,
                closed_by_id=getattr(actor, "pk", None),
                closed_at=now,
                released_qty=released.get(line.pk, Decimal(0)),
            )
            for line in partial
        ]
    )
    data: dict[str, Any] = {
        "action": Action.CLOSE,
        "dimension": dim.code,
        "dimension_from": CloseState.OPEN,
        "dimension_to": CloseState.CLOSED,
        "kind": kind,
        "lines": [
            {"line": line.line_no, "released_qty": released.get(line.pk, Decimal(0))}
            for line in lines
        ],
        "lines_closed": [line.line_no for line in last],
        **({"remark": remark} if remark else {}),
    }
    audit_append(
        actor=actor,
        entries=[
            _entry(
                AuditAction.LINE_DIMENSIONS_CLOSED,
                document,
                before,
                data,
                reason,
                request_id=request_id,
            )
        ],
        at=now,
    )
    if last and actor is not None:
        # The last open dimension: the line closes as a whole, by the ordinary line close.
        checklist = close_checklist_for(document, line_nos=[line.line_no for line in last])
        execute_close(
            actor=actor,
            document=document,
            lines=last,
            reason=reason,
            remark=remark,
            close_date=timezone.localdate(),
            checklist=checklist,
            request_id=request_id,
        )
    document.refresh_from_db()
    total = sum(released.values(), Decimal(0))
    return DimensionResult(
        document, dim.code, [line.line_no for line in lines], [line.line_no for line in last], total
    )


def dimension_reopen_locked(
    *,
    actor: AbstractBaseUser | None,
    document: Document,
    dim: Dimension,
    lines: list[Line],
    whole: list[Line],
    closed: dict[int, set[str]],
    reason: str,
    remark: str,
    extra: dict[str, Any],
    request_id: str = "",
) -> DimensionResult:
    """Reopen one dimension on the chosen lines of a locked document: a line closed as a whole is
    reopened first by the ordinary line reopen, then the dimension rows go, the released
    quantity is put back on order and one audit event is written. Long for the same ordered
    steps as `dimension_close_locked`."""
    now = timezone.now()
    before = document.close_state
    restored = dict(
        LineDimensionClose.objects.filter(
            line_id__in=[line.pk for line in lines], dimension=dim.code
        ).values_list("line_id", "released_qty")
    )
    line_dimensions_reopen([line.pk for line in lines], dim.code)
    if whole:
        _reopen_whole_lines(document, dim, whole, closed, restored)
    results = events_apply_quarantined(actor=actor, document=document)
    applied = sum(1 for r in results if r.outcome == "applied")
    data: dict[str, Any] = {
        "action": Action.REOPEN,
        "dimension": dim.code,
        "dimension_from": CloseState.CLOSED,
        "dimension_to": CloseState.OPEN,
        "lines": [
            {"line": line.line_no, "restored_qty": restored.get(line.pk, Decimal(0))}
            for line in lines
        ],
        "lines_reopened": [line.line_no for line in whole],
        "quarantined_applied": applied,
        **extra,
        **({"remark": remark} if remark else {}),
    }
    audit_append(
        actor=actor,
        entries=[
            _entry(
                AuditAction.LINE_DIMENSIONS_REOPENED,
                document,
                before,
                data,
                reason,
                request_id=request_id,
            )
        ],
        at=now,
    )
    document.refresh_from_db()
    return DimensionResult(
        document,
        dim.code,
        [line.line_no for line in lines],
        [],
        sum(restored.values(), Decimal(0)),
    )


def _reopen_whole_lines(
    document: Document,
    dim: Dimension,
    whole: list[Line],
    closed: dict[int, set[str]],
    restored: dict[int, Decimal],
) -> None:
    """Reopen closed lines, keeping every other dimension closed as the line's close left it."""
    released = {line.pk: line.released_qty for line in whole}
    rows = [
        LineDimensionClose(
            document_id=document.pk,
            line_id=line.pk,
            dimension=other.code,
            kind=DimensionCloseKind.AUTO
            if line.close_kind == DimensionCloseKind.AUTO
            else DimensionCloseKind.MANUAL,
            reason=line.close_reason or AUTO_REASON,
            closed_by_id=line.closed_by_id,
            closed_at=line.closed_at or timezone.now(),
            released_qty=released[line.pk] if other.releases_commitment else Decimal(0),
        )
        for line in whole
        for other in dimensions_of(document.doc_type)
        if other.code != dim.code and other.code not in closed.get(line.pk, set())
    ]
    line_dimensions_close(rows)
    for line in whole:
        if dim.releases_commitment:
            restored[line.pk] = line.released_qty
    lines_state_set(
        Line.objects.filter(pk__in=[line.pk for line in whole]),
        Action.REOPEN,
        **LINE_CLOSE_CLEARED,
    )
    released_totals_refresh([document.pk])
