"""Celery entry points for the automatic close sweep."""

from celery import shared_task

from closeout.closing.sweep import sweep_run


@shared_task(name="closeout.sweep", acks_late=True, reject_on_worker_lost=True)
def sweep_task(doc_type: str | None = None) -> int:
    """One sweep pass; several running at once share the work (SKIP LOCKED chunks)."""
    return sweep_run(doc_type=doc_type).closed
