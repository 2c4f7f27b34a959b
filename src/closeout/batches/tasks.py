"""Celery entry points for batch jobs: take ids, re-read rows, call a service."""

from typing import Any

from celery import Task, shared_task
from django.conf import settings

from closeout.batches.services import (
    CONNECTION_ERRORS,
    batch_dispatch_pending,
    batch_fail,
    batch_note_retry,
    batch_work,
    reset_connection,
)


class BatchWorkTask(Task):  # type: ignore[misc]
    """Records on the job what happens to its run: each retry's reason while it retries, and
    the failure once the retries are spent or an error that is not retried stopped it."""

    def on_retry(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        # Celery's own countdown: retry_backoff × 2^retries, at most retry_backoff_max.
        delay = min(self.retry_backoff * 2**self.request.retries, self.retry_backoff_max)
        batch_note_retry(args[0], exc, self.request.retries + 1, self.max_retries, delay)

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        retried = isinstance(exc, CONNECTION_ERRORS)
        batch_fail(args[0], exc, retries=self.max_retries if retried else None)


@shared_task(
    bind=True,
    base=BatchWorkTask,
    name="closeout.batch_work",
    acks_late=True,
    reject_on_worker_lost=True,
    # A lost database connection: the chunk rolled back whole and items are claimed by state,
    # so running again is safe. Bounded, with exponential backoff (about 2, 4, 8… s, ≤ 60 s).
    autoretry_for=CONNECTION_ERRORS,
    max_retries=settings.CLOSEOUT_BATCH_RETRIES,
    retry_backoff=max(1, int(settings.CLOSEOUT_BATCH_RETRY_BACKOFF)),
    retry_backoff_max=60,
    # Exact delays, so the job can say when it retries; a job's few workers retrying together
    # is harmless.
    retry_jitter=False,
)
def batch_work_task(self: Task, job_id: int) -> int:
    try:
        return batch_work(job_id)
    except CONNECTION_ERRORS:
        reset_connection()
        raise


@shared_task(name="closeout.batch_dispatch_pending")
def batch_dispatch_pending_task() -> int:
    """Send the worker tasks of jobs whose start met no broker."""
    return batch_dispatch_pending()
