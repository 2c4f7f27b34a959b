"""Celery entry points for the automatic close sweep."""

from celery import shared_task

from closeout.closing.sweep import sweep_run
from closeout.core.doctypes import doc_type_codes
from closeout.core.tasks import send_task


@shared_task(name="closeout.sweep", acks_late=True, reject_on_worker_lost=True)
def sweep_task(doc_type: str | None = None) -> int:
    """One sweep pass; several running at once share the work (SKIP LOCKED chunks)."""
    return sweep_run(doc_type=doc_type).closed


@shared_task(name="closeout.sweep_each_type")
def sweep_each_type_task() -> list[str]:
    """The hourly beat entry: one sweep task per document type (the one list of types, so a
    new type is swept without touching the schedule), run in parallel by the workers."""
    codes = doc_type_codes()
    for code in codes:
        send_task(sweep_task, code)
    return codes
