"""Close (结案): a whole document or chosen lines, by hand (with its checks and the approval
decision) or in bulk (the sweep, a batch, an import).

Every change of a close state goes through `_set_header_state` or the bulk line updates below,
after the transition table has allowed it, under a row lock on the document, with exactly one
audit event per document in the same transaction.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.access.services import require
from closeout.audit.models import AuditAction
from closeout.audit.services import audit_append
from closeout.closing.close_bulk import close_fields, released_totals_refresh
from closeout.closing.guards import (
    ClosePath,
    close_date_refusals,
    close_path_of,
    closed_period_refusal,
    lines_to_close,
    no_open_line,
)
from closeout.closing.hooks import approval_answers
from closeout.closing.models import ReasonAction
from closeout.closing.reasons import reason_get
from closeout.closing.selectors import Checklist, RuleCheck, close_checklist_for
from closeout.closing.states import (
    LINE_STATES_LEFT_TO_CLOSE,
    Action,
    check_header_allows_lines,
    next_state,
)
from closeout.closing.transitions import (
    check_lines,
    document_state_set,
    lines_close,
)
from closeout.core.doctypes import doc_type_label_lazy
from closeout.core.errors import (
    Bilingual,
    InvalidInput,
    InvalidTransition,
    RuleFailed,
    StaleVersion,
    bilingual_join,
    bilingual_label,
)
from closeout.core.fields import field_words
from closeout.documents.entries import document_entry
from closeout.documents.models import (
    CloseKind,
    CloseState,
    Document,
    Line,
)
from closeout.documents.services import document_lock

AUTO_REASON = "auto_rules_met"


def named(document: Document) -> Bilingual:
    """The document in a message: its type in the message's language and its number."""
    return document.in_words


REMARK_MAX = 2000


def remark_check(remark: str | None, *, field: str = "remark") -> None:
    """A remark (or comment) is free text of at most REMARK_MAX characters: enough to explain
    an exception, short enough to read in a list and to store with every audit event."""
    if remark is not None and len(remark) > REMARK_MAX:
        raise InvalidInput(
            gettext_noop("the %(field)s has %(n)s characters; at most %(max)s are allowed"),
            params={
                "field": field_words(field),
                "n": len(remark),
                "max": REMARK_MAX,
            },
            details={"field": field, "max_length": REMARK_MAX},
        )


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


# --- manual close --------------------------------------------------------------------------


def close_date_check(
    value: date | None,
    document: Document,
    *,
    period_is_closed: Callable[[date, int | None], bool] | None = None,
) -> date:
    """The close date of a manual, line, requested, batch or imported close: not in the future,
    not before the document date, and not in a closed accounting period (the guards of
    `closing.guards`, given whether the date's period is closed; `period_is_closed`, one that
    remembers its answers, for many closes)."""
    chosen = value or timezone.localdate()
    closed = period_is_closed or approval_answers().period_is_closed
    refusals = close_date_refusals(
        chosen,
        today=timezone.localdate(),
        document_date=document.document_date,
        period_closed=closed(chosen, document.company_id),
    )
    if refusals:
        raise refusals[0]
    return chosen


def close_period_check(day: date, *, field: str, company_id: int | None = None) -> None:
    """Refuse a close dated inside a closed accounting period (已关账) of the company."""
    if approval_answers().period_is_closed(day, company_id):
        raise closed_period_refusal(day, field=field)


def selected_lines(
    document: Document, line_nos: list[int] | None, action: Action = Action.CLOSE
) -> list[Line]:
    """The document's lines an action takes, locked: the chosen ones (each must be in a state
    the action may start from, under a header that allows line actions), or with no choice
    every line it may take (the header's own action is checked by its caller)."""
    lines = list(document.lines.select_for_update(no_key=True).order_by("line_no"))
    return lines_chosen(document, lines, line_nos, action)


def lines_locked(document_ids: list[int]) -> dict[int, list[Line]]:
    """The lines of many documents, locked as `selected_lines` locks them, by document and
    line number: one SELECT … FOR UPDATE."""
    result: dict[int, list[Line]] = {pk: [] for pk in document_ids}
    lines = Line.objects.select_for_update(no_key=True).filter(document_id__in=document_ids)
    for line in lines.order_by("document_id", "line_no"):
        result[line.document_id].append(line)
    return result


def lines_chosen(
    document: Document, lines: list[Line], line_nos: list[int] | None, action: Action
) -> list[Line]:
    """`selected_lines` given the document's locked lines (by line number)."""
    if line_nos is None:
        takes = set(lines_to_close({line.line_no: line.close_state for line in lines}, action))
        return [line for line in lines if line.line_no in takes]
    # Chosen lines move on their own: the header must allow line actions.
    check_header_allows_lines(document.label, document.close_state, action)
    by_no = {line.line_no: line for line in lines}
    missing = [n for n in line_nos if n not in by_no]
    if missing:
        raise InvalidInput(
            gettext_noop("%(document)s has no line %(lines)s"),
            params={"document": named(document), "lines": ", ".join(map(str, missing))},
            details={"field": "lines", "line_nos": missing},
        )
    chosen = [by_no[n] for n in line_nos]
    try:
        check_lines(document, chosen, action)
    except InvalidTransition as refusal:
        raise InvalidInput(
            refusal.msgid or refusal.message,
            params=refusal.params if refusal.msgid else None,
            details={"field": "lines", **refusal.details},
        ) from None
    return chosen


def remark_required(*, exceptions: Mapping[str, object], remark: str) -> bool:
    """Whether a close needs a remark: an exception rule fails and none was written. The close
    guard, the batch preview and the pages ask this one question."""
    return bool(exceptions) and not remark.strip()


def close_guard(
    label: object,
    *,
    blocking: Mapping[str, object],
    exceptions: Mapping[str, object],
    remark: str,
) -> None:
    """The one guard of a manual close, given the failing rules (code: description): used by
    the checklist path, the batch path, and the pages (to show the button)."""
    if blocking:
        raise RuleFailed(
            gettext_noop("%(document)s cannot be closed: blocking rules fail: %(rules)s"),
            params={"document": label, "rules": bilingual_join(list(blocking.values()))},
            details={"rules": list(blocking)},
        )
    if remark_required(exceptions=exceptions, remark=remark):
        raise InvalidInput(
            gettext_noop(
                "%(document)s: exception rules fail (%(rules)s); "
                "a remark explaining the exception is required"
            ),
            params={"document": label, "rules": bilingual_join(list(exceptions.values()))},
            details={"field": "remark", "rules": list(exceptions)},
        )


def describe_failure(check: RuleCheck) -> Bilingual:
    """One failing rule with its failing lines, in English and Chinese."""
    lines = ", ".join(map(str, check.failing_lines))
    return Bilingual(
        describe_failures([check]),
        f"{check.rule.label('zh-hans')}（行 {lines}）" if lines else check.rule.label("zh-hans"),
    )


def _described(checks: list[RuleCheck]) -> dict[str, object]:
    return {c.rule.code: describe_failure(c) for c in checks}


def check_closable(checklist: Checklist, *, remark: str) -> None:
    close_guard(
        named(checklist.document),
        blocking=_described(checklist.blocking),
        exceptions=_described(checklist.exceptions),
        remark=remark,
    )


def document_lock_for(
    actor: AbstractBaseUser,
    document: Document,
    perm: str,
    *,
    action: Action | None = None,
    expected_version: int | None = None,
) -> Document:
    """The start of every action on one document: re-read it under its row lock, check the
    actor's permission for its unit and type at this moment, that the document is still at
    `expected_version` when the caller names one (an API If-Match), and, given an `action`,
    that the state machine allows it from the document's state now."""
    document = document_lock(document.pk)
    require(
        actor, perm, org_unit=document.org_unit, doc_type=document.doc_type, what=document.label
    )
    if expected_version is not None and document.version != expected_version:
        raise StaleVersion(
            gettext_noop(
                "%(document)s is at version %(version)s, not %(expected)s: it changed since "
                "you read it; read it again and retry"
            ),
            params={
                "document": named(document),
                "version": document.version,
                "expected": expected_version,
            },
            details={"version": document.version},
        )
    if action is not None:
        next_state(named(document), document.close_state, action)
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
    expected_version: int | None = None,
    request_id: str = "",
) -> CloseResult:
    """Manual close (手工结案) of a whole document or of some lines (行结案); `request_id`
    tags its audit event (a batch's rows: `batch:<id>`, so the batch's undo finds it)."""
    document = document_lock_for(
        actor, document, Perm.CLOSE_DIRECT, action=Action.CLOSE, expected_version=expected_version
    )
    reason = reason_get(reason_code, ReasonAction.CLOSE, company_id=document.company_id)
    remark_check(remark)
    chosen_date = close_date_check(close_date, document)
    lines = selected_lines(document, line_nos, Action.CLOSE)
    if not lines:
        raise no_open_line(named(document))
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
        request_id=request_id,
    )


def close_path(document: Document, checklist: Checklist, line_nos: list[int]) -> ClosePath:
    """A direct close is for documents no approval route applies to (S9); the policy can also
    demand approval for every close of a type. Changes nothing: the pages ask it before the
    click, the close service before it writes."""
    by_policy = checklist.policy.direct_close_needs_approval
    route = (
        None
        if by_policy
        else approval_answers().route_for_close(document, checklist=checklist, line_nos=line_nos)
    )
    return close_path_of(
        policy_demands_approval=by_policy, route=route.name if route is not None else None
    )


def _refuse_if_approval_needed(
    document: Document, checklist: Checklist, line_nos: list[int]
) -> None:
    path = close_path(document, checklist, line_nos)
    if path.by_policy:
        raise InvalidTransition(
            gettext_noop(
                "%(document)s: the %(doc_type)s policy requires approval for every close; "
                "submit a close request instead"
            ),
            params={
                "document": named(document),
                "doc_type": Bilingual(
                    document.doc_type, bilingual_label(doc_type_label_lazy(document.doc_type)).zh
                ),
            },
            details={"needs": "close_request"},
        )
    if path.needs_approval:
        raise InvalidTransition(
            gettext_noop(
                "%(document)s: this close needs approval (route '%(route)s'); "
                "submit a close request instead"
            ),
            params={"document": named(document), "route": path.route},
            details={"needs": "close_request", "route": path.route},
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
    line_action: Action = Action.CLOSE,
) -> CloseResult:
    """Close the given lines of a locked document (`line_action`: close, or approve_close of a
    line request); the header closes with its last line (close, or approve_close of a
    document request when the header waits for one)."""
    now = timezone.now()
    line_ids = [line.pk for line in lines]
    lines_close(
        document_ids=[document.pk],
        line_filter=Q(pk__in=line_ids),
        action=line_action,
        actor_id=actor.pk,
        kind=CloseKind.MANUAL,
        reason=reason,
        now=now,
        doc_type=document.doc_type,
    )
    released_totals_refresh([document.pk])
    before_state = document.close_state
    header_action = (
        Action.APPROVE_CLOSE if before_state == CloseState.CLOSE_PENDING else Action.CLOSE
    )
    if not Line.objects.filter(
        document_id=document.pk, close_state__in=LINE_STATES_LEFT_TO_CLOSE
    ).exists():
        document_state_set(
            document,
            header_action,
            now=now,
            **close_fields(
                actor_id=actor.pk,
                kind=CloseKind.MANUAL,
                reason=reason,
                remark=remark,
                close_date=close_date,
                now=now,
            ),
        )
    elif header_action == Action.APPROVE_CLOSE:
        # A document request closes the whole document or nothing.
        raise RuleFailed(
            gettext_noop(
                "%(document)s: a line is still open, on hold or pending; the document cannot "
                "close as a whole"
            ),
            params={"document": named(document)},
            details={"rules": ["no_line_on_hold"]},
        )
    document.refresh_from_db()
    closed = list(Line.objects.filter(pk__in=line_ids).order_by("line_no"))
    header_closed = document.close_state == CloseState.CLOSED
    released = sum((line.released_value for line in closed), Decimal(0))
    data: dict[str, Any] = {
        "from": before_state,
        "to": document.close_state,
        "action": header_action if header_closed else line_action,
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
            document_entry(
                action=AuditAction.DOCUMENT_CLOSED if header_closed else AuditAction.LINES_CLOSED,
                document=document,
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
