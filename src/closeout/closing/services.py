"""Close, reopen, hold and release (结案 / 反结案 / 冻结 / 解冻).

Every change of a close state goes through `_set_header_state` or the bulk line updates below,
after the transition table has allowed it, under a row lock on the document, with exactly one
audit event per document in the same transaction.
"""

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q, Subquery, Sum
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.utils import timezone

from closeout.access.permissions import Perm
from closeout.access.services import require
from closeout.audit.models import AuditAction
from closeout.audit.services import AuditEntry, audit_append
from closeout.closing.models import ReasonAction, ReasonCode
from closeout.closing.rules import dec
from closeout.closing.selectors import Checklist, RuleCheck, close_checklist_for
from closeout.closing.states import check_transition
from closeout.core.errors import InvalidInput, InvalidTransition, RuleFailed
from closeout.documents.models import (
    LINE_STATES_NOT_CLOSED,
    CloseKind,
    CloseState,
    Document,
    Line,
)
from closeout.documents.services import document_lock, events_apply_quarantined
from closeout.documents.types import spec_for

AUTO_REASON = "auto_rules_met"


def reason_get(code: str, action: ReasonAction) -> ReasonCode:
    reason = ReasonCode.objects.filter(code=code, action=action, active=True).first()
    if reason is None:
        valid = ReasonCode.objects.filter(action=action, active=True, system=False)
        raise InvalidInput(
            f"unknown {action} reason '{code}'; use one of: "
            + ", ".join(valid.values_list("code", flat=True)),
            details={"field": "reason", "allowed": list(valid.values_list("code", flat=True))},
        )
    return reason


def describe_failures(checks: list[RuleCheck]) -> str:
    parts = []
    for check in checks:
        where = (
            f" (lines {', '.join(map(str, check.failing_lines))})" if check.failing_lines else ""
        )
        parts.append(f"{check.rule.code}: {check.rule.label_en}{where}")
    return "; ".join(parts)


@dataclass(frozen=True)
class CloseResult:
    document: Document
    lines_closed: list[int]
    header_closed: bool
    released_value: Decimal
    checklist: Checklist


# --- bulk building blocks shared by manual close and the sweep -----------------------------


def ids_param(ids: list[int]) -> RawSQL:
    """A set of ids as ONE query parameter (an array on PostgreSQL, a JSON list on SQLite), for
    `pk__in=`: thousands of separate parameters cost more to bind and parse than the work."""
    listed = ",".join(str(int(i)) for i in ids)
    if connection.vendor == "postgresql":
        return RawSQL("SELECT unnest(%s::bigint[])", [f"{{{listed}}}"])
    return RawSQL("SELECT value FROM json_each(%s)", [f"[{listed}]"])


def _close_open_lines(
    *,
    document_ids: list[int],
    line_filter: Q,
    actor_id: int | None,
    kind: str,
    reason: str,
    now: datetime,
    doc_type: str,
    bump_seq: bool = True,
) -> Counter[int]:
    """Close the given documents' open lines that match `line_filter`, stamping the close
    sequence (the document's next one) and what each line releases; returns the number of lines
    closed per document. Set-based: one UPDATE … FROM for any number of lines, the same SQL on
    SQLite and PostgreSQL. With `bump_seq=False` the caller advances `close_seq` itself (the
    sweep does it in its one UPDATE of the headers)."""
    spec = spec_for(doc_type)
    released_value = spec.released_value()
    source = (
        Line.objects.filter(document_id__in=ids_param(document_ids), close_state=CloseState.OPEN)
        .filter(line_filter)
        .values(
            line_id=F("id"),
            seq=F("document__close_seq") + 1,
            rq=spec.released_qty(),
            rv=released_value,
            rvc=released_value * F("document__exchange_rate"),
        )
    )
    source_sql, source_params = source.query.sql_with_params()
    qn = connection.ops.quote_name
    line = qn(Line._meta.db_table)
    # Only quoted identifiers and Django's compiled SELECT are formatted in; values are params.
    sql = (
        f"WITH src AS ({source_sql}) UPDATE {line} SET "  # noqa: S608
        f"{qn('close_state')} = %s, {qn('close_kind')} = %s, {qn('close_reason')} = %s, "
        f"{qn('closed_by_id')} = %s, {qn('closed_at')} = %s, {qn('closed_in')} = src.seq, "
        f"{qn('released_qty')} = src.rq, {qn('released_value')} = src.rv, "
        f"{qn('released_value_company')} = src.rvc "
        f"FROM src WHERE {line}.{qn('id')} = src.line_id RETURNING {line}.{qn('document_id')}"
    )
    closed_at = Line._meta.get_field("closed_at").get_db_prep_save(now, connection)
    params = (*source_params, CloseState.CLOSED, kind, reason, actor_id, closed_at)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        counts = Counter(row[0] for row in cursor.fetchall())
    if bump_seq:
        Document.objects.filter(pk__in=ids_param(document_ids)).update(close_seq=F("close_seq") + 1)
    return counts


def _released_totals() -> dict[str, Coalesce]:
    sums = Line.objects.filter(document_id=OuterRef("pk")).values("document_id")
    return {
        "released_value": Coalesce(
            Subquery(sums.annotate(v=Sum("released_value")).values("v")[:1]), dec(0)
        ),
        "released_value_company": Coalesce(
            Subquery(sums.annotate(v=Sum("released_value_company")).values("v")[:1]), dec(0)
        ),
    }


def _refresh_released_totals(document_ids: list[int]) -> None:
    Document.objects.filter(pk__in=document_ids).update(**_released_totals())


def _no_line_left() -> Exists:
    """True on documents with a line still to close (open, on hold or pending approval)."""
    return Exists(
        Line.objects.filter(document_id=OuterRef("pk"), close_state__in=LINE_STATES_NOT_CLOSED)
    )


def _header_close_values(
    *,
    actor_id: int | None,
    kind: str,
    reason: str,
    remark: str,
    close_date: date,
    now: datetime,
) -> dict[str, Any]:
    check_transition("an open document", CloseState.OPEN, CloseState.CLOSED)
    return {
        "close_state": CloseState.CLOSED,
        "close_kind": kind,
        "close_reason": reason,
        "close_remark": remark,
        "close_date": close_date,
        "closed_by_id": actor_id,
        "closed_at": now,
        "state_changed_at": now,
        "version": F("version") + 1,
    }


def _close_headers(
    *,
    document_ids: list[int],
    actor_id: int | None,
    kind: str,
    reason: str,
    remark: str,
    close_date: date,
    now: datetime,
) -> None:
    """Close the headers among `document_ids` that have no line left to close."""
    values = _header_close_values(
        actor_id=actor_id, kind=kind, reason=reason, remark=remark, close_date=close_date, now=now
    )
    Document.objects.filter(
        pk__in=document_ids, close_state__in=(CloseState.OPEN, CloseState.CLOSE_PENDING)
    ).exclude(_no_line_left()).update(**values)


def close_documents_bulk(
    *,
    document_ids: list[int],
    doc_type: str,
    kind: str,
    reason: str,
    now: datetime,
    actor: AbstractBaseUser | None = None,
    remark: str = "",
    close_date: date | None = None,
) -> list[AuditEntry]:
    """Close whole open documents (the sweep's path); returns their audit entries.

    The same effect as `_close_open_lines` + `_refresh_released_totals` + `_close_headers`, but
    each header row is written once (close sequence, released totals and close fields in one
    UPDATE), since every extra UPDATE of a row costs a new row version and its index entries."""
    if not document_ids:
        return []
    actor_id = actor.pk if actor is not None else None
    counts = _close_open_lines(
        document_ids=document_ids,
        line_filter=Q(),
        actor_id=actor_id,
        kind=kind,
        reason=reason,
        now=now,
        doc_type=doc_type,
        bump_seq=False,
    )
    closing = Document.objects.filter(
        pk__in=ids_param(document_ids),
        close_state__in=(CloseState.OPEN, CloseState.CLOSE_PENDING),
    )
    totals = _released_totals()
    closing.exclude(_no_line_left()).update(
        close_seq=F("close_seq") + 1,
        **totals,
        **_header_close_values(
            actor_id=actor_id,
            kind=kind,
            reason=reason,
            remark=remark,
            close_date=close_date or timezone.localdate(now),
            now=now,
        ),
    )
    # Documents a policy lets through with a line still on hold keep their header open.
    closing.filter(_no_line_left()).update(close_seq=F("close_seq") + 1, **totals)
    rows = Document.objects.filter(pk__in=ids_param(document_ids)).values_list(
        "pk", "doc_type", "number", "close_state", "released_value", "released_value_company"
    )
    return [
        AuditEntry(
            action=(
                AuditAction.DOCUMENT_CLOSED
                if state == CloseState.CLOSED
                else AuditAction.LINES_CLOSED
            ),
            object_type="document",
            object_id=pk,
            object_repr=f"{dt} {number}",
            data={
                "from": CloseState.OPEN,
                "to": state,
                "kind": kind,
                "lines_closed": counts.get(pk, 0),
                "released_value": value,
                "released_value_company": value_company,
            },
            reason=reason,
        )
        for pk, dt, number, state, value, value_company in rows
    ]


# --- manual close --------------------------------------------------------------------------


def close_date_check(value: date | None, document: Document) -> date:
    today = timezone.localdate()
    chosen = value or today
    if chosen > today:
        raise InvalidInput(f"close date {chosen} is in the future", details={"field": "close_date"})
    if chosen < document.document_date:
        raise InvalidInput(
            f"close date {chosen} is before the document date {document.document_date}",
            details={"field": "close_date"},
        )
    return chosen


def selected_open_lines(document: Document, line_nos: list[int] | None) -> list[Line]:
    lines = list(document.lines.select_for_update().order_by("line_no"))
    if line_nos is None:
        return [line for line in lines if line.close_state == CloseState.OPEN]
    by_no = {line.line_no: line for line in lines}
    missing = [n for n in line_nos if n not in by_no]
    if missing:
        raise InvalidInput(
            f"{document.label} has no line {', '.join(map(str, missing))}",
            details={"field": "lines", "line_nos": missing},
        )
    not_open = [n for n in line_nos if by_no[n].close_state != CloseState.OPEN]
    if not_open:
        states = ", ".join(f"{n} is {by_no[n].close_state}" for n in not_open)
        raise InvalidInput(f"{document.label}: line {states}", details={"field": "lines"})
    return [by_no[n] for n in line_nos]


def close_guard(
    label: str, *, blocking: dict[str, str], exceptions: dict[str, str], remark: str
) -> None:
    """The one guard of a manual close, given the failing rules (code: description): used by
    the checklist path, the batch path, and the pages (to show the button)."""
    if blocking:
        raise RuleFailed(
            f"{label} cannot be closed: blocking rules fail: " + "; ".join(blocking.values()),
            details={"rules": list(blocking)},
        )
    if exceptions and not remark.strip():
        raise InvalidInput(
            f"{label}: exception rules fail ({'; '.join(exceptions.values())}); "
            "a remark explaining the exception is required",
            details={"field": "remark", "rules": list(exceptions)},
        )


def _described(checks: list[RuleCheck]) -> dict[str, str]:
    return {c.rule.code: describe_failures([c]) for c in checks}


def check_closable(checklist: Checklist, *, remark: str) -> None:
    close_guard(
        checklist.document.label,
        blocking=_described(checklist.blocking),
        exceptions=_described(checklist.exceptions),
        remark=remark,
    )


def document_lock_for(
    actor: AbstractBaseUser, document: Document, perm: str, *, target: str | None = None
) -> Document:
    """The start of every action on one document: re-read it under its row lock, check the
    actor's permission for its unit and type at this moment, and, given a `target` state, that
    the transition table allows the change."""
    document = document_lock(document.pk)
    require(
        actor, perm, org_unit=document.org_unit, doc_type=document.doc_type, what=document.label
    )
    if target is not None:
        check_transition(document.label, document.close_state, target)
    return document


@transaction.atomic
def document_close(
    *,
    actor: AbstractBaseUser,
    document: Document,
    reason_code: str,
    remark: str = "",
    close_date: date | None = None,
    line_nos: list[int] | None = None,
) -> CloseResult:
    """Manual close (手工结案) of a whole document or of some lines (行结案)."""
    document = document_lock_for(actor, document, Perm.CLOSE_DIRECT, target=CloseState.CLOSED)
    reason = reason_get(reason_code, ReasonAction.CLOSE)
    chosen_date = close_date_check(close_date, document)
    lines = selected_open_lines(document, line_nos)
    if not lines:
        raise InvalidInput(f"{document.label} has no open line to close")
    # A whole-document close is checked as a whole, so a held line blocks it (no_line_on_hold)
    # instead of the close quietly shrinking to the lines that happen to be open.
    checklist = close_checklist_for(
        document, line_nos=None if line_nos is None else [line.line_no for line in lines]
    )
    check_closable(checklist, remark=remark)
    _refuse_if_approval_needed(document, checklist, [line.line_no for line in lines])
    return execute_close(
        actor=actor,
        document=document,
        lines=lines,
        reason=reason.code,
        remark=remark,
        close_date=chosen_date,
        checklist=checklist,
    )


def _refuse_if_approval_needed(
    document: Document, checklist: Checklist, line_nos: list[int]
) -> None:
    """A direct close is for documents no approval route applies to (S9); the policy can also
    demand approval for every close of a type."""
    # Imported here: approvals builds on closing, not the other way round.
    from closeout.approvals.selectors import route_for_close

    if checklist.policy.direct_close_needs_approval:
        raise InvalidTransition(
            f"{document.label}: the {document.doc_type} policy requires approval for every "
            "close; submit a close request instead",
            details={"needs": "close_request"},
        )
    route = route_for_close(document, checklist=checklist, line_nos=line_nos)
    if route is not None:
        raise InvalidTransition(
            f"{document.label}: this close needs approval (route '{route.name}'); "
            "submit a close request instead",
            details={"needs": "close_request", "route": route.name},
        )


def execute_close(
    *,
    actor: AbstractBaseUser,
    document: Document,
    lines: list[Line],
    reason: str,
    remark: str,
    close_date: date,
    checklist: Checklist,
    request_id: str = "",
) -> CloseResult:
    now = timezone.now()
    line_ids = [line.pk for line in lines]
    _close_open_lines(
        document_ids=[document.pk],
        line_filter=Q(pk__in=line_ids),
        actor_id=actor.pk,
        kind=CloseKind.MANUAL,
        reason=reason,
        now=now,
        doc_type=document.doc_type,
    )
    _refresh_released_totals([document.pk])
    _close_headers(
        document_ids=[document.pk],
        actor_id=actor.pk,
        kind=CloseKind.MANUAL,
        reason=reason,
        remark=remark,
        close_date=close_date,
        now=now,
    )
    before_state = document.close_state
    document.refresh_from_db()
    closed = list(Line.objects.filter(pk__in=line_ids).order_by("line_no"))
    header_closed = document.close_state == CloseState.CLOSED
    released = sum((line.released_value for line in closed), Decimal(0))
    data: dict[str, Any] = {
        "from": before_state,
        "to": document.close_state,
        "kind": CloseKind.MANUAL,
        "close_date": close_date,
        "lines": [
            {
                "line": line.line_no,
                "released_qty": line.released_qty,
                "released_value": line.released_value,
                "released_value_company": line.released_value_company,
            }
            for line in closed
        ],
        "released_value": released,
        "exceptions": [c.rule.code for c in checklist.exceptions],
        "warnings": [c.rule.code for c in checklist.warnings],
    }
    if remark:
        data["remark"] = remark
    audit_append(
        actor=actor,
        entries=[
            AuditEntry(
                action=AuditAction.DOCUMENT_CLOSED if header_closed else AuditAction.LINES_CLOSED,
                object_type="document",
                object_id=document.pk,
                object_repr=document.label,
                data=data,
                reason=reason,
                request_id=request_id,
            )
        ],
        at=now,
    )
    return CloseResult(
        document, [line.line_no for line in closed], header_closed, released, checklist
    )


# --- reopen --------------------------------------------------------------------------------


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
    document = document_lock_for(actor, document, Perm.REOPEN_APPROVE, target=CloseState.OPEN)
    reason = reason_get(reason_code, ReasonAction.REOPEN)
    # Imported here: approvals builds on closing, not the other way round.
    from closeout.approvals.selectors import period_is_closed

    if period_is_closed(document.close_date):
        raise InvalidTransition(
            f"{document.label} was closed on {document.close_date}, in a closed accounting "
            "period: submit a reopen request, which takes the finance route",
            details={"needs": "reopen_request"},
        )
    return execute_reopen(actor=actor, document=document, reason=reason.code, remark=remark)


def execute_reopen(
    *, actor: AbstractBaseUser, document: Document, reason: str, remark: str, request_id: str = ""
) -> ReopenResult:
    """Restore exactly what the last close changed: the lines it closed reopen and give back
    what they released; lines closed separately stay closed. Then quarantined events apply."""
    now = timezone.now()
    before = {
        "close_state": document.close_state,
        "close_kind": document.close_kind,
        "close_reason": document.close_reason,
        "closed_at": document.closed_at,
        "released_value": document.released_value,
    }
    lines = Line.objects.filter(
        document_id=document.pk, close_state=CloseState.CLOSED, closed_in=document.close_seq
    )
    reopened = list(
        lines.order_by("line_no").values_list("line_no", "released_qty", "released_value")
    )
    lines.update(
        close_state=CloseState.OPEN,
        close_kind="",
        close_reason="",
        closed_by=None,
        closed_at=None,
        closed_in=None,
        released_qty=0,
        released_value=0,
        released_value_company=0,
    )
    _refresh_released_totals([document.pk])
    Document.objects.filter(pk=document.pk).update(
        close_state=CloseState.OPEN,
        close_kind="",
        close_reason="",
        close_remark="",
        close_date=None,
        closed_by=None,
        closed_at=None,
        state_changed_at=now,
        reopened_at=now,
        version=F("version") + 1,
    )
    document.refresh_from_db()
    results = events_apply_quarantined(actor=actor, document=document)
    applied = sum(1 for r in results if r.outcome == "applied")
    audit_append(
        actor=actor,
        entries=[
            AuditEntry(
                action=AuditAction.DOCUMENT_REOPENED,
                object_type="document",
                object_id=document.pk,
                object_repr=document.label,
                data={
                    "before": before,
                    "to": CloseState.OPEN,
                    "lines": [
                        {"line": n, "restored_qty": q, "restored_value": v} for n, q, v in reopened
                    ],
                    "quarantined_applied": applied,
                    "still_quarantined": len(results) - applied,
                    **({"remark": remark} if remark else {}),
                },
                reason=reason,
                request_id=request_id,
            )
        ],
        at=now,
    )
    document.refresh_from_db()
    return ReopenResult(document, [n for n, _, _ in reopened], applied, len(results) - applied)


# --- hold and release ----------------------------------------------------------------------


@transaction.atomic
def document_hold(
    *, actor: AbstractBaseUser, document: Document, reason: str, line_nos: list[int] | None = None
) -> Document:
    """Hold (冻结) a document or some of its lines: events are quarantined, nothing closes."""
    document = document_lock_for(actor, document, Perm.HOLD)
    if not reason.strip():
        raise InvalidInput("a hold needs a reason", details={"field": "reason"})
    now = timezone.now()
    data: dict[str, Any]
    if line_nos is None:
        check_transition(document.label, document.close_state, CloseState.ON_HOLD)
        _set_header_state(document, CloseState.ON_HOLD, now, hold_reason=reason)
        action, data = (
            AuditAction.DOCUMENT_HELD,
            {"from": CloseState.OPEN, "to": CloseState.ON_HOLD},
        )
    else:
        check_transition(document.label, document.close_state, CloseState.ON_HOLD)
        lines = selected_open_lines(document, line_nos)
        Line.objects.filter(pk__in=[line.pk for line in lines]).update(
            close_state=CloseState.ON_HOLD, hold_reason=reason
        )
        Document.objects.filter(pk=document.pk).update(version=F("version") + 1)
        action, data = AuditAction.LINES_HELD, {"lines": line_nos, "to": CloseState.ON_HOLD}
    audit_append(
        actor=actor,
        entries=[AuditEntry(action, "document", document.pk, document.label, data, reason)],
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
    data: dict[str, Any]
    if line_nos is None:
        check_transition(document.label, document.close_state, CloseState.OPEN)
        if document.close_state != CloseState.ON_HOLD:
            raise InvalidInput(f"{document.label} is {document.close_state}, not on hold")
        _set_header_state(document, CloseState.OPEN, now, hold_reason="")
        action, data = (
            AuditAction.DOCUMENT_RELEASED,
            {"from": CloseState.ON_HOLD, "to": CloseState.OPEN},
        )
    else:
        held = {line.line_no for line in document.lines.filter(close_state=CloseState.ON_HOLD)}
        not_held = [n for n in line_nos if n not in held]
        if not_held:
            raise InvalidInput(
                f"{document.label}: line {', '.join(map(str, not_held))} is not on hold",
                details={"field": "lines"},
            )
        Line.objects.filter(document=document, line_no__in=line_nos).update(
            close_state=CloseState.OPEN, hold_reason=""
        )
        Document.objects.filter(pk=document.pk).update(version=F("version") + 1)
        action, data = AuditAction.LINES_RELEASED, {"lines": line_nos, "to": CloseState.OPEN}
    document.refresh_from_db()
    results = events_apply_quarantined(actor=actor, document=document)
    data["quarantined_applied"] = sum(1 for r in results if r.outcome == "applied")
    audit_append(
        actor=actor,
        entries=[AuditEntry(action, "document", document.pk, document.label, data, reason)],
        at=now,
    )
    document.refresh_from_db()
    return document


def _set_header_state(document: Document, state: str, now: datetime, **fields: Any) -> None:
    Document.objects.filter(pk=document.pk).update(
        close_state=state, state_changed_at=now, version=F("version") + 1, **fields
    )
