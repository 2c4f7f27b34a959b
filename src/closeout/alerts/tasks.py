"""Celery entry point for the alert rules."""

from celery import shared_task

from closeout.alerts.services import alerts_run


@shared_task(name="closeout.alerts")
def alerts_task() -> int:
    return sum(run.count for run in alerts_run())
