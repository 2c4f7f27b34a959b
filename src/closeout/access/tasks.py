"""Celery entry points for grants."""

from celery import shared_task

from closeout.access.services import grants_expire


@shared_task(name="closeout.grants_expire")
def grants_expire_task() -> dict[str, int]:
    return grants_expire()
