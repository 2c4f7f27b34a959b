"""Celery entry point of the daily archive run (归档)."""

from celery import shared_task

from closeout.reports.archive import archive_run


@shared_task(name="closeout.archive", acks_late=True, reject_on_worker_lost=True)
def archive_task(doc_type: str | None = None) -> int:
    """One archive pass as the system; running it twice archives nothing more."""
    return archive_run(doc_type=doc_type).archived
