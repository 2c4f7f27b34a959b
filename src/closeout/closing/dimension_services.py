"""Close and reopen one close dimension (关闭维度) of lines, by hand or by rule.

A dimension close of a line still open as a whole writes a row of the sparse table; the close
of a line's last open dimension closes the line through the ordinary line close
(`services.execute_close`: the same released quantities, the header closing with its last
line). Reopening a dimension of a closed line reopens the line with its other dimensions still
closed. Every change is audited with the header's from/to, the dimension and the lines.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.audit.models import AuditAction, AuditObject
from closeout.audit.services import AuditEntry, audit_append
from closeout.closing.dimensions import (
    Dimension,
    closed_dimensions,
    closed_in,
    dimension_get,
    dimensions_of,
)
from closeout.closing.models import (
    ClosePolicy,
    DimensionCloseKind,
    LineDimensionClose,
    ReasonAction,
)
from closeout.closing.policies import policy_for, policy_partitions
from closeout.closing.reasons import reason_get
from closeout.closing.rules import open_qty_expr
from closeout.closing.selectors import close_checklist_for
from closeout.closing.services import (
    AUTO_REASON,
    close_guard,
    document_lock_for,
    execute_close,
    named,
    released_totals_refresh,
    selected_lines,
)
from closeout.closing.states import Action, check_header_allows_lines
from closeout.closing.transitions import (
    LINE_CLOSE_CLEARED,
    line_dimension_closes_delete,
    line_dimensions_close,
    line_dimensions_reopen,
    lines_state_set,
)
from closeout.core.errors import Bilingual, InvalidInput
from closeout.core.sql import ids_param
from closeout.documents.models import BusinessEvent, CloseState, Document, EventStatus, Line
from closeout.documents.services import document_lock, events_apply_quarantined


def _words(label: object) -> Bilingual:
    """A lazy label (a dimension's name) in English and Chinese."""
    with translation.override("en"):
        en = str(label)
    with translation.override("zh-hans"):
        return Bilingual(en, str(label))


@dataclass(frozen=True)
class DimensionResult:
    document: Document
    dimension: str
    lines: list[int]
    lines_closed: list[int]
    released_qty: Decimal


def _lines(document: Document, line_nos: list[int] | None) -> list[Line]:
    lines = list(document.lines.select_for_update(no_key=True).order_by("line_no"))
    if line_nos is None:
        return lines
    by_no = {line.line_no: line for line in lines}
    missing = [n for n in line_nos if n not in by_no]
    if missing:
        raise InvalidInput(
            gettext_noop("%(document)s has no line %(line_nos)s"),
            params={"document": document.in_words, "line_nos": ", ".join(map(str, missing))},
            details={"field": "lines", "line_nos": missing},
        )
    return [by_no[n] for n in sorted(set(line_nos))]


def _released(document: Document, dimension: Dimension, lines: list[Line]) -> dict[int, Decimal]:
    if not dimension.releases_commitment:
        return {}
    rows = Line.objects.filter(pk__in=[line.pk for line in lines]).values_list(
        "pk", open_qty_expr()
    )
    return {pk: Decimal(qty or 0) for pk, qty in rows}


def _failing_lines(document: Document, dimension: Dimension, lines: list[Line]) -> list[int]:
    policy = policy_for(document.doc_type, document.org_unit)
    return sorted(
        Line.objects.filter(pk__in=[line.pk for line in lines])
        .filter(dimension.line_failing(document.doc_type, policy))
        .values_list("line_no", flat=True)
    )


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


@transaction.atomic
def line_dimension_close(
    *,
    actor: AbstractBaseUser,
    document: Document,
    dimension: str,
    reason_code: str,
    remark: str = "",
    line_nos: list[int] | None = None,
    expected_version: int | None = None,
    request_id: str = "",
) -> DimensionResult:
    """Close one dimension of some lines (all open lines without `line_nos`) by hand, with a
    reason; a remark when the dimension's rules fail on a line. A line whose last open
    dimension this is closes as a whole (and the document with its last line). `request_id`
    tags the audit events (a batch's: `batch:<id>`, so the batch's undo finds its closes)."""
    document = document_lock_for(
        actor, document, Perm.CLOSE_DIRECT, expected_version=expected_version
    )
    dim = dimension_get(document.doc_type, dimension)
    reason = reason_get(reason_code, ReasonAction.CLOSE, company_id=document.company_id)
    lines = selected_lines(document, line_nos, Action.CLOSE)
    closed = closed_dimensions([line.pk for line in lines])
    if line_nos is None:
        lines = [line for line in lines if dim.code not in closed.get(line.pk, set())]
    words = {"document": named(document), "dimension": _words(dim.label)}
    for line in lines:
        if line.close_state != CloseState.OPEN or dim.code in closed.get(line.pk, set()):
            raise InvalidInput(
                gettext_noop(
                    "%(document)s line %(line)s is not open for %(dimension)s: only an open "
                    "line can close a dimension"
                ),
                params={**words, "line": line.line_no},
                details={"field": "lines", "line_no": line.line_no, "dimension": dim.code},
            )
    if not lines:
        raise InvalidInput(
            gettext_noop("%(document)s has no line open for %(dimension)s"),
            params=words,
            details={"field": "lines", "dimension": dim.code},
        )
    failing = _failing_lines(document, dim, lines)
    numbers = ", ".join(map(str, failing))
    exceptions = {
        dim.code: Bilingual(
            f"{words['dimension'].en} rules fail (lines {numbers})",
            f"{words['dimension'].zh}规则未通过（行 {numbers}）",
        )
    }
    close_guard(
        document.label, blocking={}, exceptions=exceptions if failing else {}, remark=remark
    )
    return _close(
        actor,
        document,
        dim,
        lines,
        closed,
        reason.code,
        remark,
        DimensionCloseKind.MANUAL,
        request_id=request_id,
    )


def _close(
    actor: AbstractBaseUser | None,
    document: Document,
    dim: Dimension,
    lines: list[Line],
    closed: dict[int, set[str]],
    reason: str,
    remark: str,
    kind: str,
    *,
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


@transaction.atomic
def line_dimension_reopen(
    *,
    actor: AbstractBaseUser,
    document: Document,
    dimension: str,
    reason_code: str,
    remark: str = "",
    line_nos: list[int],
    expected_version: int | None = None,
) -> DimensionResult:
    """Reopen one dimension of the given lines, by hand with a reason (holders of
    reopen.approve). A line closed as a whole reopens with its other dimensions closed; the
    commitment its dimension released comes back; quarantined events that may now apply do."""
    document = document_lock_for(
        actor, document, Perm.REOPEN_APPROVE, expected_version=expected_version
    )
    dim = dimension_get(document.doc_type, dimension)
    reason = reason_get(reason_code, ReasonAction.REOPEN, company_id=document.company_id)
    lines = _lines(document, line_nos)
    closed = closed_dimensions([line.pk for line in lines])
    whole = [line for line in lines if line.close_state == CloseState.CLOSED]
    for line in lines:
        if line not in whole and dim.code not in closed.get(line.pk, set()):
            raise InvalidInput(
                gettext_noop("%(document)s line %(line)s is not closed for %(dimension)s"),
                params={
                    "document": named(document),
                    "line": line.line_no,
                    "dimension": _words(dim.label),
                },
                details={"field": "lines", "line_no": line.line_no, "dimension": dim.code},
            )
    if whole:
        # A closed line reopens only under an open header: a closed document is reopened
        # (反结案) first, by its own route.
        check_header_allows_lines(document.label, document.close_state, Action.REOPEN)
    return _reopen(actor, document, dim, lines, whole, closed, reason.code, remark, {})


def _reopen(
    actor: AbstractBaseUser | None,
    document: Document,
    dim: Dimension,
    lines: list[Line],
    whole: list[Line],
    closed: dict[int, set[str]],
    reason: str,
    remark: str,
    extra: dict[str, Any],
    *,
    request_id: str = "",
) -> DimensionResult:
    """Reopen one dimension on the chosen lines of a locked document: a line closed as a whole is
    reopened first by the ordinary line reopen, then the dimension rows go, the released
    quantity is put back on order and one audit event is written. Long for the same ordered
    steps as `_close`."""
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
            _reopen(
                actor,
                document,
                dim,
                lines,
                [],
                closed,
                reason,
                remark,
                {"undo": True},
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
    released is on order again) with one audit event each, as `_reopen` writes it. The caller
    holds the locks and checked every guard. A document not open, or holding quarantined
    events (which apply one by one), is left out; returns, per document done, its lines.
    (Long: one straight sequence of set-based steps, in the order of `_reopen`'s, kept together
    so the two can be read side by side.)"""
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


# --- events: a return reopens receiving (shipping) --------------------------------------------


def reopen_for_event(
    *, actor: AbstractBaseUser | None, document: Document, line: Line, kind: str, external_id: str
) -> str:
    """Before an event applies to an open line: a return on a line closed for receiving (or
    shipping) reopens that dimension when the policy says so, audited with the event. Returns
    the dimension reopened, or ''. The caller holds the document lock."""
    if line.close_state != CloseState.OPEN:
        return ""
    if not any(kind in d.reopened_by for d in dimensions_of(document.doc_type)):
        return ""
    closed = closed_dimensions([line.pk])
    for dim in dimensions_of(document.doc_type):
        if kind not in dim.reopened_by or dim.code not in closed.get(line.pk, set()):
            continue
        if not policy_for(document.doc_type, document.org_unit).return_reopens_dimension:
            return ""
        extra = {"trigger": kind, "event": external_id}
        _reopen(actor, document, dim, [line], [], closed, "return_received", "", extra)
        line.refresh_from_db()
        return dim.code
    return ""


# --- by rule ---------------------------------------------------------------------------------


def _rule_candidates(
    doc_type: str, dim: Dimension, policy: ClosePolicy, scope: Q
) -> QuerySet[Line]:
    lines = (
        Line.objects.filter(
            document__doc_type=doc_type,
            document__close_state=CloseState.OPEN,
            close_state=CloseState.OPEN,
        )
        .filter(document__in=Document.objects.filter(scope))
        .exclude(closed_in(dim.code))
        .exclude(dim.line_failing(doc_type, policy))
    )
    for other in dim.after:
        lines = lines.filter(closed_in(other))
    # The rule never closes a line's last dimension: the whole line's close is the sweep's,
    # with all the type's rules (events settled, grace days …).
    others = [closed_in(d.code) for d in dimensions_of(doc_type) if d.code != dim.code]
    if others:
        lines = lines.exclude(*others)
    return lines


def dimensions_sweep(*, doc_type: str | None = None, now: datetime | None = None) -> int:
    """Close by rule every dimension whose rules pass on an open line (never a line's last
    dimension), under the policies that switch it on; one audit event per document. Returns how
    many dimension closes it wrote."""
    from closeout.closing.dimensions import DIMENSIONS

    total = 0
    for code, dims in DIMENSIONS.items():
        if doc_type and code != doc_type:
            continue
        for policy, scope in policy_partitions(code):
            if not (policy.auto_close_enabled and policy.auto_close_dimensions):
                continue
            for dim in dims:
                total += _sweep_dimension(code, dim, policy, scope)
    return total


def _sweep_dimension(doc_type: str, dim: Dimension, policy: ClosePolicy, scope: Q) -> int:
    candidates = _rule_candidates(doc_type, dim, policy, scope)
    document_ids = sorted(set(candidates.values_list("document_id", flat=True)))
    written = 0
    for document_id in document_ids:
        with transaction.atomic():
            document = document_lock(document_id)
            if document.close_state != CloseState.OPEN:
                continue
            lines = list(
                candidates.filter(document_id=document_id)
                .select_for_update(no_key=True)
                .order_by("line_no")
            )
            if not lines:
                continue
            closed = closed_dimensions([line.pk for line in lines])
            _close(None, document, dim, lines, closed, AUTO_REASON, "", DimensionCloseKind.AUTO)
            written += len(lines)
    return written
