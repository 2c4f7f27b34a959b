"""Batch jobs: create from a list or a saved filter, preview (changes nothing), run in chunks
(one transaction per chunk; each document all-or-nothing), with progress, cancel and resume.

Workers claim chunks of pending items with FOR UPDATE SKIP LOCKED on PostgreSQL, so several
workers share one job and never take the same item; a chunk commits with its documents, so a
crash loses nothing and a rerun closes nothing twice."""

import os
import socket
import time
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

from django.contrib.auth.models import AbstractBaseUser
from django.db import OperationalError, connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from closeout.access.permissions import Perm
from closeout.access.services import require, user_has_perm
from closeout.approvals.models import CloseRequest, RequestAction, RequestState
from closeout.approvals.selectors import active_routes, route_choose
from closeout.approvals.services import (
    close_request_approve,
    close_request_reject,
    close_request_submit,
)
from closeout.audit.models import AuditAction
from closeout.audit.services import audit_append, audit_checkpoint_write, audit_record
from closeout.batches.models import BatchAction, BatchItem, BatchJob, BatchState, ItemState
from closeout.closing.models import ClosePolicy, ReasonAction, Severity
from closeout.closing.policies import policy_for
from closeout.closing.selectors import (
    DocumentVerdict,
    QueueFilter,
    document_queue,
    released_value_for,
    verdicts_for,
)
from closeout.closing.services import (
    close_documents_bulk,
    close_guard,
    document_reopen,
    reason_get,
)
from closeout.core.errors import DomainError, InvalidInput, NotFound, PermissionDenied
from closeout.core.tasks import enqueue
from closeout.documents.models import CloseKind, CloseState, Document
from closeout.documents.types import spec_for

CREATE_CHUNK = 5000
T = TypeVar("T")
DOCUMENT_ACTIONS = (BatchAction.CLOSE, BatchAction.REOPEN, BatchAction.REQUEST)


# --- creation ------------------------------------------------------------------------------


def _document_ids(
    doc_type: str, numbers: list[str] | None, queue_filter: dict[str, Any] | None
) -> Iterator[tuple[int, str]]:
    if numbers is not None:
        wanted = list(dict.fromkeys(n.strip() for n in numbers if n.strip()))
        if not wanted:
            raise InvalidInput(
                "the list of document numbers is empty", details={"field": "numbers"}
            )
        found: dict[str, int] = {}
        for start in range(0, len(wanted), 1000):
            part = wanted[start : start + 1000]
            found.update(
                Document.objects.filter(doc_type=doc_type, number__in=part).values_list(
                    "number", "pk"
                )
            )
        missing = [n for n in wanted if n not in found]
        if missing:
            shown = ", ".join(missing[:10]) + (
                f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            )
            raise InvalidInput(
                f"no {doc_type} numbered {shown}",
                details={"field": "numbers", "missing": missing[:100]},
            )
        yield from ((found[n], n) for n in wanted)
        return
    if queue_filter is None:
        raise InvalidInput(
            "a batch needs a list of numbers or a filter", details={"field": "numbers"}
        )
    selection = QueueFilter.from_dict({**queue_filter, "doc_type": doc_type})
    yield from (
        document_queue(selection)
        .order_by("pk")
        .values_list("pk", "number")
        .iterator(chunk_size=CREATE_CHUNK)
    )


@transaction.atomic
def batch_create(
    *,
    actor: AbstractBaseUser,
    action: str,
    doc_type: str = "",
    numbers: list[str] | None = None,
    queue_filter: dict[str, Any] | None = None,
    request_ids: list[int] | None = None,
    reason_code: str = "",
    remark: str = "",
    close_date: date | None = None,
    comment: str = "",
) -> BatchJob:
    """A batch job from an explicit list or a saved queue filter; nothing changes yet."""
    require(actor, Perm.BATCH_RUN, what="batch jobs")
    if action == BatchAction.IMPORT:
        raise InvalidInput(
            "an import batch is created by executing an uploaded file (closeout import run)",
            details={"field": "action"},
        )
    if action not in BatchAction.values:
        raise InvalidInput(
            f"unknown batch action '{action}'; use one of: " + ", ".join(BatchAction.values),
            details={"field": "action"},
        )
    if action in DOCUMENT_ACTIONS:
        spec_for(doc_type)
        reason_get(
            reason_code, ReasonAction.REOPEN if action == BatchAction.REOPEN else ReasonAction.CLOSE
        )
    if action == BatchAction.REJECT and not comment.strip():
        raise InvalidInput("a batch rejection needs a comment", details={"field": "comment"})
    job = BatchJob.objects.create(
        action=action,
        doc_type=doc_type if action in DOCUMENT_ACTIONS else "",
        selection={"numbers": numbers}
        if numbers is not None
        else {"filter": queue_filter}
        if queue_filter is not None
        else {"requests": request_ids},
        reason_code=reason_code,
        remark=remark,
        close_date=close_date,
        comment=comment,
        created_by_id=actor.pk,
    )
    items: list[BatchItem] = []
    total = 0

    def flush() -> None:
        nonlocal items, total
        BatchItem.objects.bulk_create(items, batch_size=CREATE_CHUNK)
        total += len(items)
        items = []

    if action in DOCUMENT_ACTIONS:
        for pk, number in _document_ids(doc_type, numbers, queue_filter):
            items.append(BatchItem(job=job, document_id=pk, label=number))
            if len(items) >= CREATE_CHUNK:
                flush()
    else:
        ids = list(dict.fromkeys(request_ids or []))
        if not ids:
            raise InvalidInput("a batch approval needs request ids", details={"field": "requests"})
        known = set(CloseRequest.objects.filter(pk__in=ids).values_list("pk", flat=True))
        missing = [i for i in ids if i not in known]
        if missing:
            raise InvalidInput(f"no close request #{missing[0]}", details={"field": "requests"})
        items = [BatchItem(job=job, request_id=i, label=f"#{i}") for i in ids]
    flush()
    if total == 0:
        raise InvalidInput("the selection matches no document", details={"field": "filter"})
    job.total = total
    job.save(update_fields=["total"])
    return job


def _job_for(actor: AbstractBaseUser, job_id: int) -> BatchJob:
    job = BatchJob.objects.select_for_update().filter(pk=job_id).first()
    if job is None:
        raise NotFound(f"no batch job #{job_id}")
    if job.created_by_id != actor.pk:
        require(actor, Perm.BATCH_RUN, what=f"batch #{job_id}")
        raise PermissionDenied(
            f"batch #{job_id} belongs to another user", details={"rule": "owner_only"}
        )
    return job


# --- preview -------------------------------------------------------------------------------


class _Chunk:
    """What deciding many documents asks again and again, asked once per chunk: the user's
    permission per organisation unit and type, the policy per unit, the approval routes."""

    def __init__(self, user: AbstractBaseUser, perm: str) -> None:
        self.user, self.perm = user, perm
        self.allowed: dict[tuple[int, str], bool] = {}
        self.policies: dict[tuple[int, str], ClosePolicy] = {}
        self.routes = active_routes(RequestAction.CLOSE)

    def allows(self, document: Document) -> bool:
        key = (document.org_unit_id, document.doc_type)
        if key not in self.allowed:
            self.allowed[key] = user_has_perm(
                self.user, self.perm, org_unit=document.org_unit, doc_type=document.doc_type
            )
        return self.allowed[key]

    def policy(self, document: Document) -> ClosePolicy:
        key = (document.org_unit_id, document.doc_type)
        if key not in self.policies:
            self.policies[key] = policy_for(document.doc_type, document.org_unit)
        return self.policies[key]


def _close_outcome(
    job: BatchJob,
    document: Document,
    verdict: DocumentVerdict | None,
    open_value: Decimal,
    chunk: _Chunk,
    *,
    remark: str | None = None,
    action: str | None = None,
) -> tuple[str, str]:
    """(predicted outcome, message) for closing one document: would_close, needs_approval or
    refused — the same guards as a manual close. An imported row passes its own remark and
    action instead of the job's."""
    remark = job.remark if remark is None else remark
    action = job.action if action is None else action
    if document.close_state != CloseState.OPEN:
        return "skipped", f"{document.label} is {document.close_state}"
    if not chunk.allows(document):
        return (
            "refused",
            f"{job.created_by.get_username()} lacks '{chunk.perm}' for {document.label}",
        )
    assert verdict is not None  # noqa: S101 (every open document has a verdict)
    try:
        close_guard(
            document.label,
            blocking={c: c for c in verdict.codes(Severity.BLOCKING)},
            exceptions={c: c for c in verdict.codes(Severity.EXCEPTION)},
            remark=remark,
        )
    except DomainError as refusal:
        return "refused", refusal.message
    exception = bool(verdict.codes(Severity.EXCEPTION))
    route = route_choose(
        document=document,
        action=RequestAction.CLOSE,
        exception=exception,
        open_value=open_value,
        routes=chunk.routes,
    )
    needs_approval = chunk.policy(document).direct_close_needs_approval
    if route is not None or needs_approval or action == BatchAction.REQUEST:
        name = route.name if route else "policy"
        return "needs_approval", f"approval route: {name}"
    return "would_close", ""


def _chunks(qs: QuerySet[BatchItem], size: int) -> Iterator[list[BatchItem]]:
    last = 0
    while True:
        chunk = list(qs.filter(pk__gt=last).order_by("pk")[:size])
        if not chunk:
            return
        yield chunk
        last = chunk[-1].pk


def batch_preview(*, actor: AbstractBaseUser, job: BatchJob, chunk_size: int = 2000) -> BatchJob:
    """Predict each item's outcome; changes no document."""
    with transaction.atomic():
        job = _job_for(actor, job.pk)
        if job.state not in (BatchState.DRAFT, BatchState.PREVIEWED):
            raise InvalidInput(f"batch #{job.pk} is {job.state}; only a draft can be previewed")
        if job.action == BatchAction.IMPORT:
            raise InvalidInput(
                f"batch #{job.pk} runs an imported file, whose rows were checked when it was "
                "validated; it has no separate preview"
            )
    counts: dict[str, int] = {}
    released = Decimal(0)
    items = BatchItem.objects.filter(job=job).select_related(
        "document", "document__org_unit", "request"
    )
    for chunk in _chunks(items, chunk_size):
        predictions = _predict(job, chunk)
        for item, (outcome, message, value) in zip(chunk, predictions, strict=True):
            item.predicted, item.predicted_message = outcome, message[:2000]
            counts[outcome] = counts.get(outcome, 0) + 1
            released += value
        BatchItem.objects.bulk_update(chunk, ["predicted", "predicted_message"])
    BatchJob.objects.filter(pk=job.pk).update(
        predicted=counts, predicted_released_value=released, state=BatchState.PREVIEWED
    )
    job.refresh_from_db()
    return job


def _predict(job: BatchJob, chunk: list[BatchItem]) -> list[tuple[str, str, Decimal]]:
    if job.action in (BatchAction.CLOSE, BatchAction.REQUEST):
        ids = [i.document_id for i in chunk if i.document_id]
        verdicts = verdicts_for(ids, doc_type=job.doc_type)
        values = released_value_for(ids, doc_type=job.doc_type)
        perm = Perm.CLOSE_REQUEST if job.action == BatchAction.REQUEST else Perm.CLOSE_DIRECT
        permissions = _Chunk(job.created_by, perm)
        result = []
        for item in chunk:
            assert item.document is not None  # noqa: S101
            value = values.get(item.document.pk, Decimal(0))
            outcome, message = _close_outcome(
                job, item.document, verdicts.get(item.document.pk), value, permissions
            )
            result.append((outcome, message, value if outcome != "refused" else Decimal(0)))
        return result
    if job.action == BatchAction.REOPEN:
        permissions = _Chunk(job.created_by, Perm.REOPEN_APPROVE)
        result = []
        for item in chunk:
            assert item.document is not None  # noqa: S101
            doc = item.document
            if doc.close_state != CloseState.CLOSED:
                result.append(("skipped", f"{doc.label} is {doc.close_state}", Decimal(0)))
            elif not permissions.allows(doc):
                result.append(("refused", f"lacks 'reopen.approve' for {doc.label}", Decimal(0)))
            else:
                result.append(("would_reopen", "", Decimal(0)))
        return result
    result = []
    for item in chunk:
        assert item.request is not None  # noqa: S101
        request = item.request
        if request.state != RequestState.PENDING:
            result.append(("skipped", f"request #{request.pk} is {request.state}", Decimal(0)))
        elif request.requester_id == job.created_by_id:
            result.append(("refused", "separation of duties: your own request", Decimal(0)))
        else:
            result.append((f"would_{job.action}", "", Decimal(0)))
    return result


# --- running -------------------------------------------------------------------------------


def batch_start(*, actor: AbstractBaseUser, job: BatchJob, workers: int = 2) -> BatchJob:
    """Queue the run; `workers` tasks share the job's items."""
    with transaction.atomic():
        job = _job_for(actor, job.pk)
        if job.state not in (BatchState.DRAFT, BatchState.PREVIEWED):
            raise InvalidInput(f"batch #{job.pk} is {job.state}; it was already started")
        job.state, job.started_at = BatchState.QUEUED, timezone.now()
        job.save(update_fields=["state", "started_at"])
        audit_record(
            actor=actor,
            action=AuditAction.BATCH_STARTED,
            object_type="batch",
            object_id=job.pk,
            object_repr=str(job),
            data={
                "action": job.action,
                "doc_type": job.doc_type,
                "total": job.total,
                "selection": job.selection,
                "reason": job.reason_code,
            },
        )
        _enqueue_workers(job.pk, workers)
    job.refresh_from_db()
    return job


def _enqueue_workers(job_id: int, workers: int) -> None:
    from closeout.batches.tasks import batch_work_task

    for _ in range(max(1, workers)):
        enqueue(batch_work_task, job_id)


def batch_resume(*, actor: AbstractBaseUser, job: BatchJob, workers: int = 2) -> BatchJob:
    """After a crash or a cancel: queue workers again for the items still pending."""
    with transaction.atomic():
        job = _job_for(actor, job.pk)
        if job.state == BatchState.DONE:
            raise InvalidInput(f"batch #{job.pk} is done; nothing to resume")
        if job.state in (BatchState.DRAFT, BatchState.PREVIEWED):
            raise InvalidInput(f"batch #{job.pk} was never started")
        job.cancel_requested, job.state = False, BatchState.QUEUED
        job.save(update_fields=["cancel_requested", "state"])
        _enqueue_workers(job.pk, workers)
    job.refresh_from_db()
    return job


def batch_cancel(*, actor: AbstractBaseUser, job: BatchJob) -> BatchJob:
    """Stop after the chunk in progress; what was done stays done (each item committed)."""
    with transaction.atomic():
        job = _job_for(actor, job.pk)
        if job.state in (BatchState.DONE, BatchState.CANCELLED):
            raise InvalidInput(f"batch #{job.pk} is already {job.state}")
        job.cancel_requested = True
        if job.state in (BatchState.DRAFT, BatchState.PREVIEWED):
            job.state = BatchState.CANCELLED
        job.save(update_fields=["cancel_requested", "state"])
    job.refresh_from_db()
    return job


def _claim(job_id: int, size: int) -> list[BatchItem]:
    qs = BatchItem.objects.filter(job_id=job_id, state=ItemState.PENDING).order_by("pk")
    if connection.features.has_select_for_update_skip_locked:
        qs = qs.select_for_update(skip_locked=True, of=("self",))
    return list(qs.select_related("document", "document__org_unit", "request")[:size])


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def batch_work(job_id: int, *, chunk_size: int = 500) -> int:
    """Process chunks of the job's pending items until none is left or a cancel is asked.
    Safe to run in several workers at once and to run again after a crash."""
    done = 0
    BatchJob.objects.filter(pk=job_id, state=BatchState.QUEUED).update(state=BatchState.RUNNING)
    while True:
        job = BatchJob.objects.select_related("created_by").get(pk=job_id)
        if job.cancel_requested:
            BatchJob.objects.filter(pk=job_id).exclude(state=BatchState.DONE).update(
                state=BatchState.CANCELLED
            )
            return done
        if job.state not in (BatchState.RUNNING, BatchState.QUEUED):
            return done
        processed = _retry_when_locked(partial(_work_chunk, job, chunk_size))
        if not processed:
            break
        done += processed
    _retry_when_locked(lambda: _finish_if_complete(job_id))
    return done


def _retry_when_locked(work: Callable[[], T], attempts: int = 30) -> T:
    """Run one transaction's work again when SQLite answers "database is locked" (a writer met
    another: the embedded server's request threads). The transaction rolled back whole, so
    running it again is safe."""
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except OperationalError as exc:
            if connection.vendor != "sqlite" or "locked" not in str(exc) or attempt == attempts:
                raise
            time.sleep(0.05 * attempt)
    raise AssertionError("unreachable")


def _work_chunk(job: BatchJob, chunk_size: int) -> int:
    with transaction.atomic():
        items = _claim(job.pk, chunk_size)
        if not items:
            return 0
        _process(job, items)
        name = worker_name()
        for item in items:
            item.worker = name
        BatchItem.objects.bulk_update(
            items, ["state", "outcome", "message", "processed_at", "worker"]
        )
        tally = {s: sum(1 for i in items if i.state == s) for s in ItemState.values}
        BatchJob.objects.filter(pk=job.pk).update(
            processed=F("processed") + len(items),
            succeeded=F("succeeded") + tally[ItemState.DONE],
            failed=F("failed") + tally[ItemState.FAILED],
            skipped=F("skipped") + tally[ItemState.SKIPPED],
        )
        return len(items)


def _finish_if_complete(job_id: int) -> None:
    with transaction.atomic():
        job = BatchJob.objects.select_for_update().get(pk=job_id)
        pending = BatchItem.objects.filter(job_id=job_id, state=ItemState.PENDING).exists()
        if pending or job.state == BatchState.DONE:
            return
        job.state, job.finished_at = BatchState.DONE, timezone.now()
        job.save(update_fields=["state", "finished_at"])
        audit_record(
            actor=job.created_by,
            action=AuditAction.BATCH_FINISHED,
            object_type="batch",
            object_id=job.pk,
            object_repr=str(job),
            data={
                "processed": job.processed,
                "succeeded": job.succeeded,
                "failed": job.failed,
                "skipped": job.skipped,
            },
        )
        # Post-close verification (S16) once the results are committed.
        from closeout.reports.tasks import batch_verify_task

        enqueue(batch_verify_task, job.pk)
        # The chain's head after the batch, sealed outside the database (a failure is logged).
        transaction.on_commit(audit_checkpoint_write, robust=True)


def _mark(item: BatchItem, state: str, outcome: str, message: str = "") -> None:
    item.state, item.outcome, item.message = state, outcome, message[:2000]
    item.processed_at = timezone.now()


def _doc(item: BatchItem) -> Document:
    if item.document is None:
        raise InvalidInput(f"batch item {item.pk} has no document")
    return item.document


def _req(item: BatchItem) -> CloseRequest:
    if item.request is None:
        raise InvalidInput(f"batch item {item.pk} has no request")
    return item.request


def _process(job: BatchJob, items: list[BatchItem]) -> None:
    if job.action == BatchAction.CLOSE:
        _process_close(job, items)
        return
    if job.action == BatchAction.IMPORT:
        from closeout.batches.import_run import process_import_items

        process_import_items(job, items)
        return
    actor = job.created_by
    steps: dict[str, Callable[[BatchItem], object]] = {
        BatchAction.REOPEN: lambda i: document_reopen(
            actor=actor, document=_doc(i), reason_code=job.reason_code, remark=job.remark
        ),
        BatchAction.REQUEST: lambda i: close_request_submit(
            actor=actor,
            document=_doc(i),
            reason_code=job.reason_code,
            remark=job.remark,
            close_date=job.close_date,
        ),
        BatchAction.APPROVE: lambda i: close_request_approve(
            actor=actor, request=_req(i), comment=job.comment
        ),
        BatchAction.REJECT: lambda i: close_request_reject(
            actor=actor, request=_req(i), comment=job.comment
        ),
    }
    for item in items:
        try:
            with transaction.atomic():  # a savepoint: each item all-or-nothing
                steps[job.action](item)
            _mark(item, ItemState.DONE, str(job.action))
        except DomainError as error:
            _mark(item, ItemState.FAILED, "refused", error.message)


def lock_documents(items: list[BatchItem]) -> dict[int, Document]:
    """The items' documents, locked in id order (as every chunk locks them, so two workers
    never wait on each other in a cycle)."""
    ids = sorted({i.document_id for i in items if i.document_id})
    return {
        d.pk: d
        for d in Document.objects.select_for_update(of=("self",))
        .select_related("org_unit")
        .filter(pk__in=ids)
        .order_by("pk")
    }


def _process_close(job: BatchJob, items: list[BatchItem]) -> None:
    """Close directly what may close, in bulk; submit requests where an approval route
    applies; refuse the rest with the reason. The documents are locked first."""
    documents = lock_documents(items)
    open_ids = [pk for pk, d in documents.items() if d.close_state == CloseState.OPEN]
    verdicts = verdicts_for(open_ids, doc_type=job.doc_type)
    values = released_value_for(open_ids, doc_type=job.doc_type)
    permissions = _Chunk(job.created_by, Perm.CLOSE_DIRECT)
    ready: list[BatchItem] = []
    for item in items:
        document = documents[item.document_id]  # type: ignore[index]
        outcome, message = _close_outcome(
            job,
            document,
            verdicts.get(document.pk),
            values.get(document.pk, Decimal(0)),
            permissions,
        )
        if outcome == "would_close":
            ready.append(item)
        elif outcome == "needs_approval":
            try:
                with transaction.atomic():
                    close_request_submit(
                        actor=job.created_by,
                        document=document,
                        reason_code=job.reason_code,
                        remark=job.remark,
                        close_date=job.close_date,
                    )
                _mark(item, ItemState.DONE, "requested", message)
            except DomainError as error:
                _mark(item, ItemState.FAILED, "refused", error.message)
        elif outcome == "skipped":
            _mark(item, ItemState.SKIPPED, "skipped", message)
        else:
            _mark(item, ItemState.FAILED, "refused", message)
    if not ready:
        return
    now = timezone.now()
    entries = close_documents_bulk(
        document_ids=[i.document_id for i in ready if i.document_id],
        doc_type=job.doc_type,
        kind=CloseKind.MANUAL,
        reason=job.reason_code,
        now=now,
        actor=job.created_by,
        remark=job.remark,
        close_date=job.close_date or timezone.localdate(now),
    )
    for entry in entries:
        entry.request_id = f"batch:{job.pk}"
    audit_append(actor=job.created_by, entries=entries, at=now)
    for item in ready:
        _mark(item, ItemState.DONE, "closed")


__all__ = [
    "batch_cancel",
    "batch_create",
    "batch_preview",
    "batch_resume",
    "batch_start",
    "batch_work",
]
