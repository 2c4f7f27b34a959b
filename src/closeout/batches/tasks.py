"""Celery entry points for batch jobs: take ids, re-read rows, call a service."""

from celery import shared_task

from closeout.batches.services import batch_work


@shared_task(name="closeout.batch_work", acks_late=True, reject_on_worker_lost=True)
def batch_work_task(job_id: int) -> int:
    return batch_work(job_id)
