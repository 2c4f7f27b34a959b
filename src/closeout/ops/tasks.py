"""Celery entry point for the scheduled backup (beat, CLOSEOUT_BACKUP_EVERY_SECONDS)."""

from typing import Any

from celery import shared_task

from closeout.ops.backup import backup_to_folder


@shared_task(name="closeout.backup")
def backup_task() -> dict[str, Any]:
    manifest = backup_to_folder(actor=None, reason="scheduled")
    return {"file": manifest.file, "sha256": manifest.sha256, "rows": manifest.rows}
