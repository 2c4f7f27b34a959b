"""Celery entry points for approvals."""

from celery import shared_task

from closeout.approvals.decide import approvals_overdue_notify


@shared_task(name="closeout.approvals_overdue")
def approvals_overdue_task() -> int:
    return approvals_overdue_notify()
