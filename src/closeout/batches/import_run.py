"""Executing imported rows inside the batch machinery: each item carries its own action and
parameters (row number, line numbers, reason, remark, close date), which take the place of the
job's. Each row is all-or-nothing; a row whose document changed since validation gets a clear
result of its own, and running the rows again changes nothing."""

from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from closeout.access.permissions import Perm
from closeout.access.services import user_has_perm
from closeout.approvals.models import RequestState
from closeout.approvals.services import close_request_submit, reopen_request_submit
from closeout.audit.services import audit_append
from closeout.batches.models import BatchAction, BatchItem, BatchJob, ItemState
from closeout.batches.services import _Chunk, _close_outcome, _mark, lock_documents
from closeout.closing.selectors import released_value_for, verdicts_for
from closeout.closing.services import close_documents_bulk, document_close, document_reopen
from closeout.core.errors import DomainError, InvalidTransition
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
    """The documents are locked first (in id order, as every batch chunk does)."""
    documents = lock_documents(items)
    whole: list[tuple[BatchItem, Document]] = []
    for item in items:
        params = _params(item)
        document = documents.get(item.document_id or 0)
        action = params.get("action", "")
        if document is None:
            _mark(item, ItemState.FAILED, "refused", f"{item.label}: the document no longer exists")
            continue
        if action in ("close", "request") and document.close_state != CloseState.OPEN:
            _mark(item, ItemState.SKIPPED, "skipped", _changed(document, "open"))
            continue
        if action == "reopen" and document.close_state != CloseState.CLOSED:
            _mark(item, ItemState.SKIPPED, "skipped", _changed(document, "closed"))
            continue
        if action == "close" and not params.get("line_nos"):
            whole.append((item, document))
            continue
        _run_row(job, item, document, params)
    if whole:
        _close_whole(job, whole)


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
            _mark(
                item,
                ItemState.SKIPPED,
                "skipped",
                f"{document.label}: line {', '.join(map(str, line_nos))} already closed; "
                "nothing done",
            )
            return
    try:
        with transaction.atomic():  # a savepoint: the row all-or-nothing
            outcome, message = _row_step(actor, document, action, line_nos, params)
        _mark(item, ItemState.DONE, outcome, message)
    except DomainError as error:
        _mark(item, ItemState.FAILED, "refused", error.message)


def _row_step(
    actor: Any, document: Document, action: str, line_nos: list[int] | None, params: dict[str, Any]
) -> tuple[str, str]:
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
                return "reopened", f"lines reopened: {lines}"
            except InvalidTransition as refusal:
                if refusal.details.get("needs") != "reopen_request":
                    raise
        request = reopen_request_submit(
            actor=actor, document=document, reason_code=reason, remark=remark
        )
        return "reopen_requested", f"reopen request #{request.pk} waits for approval"
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
            result = document_close(**close)
            return (
                "closed" if result.header_closed else "lines_closed",
                f"lines closed: {', '.join(map(str, result.lines_closed))}",
            )
        except InvalidTransition as refusal:
            if refusal.details.get("needs") != "close_request":
                raise
    request = close_request_submit(**close)
    if request.state == RequestState.EXECUTED:
        return "closed", f"close request #{request.pk}: no approval route applied, closed at once"
    return "requested", f"close request #{request.pk} waits for approval"


def _close_whole(job: BatchJob, whole: list[tuple[BatchItem, Document]]) -> None:
    """Whole-document closes as the batch close does them: decided with the set-based rule
    verdicts, closed in bulk per (type, reason, remark, date), one audit event per document;
    where an approval route applies, a close request is submitted instead."""
    actor = job.created_by
    permissions = _Chunk(actor, Perm.CLOSE_DIRECT)
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
        outcome, message = _close_outcome(
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
            _run_row(job, item, document, {**params, "action": "request"})
        elif outcome == "skipped":
            _mark(item, ItemState.SKIPPED, "skipped", message)
        else:
            _mark(item, ItemState.FAILED, "refused", message)
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
            _mark(item, ItemState.DONE, "closed")
