"""Celery entry points of the reports app: the scheduled consistency checks and the
verification after a batch job. They take ids, re-read rows and call a service."""

from celery import shared_task

from closeout.core.tasks import enqueue
from closeout.reports.diagnostics import diagnostics_run
from closeout.reports.models import DiagnosticTrigger
from closeout.reports.verification import batch_verify


@shared_task(name="closeout.diagnostics")
def diagnostics_task(actor_id: int | None = None) -> int:
    """One run: scheduled (no actor) or asked for on the page by `actor_id`; returns the number
    of problems found."""
    if actor_id is None:
        return diagnostics_run(actor=None, trigger=DiagnosticTrigger.SCHEDULED).problems
    from django.contrib.auth import get_user_model

    actor = get_user_model().objects.get(pk=actor_id)
    return diagnostics_run(actor=actor, trigger=DiagnosticTrigger.MANUAL).problems


@shared_task(name="closeout.batch_verify", acks_late=True, reject_on_worker_lost=True)
def batch_verify_task(job_id: int) -> bool:
    """Verify a finished batch (safe to run twice: each run stores its own result)."""
    return batch_verify(job_id=job_id, actor=None).passed


def batch_verify_after_commit(job_id: int) -> None:
    """Registered with batches (ReportsConfig.ready): verify a finished batch once its results
    are committed."""
    enqueue(batch_verify_task, job_id)
