"""Undo a batch's dimension closes (批量撤销 of 关闭维度): per document and dimension, the lines
the batch closed in it reopen in it and give back exactly what the close released, one audit
event per document and dimension. `execute_dimensions_undo` goes document by document through
`dimension_writes`; `execute_dimensions_undo_bulk` is its set-based twin for a batch undo's
chunk of open documents. The callers (`batches.undo_run`) hold the locks and check the guards.
"""

from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import F

from closeout.audit.models import AuditAction, AuditObject
from closeout.audit.services import AuditEntry, audit_append
from closeout.closing.dimension_writes import DimensionResult, dimension_reopen_locked
from closeout.closing.dimensions import closed_dimensions, dimension_get
from closeout.closing.models import LineDimensionClose
from closeout.closing.states import Action
from closeout.closing.transitions import line_dimension_closes_delete
from closeout.core.sql import ids_param
from closeout.documents.models import BusinessEvent, CloseState, Document, EventStatus, Line


def execute_dimensions_undo(
    *,
    actor: AbstractBaseUser,
    document: Document,
    dimensions: dict[str, list[int]],
    reason: str,
    remark: str,
    request_id: str,
) -> list[DimensionResult]:
    """Undo a batch's dimension closes (批量撤销): per dimension, the given lines that are still
    closed in it (a row of the sparse table) reopen in it and give back exactly what it
    released, one audit event per dimension. Lines the batch closed as a whole (their last
    dimension) are reopened by the caller first, by the ordinary reopen path. The caller holds
    the document's lock, checked reopen.approve, the closed period, and that nothing changed
    since the batch."""
    results = []
    for code, line_nos in sorted(dimensions.items()):
        dim = dimension_get(document.doc_type, code)
        lines = list(
            document.lines.select_for_update(no_key=True)
            .filter(
                line_no__in=line_nos,
                pk__in=LineDimensionClose.objects.filter(
                    document_id=document.pk, dimension=dim.code
                ).values("line_id"),
            )
            .order_by("line_no")
        )
        if not lines:
            continue
        closed = closed_dimensions([line.pk for line in lines])
        results.append(
            dimension_reopen_locked(
                actor=actor,
                document=document,
                dim=dim,
                lines=lines,
                whole=[],
                closed=closed,
                reason=reason,
                remark=remark,
                extra={"undo": True},
                request_id=request_id,
            )
        )
    return results


def execute_dimensions_undo_bulk(
    *,
    actor: AbstractBaseUser,
    undo: list[tuple[Document, dict[str, list[int]]]],
    reason: str,
    remark: str,
    request_id: str,
) -> dict[int, list[int]]:
    """The set-based twin of `execute_dimensions_undo` for many open documents (a batch undo's
    chunk): per document and dimension, the given lines' closes in it are deleted (what they
    released is on order again) with one audit event each, as `dimension_reopen_locked` writes
    it. The caller holds the locks and checked every guard. A document not open, or holding
    quarantined events (which apply one by one), is left out; returns, per document done, its
    lines. (Long: one straight sequence of set-based steps, in the order of
    `dimension_reopen_locked`'s, kept together so the two can be read side by side.)"""
    open_ids = [d.pk for d, _ in undo if d.close_state == CloseState.OPEN]
    waiting = set(
        BusinessEvent.objects.filter(
            document_id__in=ids_param(open_ids), status=EventStatus.QUARANTINED
        ).values_list("document_id", flat=True)
    )
    chosen = {d.pk: (d, dims) for d, dims in undo if d.pk in open_ids and d.pk not in waiting}
    if not chosen:
        return {}
    line_nos = dict(
        Line.objects.filter(document_id__in=ids_param(list(chosen))).values_list("pk", "line_no")
    )
    doomed: list[int] = []
    restored: dict[tuple[int, str], list[tuple[int, Decimal]]] = {}
    for pk, document_id, line_id, code, qty in (
        LineDimensionClose.objects.filter(document_id__in=ids_param(list(chosen)))
        .order_by("document_id", "dimension", "line_id")
        .values_list("pk", "document_id", "line_id", "dimension", "released_qty")
    ):
        if line_nos[line_id] in chosen[document_id][1].get(code, ()):
            doomed.append(pk)
            restored.setdefault((document_id, code), []).append((line_nos[line_id], qty))
    line_dimension_closes_delete(doomed)
    for code in {code for _, code in restored}:
        members = [document_id for document_id, c in restored if c == code]
        Document.objects.filter(pk__in=ids_param(members)).update(version=F("version") + 1)
    entries = [
        AuditEntry(
            action=AuditAction.LINE_DIMENSIONS_REOPENED,
            object_type=AuditObject.DOCUMENT,
            object_id=document_id,
            object_repr=chosen[document_id][0].label,
            data={
                "from": CloseState.OPEN,
                "to": CloseState.OPEN,
                "action": Action.REOPEN,
                "dimension": code,
                "dimension_from": CloseState.CLOSED,
                "dimension_to": CloseState.OPEN,
                "lines": [
                    {"line": n, "restored_qty": q} for n, q in sorted(restored[document_id, code])
                ],
                "lines_reopened": [],
                "quarantined_applied": 0,
                "undo": True,
                **({"remark": remark} if remark else {}),
            },
            reason=reason,
            request_id=request_id,
        )
        for document_id, code in sorted(restored)
    ]
    audit_append(actor=actor, entries=entries)
    lines: dict[int, list[int]] = {}
    for (document_id, _code), reopened in sorted(restored.items()):
        lines.setdefault(document_id, []).extend(n for n, _ in reopened)
    return {pk: sorted(set(lines.get(pk, []))) for pk in chosen}
