"""An import big enough to take a backup first (on SQLite by default, over 1,000 documents)
starts its batch after the import's own transaction: the backup runs outside any transaction,
then the batch starts and runs."""

from pathlib import Path

import pytest
from django.test import override_settings

from closeout.audit.models import AuditAction, AuditEvent
from closeout.batches.imports import import_execute
from closeout.batches.models import BatchState
from closeout.ops.backup import backup_files
from tests.batches.test_imports import csv_bytes, errors_of, validate
from tests.factories import PO, org_tree, ready_document, user_with_role

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_an_import_over_the_backup_threshold_backs_up_then_runs(tmp_path: Path) -> None:
    org = org_tree()
    buyer = user_with_role("imp-backup", "operator", org.dept_a)
    docs = [ready_document(PO, org.dept_a) for _ in range(3)]
    imported = validate(
        buyer, csv_bytes([[PO, d.number, "", "close", "completed", "", ""] for d in docs])
    )
    assert imported.valid_rows == 3, errors_of(imported)
    folder = tmp_path / "backups"
    with override_settings(
        CLOSEOUT_BACKUP_DIR=folder, CLOSEOUT_BACKUP_BEFORE_BATCH_OVER=2, CLOSEOUT_TASKS_INLINE=True
    ):
        job = import_execute(actor=buyer, import_file=imported)
    job.refresh_from_db()
    assert job.state == BatchState.DONE and job.succeeded == 3
    assert len(backup_files(folder)) == 1
    actions = list(
        AuditEvent.objects.filter(
            action__in=[
                AuditAction.IMPORT_EXECUTED,
                AuditAction.BACKUP_TAKEN,
                AuditAction.BATCH_STARTED,
            ]
        )
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == [
        AuditAction.IMPORT_EXECUTED,
        AuditAction.BACKUP_TAKEN,
        AuditAction.BATCH_STARTED,
    ]
