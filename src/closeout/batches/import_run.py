"""Executing imported rows inside the batch machinery: each item carries its own action and
parameters (row number, line numbers, reason, remark, close date), which take the place of the
job's. Each row is all-or-nothing; a row whose document changed since validation gets a clear
result of its own, and running the rows again changes nothing."""

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop as N_

from closeout.access.permissions import Perm
from closeout.access.services import user_has_perm
from closeout.approvals.models import RequestAction, RequestState
from closeout.approvals.selectors import route_choose
from closeout.approvals.services import close_request_submit, reopen_request_submit
from closeout.approvals.submit_bulk import CloseRequestItem, close_requests_submit
from closeout.audit.models import AuditAction
from closeout.audit.services import audit_append
from closeout.batches.import_checks import failing_rules
from closeout.batches.import_facts import Facts, rule_facts
from closeout.batches.models import BatchAction, BatchItem, BatchJob, ItemState
from closeout.batches.services import DecideChunk, close_outcome, item_mark, lock_documents
from closeout.closing.close_bulk import lines_released
from closeout.closing.dimension_services import line_dimension_close
from closeout.closing.dimensions import dimension_get, dimension_words
from closeout.closing.guards import close_date_refusals, close_path_of
from closeout.closing.models import ReasonAction, Severity
from closeout.closing.reasons import ReasonTable
from closeout.closing.selectors import released_value_for, verdicts_for
from closeout.closing.services import (
    REMARK_MAX,
    close_documents_bulk,
    document_close,
    document_reopen,
    remark_required,
)
from closeout.core.errors import DomainError, InvalidTransition, Message
from closeout.documents.models import CloseKind, CloseState, Document, Line


def _params(item: BatchItem) -> dict[str, Any]:
    return item.params or {}


def _close_date(params: dict[str, Any]) -> date | None:
    value = params.get("close_date")
    return date.fromisoformat(value) if value else None


def _changed(document: Document, expected: str) -> str:
    return (
        f"{document.label} is {document.close_state} now, not {expected} as when the file was "
        "validated; nothing done"
    )


def process_import_items(job: BatchJob, items: list[BatchItem]) -> None:
    """The documents are locked first (in id order, as every batch chunk does). Whole-document
    and line closes go set-based (a few statements per chunk); requests, reopens, the rows of
    a document named more than once in the chunk, and every close the set-based checks do not
    clear go one by one through the close services, each in its own savepoint."""
    documents = lock_documents(items)
    rows = Counter(item.document_id for item in items)
    whole: list[tuple[BatchItem, Document]] = []
    lines: list[tuple[BatchItem, Document]] = []
    requests: list[tuple[BatchItem, Document]] = []
    for item in items:
        params = _params(item)
        document = documents.get(item.document_id or 0)
        action = params.get("action", "")
        if document is None:
            item_mark(
                item,
                ItemState.FAILED,
                "refused",
                Message(N_("%(document)s: the document no longer exists"), document=item.label),
            )
            continue
        if action in ("close", "request") and document.close_state != CloseState.OPEN:
            item_mark(item, ItemState.SKIPPED, "skipped", _changed(document, "open"))
            continue
        if action == "reopen" and document.close_state != CloseState.CLOSED:
            item_mark(item, ItemState.SKIPPED, "skipped", _changed(document, "closed"))
            continue
        if params.get("dimension"):
            _run_dimension(job, item, document, params)
        elif action == "close" and not params.get("line_nos"):
            whole.append((item, document))
        elif action == "close" and rows[document.pk] == 1:
            lines.append((item, document))
        elif action == "request" and not params.get("line_nos") and rows[document.pk] == 1:
            requests.append((item, document))
        else:
            _run_row(job, item, document, params)
    if lines:
        _close_lines(job, lines)
    if whole:
        _close_whole(job, whole, requests)
    if requests:
        _submit_requests(job, requests)


def _submit_requests(job: BatchJob, rows: list[tuple[BatchItem, Document]]) -> None:
    """Whole-document close requests of the chunk in one bulk submit (`close_requests_submit`:
    the checks, records and audit events of a single submit, each row all-or-nothing)."""
    results = close_requests_submit(
        actor=job.created_by,
        items=[
            CloseRequestItem(
                document=document,
                reason_code=_params(item).get("reason_code", ""),
                remark=_params(item).get("remark", ""),
                close_date=_close_date(_params(item)),
            )
            for item, document in rows
        ],
    )
    for (item, _document), result in zip(rows, results, strict=True):
        if isinstance(result, DomainError):
            item_mark(item, ItemState.FAILED, "refused", result)
        elif result.state == RequestState.EXECUTED:
            message = _executed_at_once(result.pk)
            item_mark(item, ItemState.DONE, "closed", message)
        else:
            item_mark(item, ItemState.DONE, "requested", _waits(result.pk))


def _run_row(job: BatchJob, item: BatchItem, document: Document, params: dict[str, Any]) -> None:
    actor = job.created_by
    action = params.get("action", "")
    line_nos = params.get("line_nos") or None
    if line_nos:
        states = dict(
            Line.objects.filter(document_id=document.pk, line_no__in=line_nos).values_list(
                "line_no", "close_state"
            )
        )
        if states and all(states.get(n) == CloseState.CLOSED for n in line_nos):
            item_mark(
                item,
                ItemState.SKIPPED,
                "skipped",
                _already_closed(document.in_words, line_nos),
            )
            return
    try:
        with transaction.atomic():  # a savepoint: the row all-or-nothing
            outcome, message = _row_step(
                actor, document, action, line_nos, params, request_id=f"batch:{job.pk}"
            )
        item_mark(item, ItemState.DONE, outcome, message)
    except DomainError as error:
        item_mark(item, ItemState.FAILED, "refused", error)


def _run_dimension(
    job: BatchJob, item: BatchItem, document: Document, params: dict[str, Any]
) -> None:
    """A close of one dimension (关闭维度) of the row's lines, by the dimension close service."""
    dimension = str(params.get("dimension", ""))
    try:
        with transaction.atomic():  # a savepoint: the row all-or-nothing
            result = line_dimension_close(
                actor=job.created_by,
                document=document,
                dimension=dimension,
                reason_code=params.get("reason_code", ""),
                remark=params.get("remark", ""),
                line_nos=params.get("line_nos") or None,
                request_id=f"batch:{job.pk}",  # the batch's undo finds its closes
            )
        message = Message(
            N_("%(dimension)s: lines %(lines)s"),
            dimension=dimension_words(dimension_get(document.doc_type, dimension)),
            lines=", ".join(map(str, result.lines)),
        )
        item_mark(item, ItemState.DONE, "close_dimension", message)
    except DomainError as error:
        item_mark(item, ItemState.FAILED, "refused", error)


def _row_step(
    actor: Any,
    document: Document,
    action: str,
    line_nos: list[int] | None,
    params: dict[str, Any],
    *,
    request_id: str = "",
) -> tuple[str, Message]:
    reason, remark = params.get("reason_code", ""), params.get("remark", "")
    if action == "reopen":
        if user_has_perm(
            actor, Perm.REOPEN_APPROVE, org_unit=document.org_unit, doc_type=document.doc_type
        ):
            try:
                reopened = document_reopen(
                    actor=actor, document=document, reason_code=reason, remark=remark
                )
                lines = ", ".join(map(str, reopened.lines_reopened))
                return "reopened", Message(N_("lines reopened: %(lines)s"), lines=lines)
            except InvalidTransition as refusal:
                if refusal.details.get("needs") != "reopen_request":
                    raise
        request = reopen_request_submit(
            actor=actor, document=document, reason_code=reason, remark=remark
        )
        return "reopen_requested", Message(
            N_("reopen request #%(id)s waits for approval"), id=request.pk
        )
    # The same close, direct or (where approval is needed, or asked for) as a request.
    close: dict[str, Any] = {
        "actor": actor,
        "document": document,
        "reason_code": reason,
        "remark": remark,
        "close_date": _close_date(params),
        "line_nos": line_nos,
    }
    if action == "close":
        try:
            # Tagged with the batch, so its undo finds every row's close.
            result = document_close(**close, request_id=request_id)
            return (
                "closed" if result.header_closed else "lines_closed",
                _lines_closed(result.lines_closed),
            )
        except InvalidTransition as refusal:
            if refusal.details.get("needs") != "close_request":
                raise
    request = close_request_submit(**close)
    if request.state == RequestState.EXECUTED:
        return "closed", _executed_at_once(request.pk)
    return "requested", _waits(request.pk)


def _close_whole(
    job: BatchJob,
    whole: list[tuple[BatchItem, Document]],
    requests: list[tuple[BatchItem, Document]],
) -> None:
    """Whole-document closes as the batch close does them: decided with the set-based rule
    verdicts, closed in bulk per (type, reason, remark, date), one audit event per document;
    where an approval route applies, the row joins `requests` (a close request instead)."""
    actor = job.created_by
    permissions = DecideChunk(actor, Perm.CLOSE_DIRECT)
    by_type: dict[str, list[int]] = defaultdict(list)
    for _item, document in whole:
        by_type[document.doc_type].append(document.pk)
    verdicts = {}
    values: dict[int, Decimal] = {}
    for doc_type, ids in by_type.items():
        verdicts.update(verdicts_for(ids, doc_type=doc_type))
        values.update(released_value_for(ids, doc_type=doc_type))
    today = timezone.localdate()
    groups: dict[tuple[str, str, str, date], list[BatchItem]] = defaultdict(list)
    for item, document in whole:
        params = _params(item)
        outcome, message = close_outcome(
            job,
            document,
            verdicts.get(document.pk),
            values.get(document.pk, Decimal(0)),
            permissions,
            remark=params.get("remark", ""),
            action=BatchAction.CLOSE,
            close_date=_close_date(params) or today,
        )
        chosen = _close_date(params) or today
        if outcome == "would_close" and not document.document_date <= chosen <= today:
            outcome, message = (
                "refused",
                (
                    f"close date {chosen} must lie between the document date "
                    f"{document.document_date} and today"
                ),
            )
        if outcome == "would_close":
            key = (document.doc_type, params.get("reason_code", ""), params.get("remark", ""))
            groups[(*key, chosen)].append(item)
        elif outcome == "needs_approval":
            requests.append((item, document))
        elif outcome == "skipped":
            item_mark(item, ItemState.SKIPPED, "skipped", message)
        else:
            item_mark(item, ItemState.FAILED, "refused", message)
    now = timezone.now()
    for (doc_type, reason, remark, chosen), items in groups.items():
        entries = close_documents_bulk(
            document_ids=[i.document_id for i in items if i.document_id],
            doc_type=doc_type,
            kind=CloseKind.MANUAL,
            reason=reason,
            now=now,
            actor=actor,
            remark=remark,
            close_date=chosen,
        )
        for entry in entries:
            entry.request_id = f"batch:{job.pk}"
        audit_append(actor=actor, entries=entries, at=now)
        for item in items:
            item_mark(item, ItemState.DONE, "closed")


@dataclass
class _LineClose:
    """A line-close row the set-based checks cleared, with what its audit event records."""

    item: BatchItem
    document: Document
    line_nos: list[int]
    close_date: date
    exceptions: list[str]
    warnings: list[str]


def _close_lines(job: BatchJob, rows: list[tuple[BatchItem, Document]]) -> None:
    """Line closes as the close service does them, set-based: the rule failures of the named
    lines loaded as the validation loads them, the guards of `closing.guards` and
    `close_guard` asked with them, then one bulk close per (type, reason, remark, date) with one
    audit event per document. A row that is refused, needs approval, or is anything but plain
    goes through `document_close` one by one, so its result reads as a manual close's."""
    facts = Facts()
    by_type: dict[str, list[int]] = defaultdict(list)
    for _item, document in rows:
        by_type[document.doc_type].append(document.pk)
    for doc_type, ids in by_type.items():
        rule_facts(doc_type, sorted(ids), facts)
    chunk = DecideChunk(job.created_by, Perm.CLOSE_DIRECT)
    reasons = ReasonTable.load()
    groups: dict[tuple[str, str, str, date], list[_LineClose]] = defaultdict(list)
    for item, document in rows:
        params = _params(item)
        line_nos = [int(n) for n in params.get("line_nos") or []]
        states = facts.lines.get(document.pk, {})
        if states and all(states.get(n, ("",))[0] == CloseState.CLOSED for n in line_nos):
            item_mark(
                item,
                ItemState.SKIPPED,
                "skipped",
                _already_closed(document.in_words, line_nos),
            )
            continue
        plain = _plain_line_close(item, document, line_nos, facts, chunk, reasons)
        if plain is None:
            _run_row(job, item, document, params)
            continue
        key = (document.doc_type, params.get("reason_code", ""), params.get("remark", ""))
        groups[(*key, plain.close_date)].append(plain)
    now = timezone.now()
    for (doc_type, reason, remark, day), members in groups.items():
        _bulk_close_lines(job, doc_type, reason, remark, day, members, facts, now)


def _plain_line_close(
    item: BatchItem,
    document: Document,
    line_nos: list[int],
    facts: Facts,
    chunk: DecideChunk,
    reasons: ReasonTable,
) -> _LineClose | None:
    """The row as a plain direct close of open lines (None when the close service must judge
    it): the actor may close, the reason is in use, the date passes the guards, no blocking
    rule fails, an exception has its remark, and neither the policy nor a route asks for
    approval."""
    params = _params(item)
    states = facts.lines.get(document.pk, {})
    remark = params.get("remark", "")
    if (
        not line_nos
        or any(states.get(n, ("",))[0] != CloseState.OPEN for n in line_nos)
        or not chunk.allows(document)
        or reasons.valid(params.get("reason_code", ""), ReasonAction.CLOSE, document.company_id)
        is None
        or len(remark) > REMARK_MAX
    ):
        return None
    today = timezone.localdate()
    day = _close_date(params) or today
    if close_date_refusals(
        day,
        today=today,
        document_date=document.document_date,
        period_closed=bool(chunk.period_refusal(day, document.company_id)),
    ):
        return None
    failing = failing_rules(document.pk, facts, line_nos, line_nos)
    exceptions = failing[Severity.EXCEPTION]
    if failing[Severity.BLOCKING] or remark_required(exceptions=exceptions, remark=remark):
        return None
    policy = facts.policy.get(document.pk)
    route = (
        route_choose(
            document=document,
            action=RequestAction.CLOSE,
            exception=bool(exceptions),
            open_value=sum((states[n][1] for n in line_nos), Decimal(0)),
            routes=chunk.routes,
        )
        if chunk.routes
        else None
    )
    if (
        policy is None
        or close_path_of(
            policy_demands_approval=policy.direct_close_needs_approval,
            route=route.name if route is not None else None,
        ).needs_approval
    ):
        return None
    return _LineClose(
        item, document, sorted(line_nos), day, sorted(exceptions), sorted(failing[Severity.WARNING])
    )


def _bulk_close_lines(
    job: BatchJob,
    doc_type: str,
    reason: str,
    remark: str,
    day: date,
    members: list[_LineClose],
    facts: Facts,
    now: datetime,
) -> None:
    """Close the members' lines in one go (a header closes with its last line) and record one
    audit event per document with what a manual close records."""
    actor = job.created_by
    line_ids = [facts.line_ids[m.document.pk, n] for m in members for n in m.line_nos]
    entries = close_documents_bulk(
        document_ids=[m.document.pk for m in members],
        doc_type=doc_type,
        kind=CloseKind.MANUAL,
        reason=reason,
        now=now,
        actor=actor,
        remark=remark,
        close_date=day,
        line_ids=line_ids,
    )
    released = lines_released(line_ids)
    by_document = {m.document.pk: m for m in members}
    for entry in entries:
        member = by_document[int(entry.object_id)]
        entry.request_id = f"batch:{job.pk}"
        entry.data |= {
            "close_date": day,
            "lines": released[member.document.pk],
            "exceptions": member.exceptions,
            "warnings": member.warnings,
        }
        if remark:
            entry.data["remark"] = remark
    audit_append(actor=actor, entries=entries, at=now)
    closed = {int(e.object_id): e.action == AuditAction.DOCUMENT_CLOSED for e in entries}
    for member in members:
        message = _lines_closed(member.line_nos)
        if member.document.pk not in closed:
            item_mark(
                member.item,
                ItemState.FAILED,
                "refused",
                Message(
                    N_("%(document)s: %(what)s"), document=member.document.in_words, what=message
                ),
            )
            continue
        outcome = "closed" if closed[member.document.pk] else "lines_closed"
        item_mark(member.item, ItemState.DONE, outcome, message)


def _executed_at_once(request_id: int) -> Message:
    return Message(
        N_("close request #%(id)s: no approval route applied, closed at once"), id=request_id
    )


def _waits(request_id: int) -> Message:
    return Message(N_("close request #%(id)s waits for approval"), id=request_id)


def _lines_closed(line_nos: Sequence[int]) -> Message:
    return Message(N_("lines closed: %(lines)s"), lines=", ".join(map(str, line_nos)))


def _already_closed(document: object, line_nos: Sequence[int]) -> Message:
    return Message(
        N_("%(document)s: line %(lines)s already closed; nothing done"),
        document=document,
        lines=", ".join(map(str, line_nos)),
    )
