"""Processing the items of a claimed chunk of a batch job: lock their documents, close, reopen
or request each, record the outcomes, and finish the job with its last chunk."""

import os
import socket
from collections.abc import Callable
from decimal import Decimal
from functools import partial

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_noop

from closeout.access.permissions import Perm
from closeout.approvals.decide import close_request_approve, close_request_reject
from closeout.approvals.models import CloseRequest, RequestState
from closeout.approvals.submit import close_request_submit
from closeout.approvals.submit_bulk import CloseRequestItem, close_requests_submit
from closeout.audit.models import AuditAction, AuditChainHead, AuditObject
from closeout.audit.services import audit_append, audit_checkpoint_write, audit_record
from closeout.batches.create import items_save
from closeout.batches.dimension_batch import job_dimension, process_dimension
from closeout.batches.hooks import batch_finished
from closeout.batches.messages import item_message_set
from closeout.batches.models import BatchAction, BatchItem, BatchJob, BatchState, ItemState
from closeout.batches.preview import DecideChunk, _close_outcome_words
from closeout.closing.selectors import (
    released_value_for,
    verdicts_for,
)
from closeout.closing.services import (
    close_documents_bulk,
    document_reopen,
)
from closeout.core.errors import (
    DomainError,
    InvalidInput,
    Message,
)
from closeout.core.locking import skip_locked
from closeout.core.metrics import observe_batch_finished
from closeout.documents.models import CloseKind, CloseState, Document


def _claim(job_id: int, size: int, *, related: bool = True) -> list[BatchItem]:
    """The next pending items, locked; with `related`, their documents and requests read along
    (an import's rows lock and read their documents themselves)."""
    qs = BatchItem.objects.filter(job_id=job_id, state=ItemState.PENDING).order_by("pk")
    qs = skip_locked(qs)
    if related:
        qs = qs.select_related("document", "document__org_unit", "request")
    return list(qs[:size])


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _work_chunk(job: BatchJob, chunk_size: int) -> int:
    with transaction.atomic():
        if job.action == BatchAction.IMPORT:
            items = _claim(job.pk, chunk_size, related=False)
        else:
            items = _claim(job.pk, chunk_size)
        if not items:
            return 0
        _process(job, items)
        name, now = worker_name(), timezone.now()
        for item in items:
            item.worker, item.processed_at = name, now
        items_save(items, ["state", "outcome", "message", "processed_at", "worker"])
        # Only the items whose run message reads differently by language write their params.
        worded = [i for i in items if i.params and "run_message" in i.params]
        if worded:
            items_save(worded, ["params"])
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
        # The audit head before the job row: a chunk takes them in that order too (its audit
        # events, then its counters), so a finishing worker never waits on a working one in a
        # cycle.
        AuditChainHead.objects.select_for_update(no_key=True).filter(pk=1).first()
        job = BatchJob.objects.select_for_update(no_key=True).get(pk=job_id)
        pending = BatchItem.objects.filter(job_id=job_id, state=ItemState.PENDING).exists()
        if pending or job.state == BatchState.DONE:
            return
        job.state, job.finished_at, job.error = BatchState.DONE, timezone.now(), ""
        job.error_message = {}
        job.save(update_fields=["state", "finished_at", "error", "error_message"])
        audit_record(
            actor=job.created_by,
            action=AuditAction.BATCH_FINISHED,
            object_type=AuditObject.BATCH,
            object_id=job.pk,
            object_repr=str(job),
            data={
                "processed": job.processed,
                "succeeded": job.succeeded,
                "failed": job.failed,
                "skipped": job.skipped,
            },
        )
        # Post-close verification (S16) and whatever else other apps registered.
        batch_finished(job.pk)
        transaction.on_commit(partial(observe_batch_finished, job))
        # The chain's head after the batch, sealed outside the database (a failure is logged).
        transaction.on_commit(audit_checkpoint_write, robust=True)


def item_mark(item: BatchItem, state: str, outcome: str, message: object = "") -> None:
    """Record an item's run. A DomainError or Bilingual message is also kept as msgid and
    params (messages.message_record), for the page to render in the reader's language."""
    item.state, item.outcome = state, outcome
    item_message_set(item, message)
    item.processed_at = timezone.now()


def _doc(item: BatchItem) -> Document:
    if item.document is None:
        raise InvalidInput(
            gettext_noop("batch item %(item)s has no document"), params={"item": item.pk}
        )
    return item.document


def _req(item: BatchItem) -> CloseRequest:
    if item.request is None:
        raise InvalidInput(
            gettext_noop("batch item %(item)s has no request"), params={"item": item.pk}
        )
    return item.request


def _process(job: BatchJob, items: list[BatchItem]) -> None:
    if job_dimension(job):
        process_dimension(job, items)
        return
    if job.action == BatchAction.CLOSE:
        _process_close(job, items)
        return
    if job.action == BatchAction.IMPORT:
        from closeout.batches.import_run import process_import_items

        process_import_items(job, items)
        return
    if job.action == BatchAction.UNDO:
        from closeout.batches.undo_run import process_undo_items

        process_undo_items(job, items)
        return
    actor = job.created_by
    lock_documents(items)
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
            item_mark(item, ItemState.DONE, str(job.action))
        except DomainError as error:
            item_mark(item, ItemState.FAILED, "refused", error)


def lock_documents(items: list[BatchItem]) -> dict[int, Document]:
    """The items' documents (or their requests' documents), locked in id order before any of
    them is changed: every chunk and every single-document writer then takes document locks in
    one global order, so two of them never wait on each other in a cycle."""
    ids = sorted(
        {i.document_id or (i.request.document_id if i.request else 0) for i in items} - {0}
    )
    return {
        d.pk: d
        for d in Document.objects.select_for_update(of=("self",), no_key=True)
        .select_related("org_unit")
        .filter(pk__in=ids)
        .order_by("pk")
    }


def _request_close(job: BatchJob, asking: list[tuple[BatchItem, Document, object]]) -> None:
    """Where an approval route applies, close requests instead, submitted together
    (`close_requests_submit`: each all-or-nothing, as one by one)."""
    results = close_requests_submit(
        actor=job.created_by,
        items=[
            CloseRequestItem(
                document=document,
                reason_code=job.reason_code,
                remark=job.remark,
                close_date=job.close_date,
            )
            for _item, document, _message in asking
        ],
    )
    requested: list[BatchItem] = []
    for (item, _document, message), result in zip(asking, results, strict=True):
        if isinstance(result, DomainError):
            item_mark(item, ItemState.FAILED, "refused", result)
            continue
        item.request = result
        requested.append(item)
        if result.state == RequestState.EXECUTED:
            # No route applied when it was submitted: it closed at once (an undo of the
            # batch finds it by its request).
            message = Message(
                gettext_noop("close request #%(id)s: no approval route applied, closed at once"),
                id=result.pk,
            )
        item_mark(item, ItemState.DONE, "requested", message)
    if requested:
        BatchItem.objects.bulk_update(requested, ["request"])


def _process_close(job: BatchJob, items: list[BatchItem]) -> None:
    """Close directly what may close, in bulk; submit requests where an approval route
    applies; refuse the rest with the reason. The documents are locked first."""
    documents = lock_documents(items)
    open_ids = [pk for pk, d in documents.items() if d.close_state == CloseState.OPEN]
    verdicts = verdicts_for(open_ids, doc_type=job.doc_type)
    values = released_value_for(open_ids, doc_type=job.doc_type)
    permissions = DecideChunk(job.created_by, Perm.CLOSE_DIRECT)
    ready: list[BatchItem] = []
    asking: list[tuple[BatchItem, Document, object]] = []
    for item in items:
        document = documents[item.document_id]  # type: ignore[index]
        outcome, message = _close_outcome_words(
            job,
            document,
            verdicts.get(document.pk),
            values.get(document.pk, Decimal(0)),
            permissions,
        )
        outcome = "refused" if outcome == "needs_remark" else outcome
        if outcome == "would_close":
            ready.append(item)
        elif outcome == "needs_approval":
            asking.append((item, document, message))
        elif outcome == "skipped":
            item_mark(item, ItemState.SKIPPED, "skipped", message)
        else:
            item_mark(item, ItemState.FAILED, "refused", message)
    if asking:
        _request_close(job, asking)
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
        item_mark(item, ItemState.DONE, "closed")


__all__ = ["lock_documents", "worker_name"]
