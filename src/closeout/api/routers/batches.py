"""Batch jobs: create from a list or a queue filter, preview, start, cancel, progress, items;
and the dry-run sweep."""

from typing import Any

from django.db.models import Q
from django.http import HttpRequest
from django.utils.translation import gettext_noop
from ninja import Router, Status

from closeout.access.permissions import Perm
from closeout.access.selectors import documents_visible_to
from closeout.access.services import require
from closeout.api import present
from closeout.api.routers._common import ERRORS, QUEUE_ERRORS, caller
from closeout.api.schemas import (
    BatchIn,
    BatchItemPage,
    BatchOut,
    StartIn,
    SweepIn,
    SweepOut,
    UndoIn,
)
from closeout.api.selectors import cursor_value
from closeout.batches.create import job_for
from closeout.batches.models import BatchJob
from closeout.batches.selectors import batch_results
from closeout.batches.services import (
    batch_cancel,
    batch_create,
    batch_preview,
    batch_resume,
    batch_start,
)
from closeout.batches.undo import DEFAULT_REASON, batch_undo_create
from closeout.closing.sweep import sweep_run
from closeout.core.errors import InvalidInput

router = Router(tags=["batches"])
sweep_router = Router(tags=["sweep"])

MAX_LIMIT = 1000


def _job(request: HttpRequest, job_id: int) -> BatchJob:
    return job_for(caller(request), job_id)


@router.post("", response={201: BatchOut, **ERRORS}, summary="Create a batch job")
def batch_new(request: HttpRequest, payload: BatchIn) -> Any:
    job = batch_create(
        actor=caller(request),
        action=payload.action,
        doc_type=payload.doc_type,
        numbers=payload.numbers,
        queue_filter=payload.filter,
        request_ids=payload.request_ids,
        reason_code=payload.reason,
        remark=payload.remark,
        close_date=payload.close_date,
        comment=payload.comment,
        dimension=payload.dimension,
    )
    return Status(201, present.batch_out(_job(request, job.pk)))


@router.get("/{job_id}", response={200: BatchOut, **ERRORS}, summary="Batch progress")
def batch_detail(request: HttpRequest, job_id: int) -> Any:
    return present.batch_out(_job(request, job_id))


@router.get(
    "/{job_id}/items", response={200: BatchItemPage, **ERRORS}, summary="Per-document results"
)
def batch_items(
    request: HttpRequest, job_id: int, cursor: str | None = None, limit: int = 200
) -> Any:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(
            gettext_noop("limit must be 1 to %(max)s"),
            details={"field": "limit"},
            params={"max": MAX_LIMIT},
        )
    items = batch_results(_job(request, job_id)).select_related("document")
    after = cursor_value(cursor)
    if after is not None:
        items = items.filter(pk__gt=after)
    page = list(items[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    return {
        "items": [present.batch_item_out(i) for i in page],
        "next_cursor": str(page[-1].pk) if more else None,
    }


@router.post("/{job_id}/preview", response={200: BatchOut, **ERRORS}, summary="Preview")
def batch_preview_run(request: HttpRequest, job_id: int) -> Any:
    job = batch_preview(actor=caller(request), job=_job(request, job_id))
    return present.batch_out(_job(request, job.pk))


@router.post(
    "/{job_id}/start",
    response={200: BatchOut, **QUEUE_ERRORS},
    summary="Start (503 broker_unavailable: queued, sent when the broker answers)",
)
def batch_start_run(request: HttpRequest, job_id: int, payload: StartIn | None = None) -> Any:
    workers = payload.workers if payload is not None else 2
    job = batch_start(actor=caller(request), job=_job(request, job_id), workers=workers)
    return present.batch_out(_job(request, job.pk))


@router.post(
    "/{job_id}/resume",
    response={200: BatchOut, **QUEUE_ERRORS},
    summary="Resume a failed, cancelled or interrupted run (the items still pending)",
)
def batch_resume_run(request: HttpRequest, job_id: int, payload: StartIn | None = None) -> Any:
    workers = payload.workers if payload is not None else 2
    job = batch_resume(actor=caller(request), job=_job(request, job_id), workers=workers)
    return present.batch_out(_job(request, job.pk))


@router.post(
    "/{job_id}/undo",
    response={201: BatchOut, **ERRORS},
    summary="Undo a batch: an undo job (previewed) that reopens what it closed",
)
def batch_undo_new(request: HttpRequest, job_id: int, payload: UndoIn | None = None) -> Any:
    actor = caller(request)
    job = batch_undo_create(
        actor=actor,
        job_id=_job(request, job_id).pk,
        reason_code=payload.reason if payload is not None else DEFAULT_REASON,
        remark=payload.remark if payload is not None else "",
    )
    job = batch_preview(actor=actor, job=job)
    return Status(201, present.batch_out(_job(request, job.pk)))


@router.post("/{job_id}/cancel", response={200: BatchOut, **ERRORS}, summary="Cancel")
def batch_cancel_run(request: HttpRequest, job_id: int) -> Any:
    job = batch_cancel(actor=caller(request), job=_job(request, job_id))
    return present.batch_out(_job(request, job.pk))


@sweep_router.post(
    "/dry-run",
    response={200: SweepOut, **ERRORS},
    summary="What the automatic-close sweep would do now (changes nothing)",
)
def sweep_dry_run(request: HttpRequest, payload: SweepIn | None = None) -> Any:
    doc_type = payload.doc_type if payload is not None else ""
    actor = caller(request)
    require(actor, Perm.DOCUMENT_VIEW, doc_type=doc_type or None, what="sweep dry run")
    # Counts and the exception sample cover only the documents the caller may view (no
    # condition, and a stored run as before, for a caller who may view the whole company).
    visible = documents_visible_to(actor, Perm.DOCUMENT_VIEW)
    run = sweep_run(
        doc_type=doc_type or None, dry_run=True, within=None if visible == Q() else visible
    )
    return SweepOut(
        dry_run=True,
        doc_type=run.doc_type,
        examined=run.examined,
        would_close=run.closed,
        lines=run.lines_closed,
        exception_queue=run.exception_queue,
        warning_only=run.warning_only,
        blocked=run.blocked,
        not_due=run.not_due,
        policy_off=run.policy_off,
        rule_failures={str(k): int(v) for k, v in (run.rule_failures or {}).items()},
        exception_sample=[str(x) for x in run.exception_sample or []],
    )
