"""Celery entry points for the audit chain."""

from typing import Any

from celery import shared_task

from closeout.audit.services import audit_checkpoint_write


@shared_task(name="closeout.audit_checkpoint")
def audit_checkpoint_task() -> dict[str, Any]:
    return audit_checkpoint_write().as_dict()
