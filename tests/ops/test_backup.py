"""Backup and restore (备份, issue 16 §3), in-process on the test database of the pass (SQLite
file copy with the online backup API, or pg_dump): a damaged or truncated file and a manifest
that does not match are refused, saying what differs; a restore into a database that holds rows
is refused, naming the tables; scheduled backups keep the newest N; a big batch backs up first
and does not start when that fails. The full round trips (backup, wipe, restore, work on) run
the real command in tests/ops/test_backup_roundtrip.py."""

import json
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from closeout.audit.models import AuditAction, AuditEvent
from closeout.audit.services import audit_chain_verify
from closeout.batches.models import BatchState
from closeout.batches.services import batch_start
from closeout.documents.models import Document
from closeout.ops.backup import (
    BackupFailed,
    BackupInvalid,
    RestoreRefused,
    backup_files,
    backup_restore,
    backup_take,
    backup_verify,
    manifest_path,
    sha256_of,
)
from closeout.ops.tasks import backup_task
from tests.batches.test_batch_outbox import _started_job
from tests.factories import PO, make_document, org_tree

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _backup(tmp_path: Path, n_documents: int = 2) -> Path:
    org = org_tree()
    for _ in range(n_documents):
        make_document(PO, org.dept_a)
    out = tmp_path / "closeout.backup"
    backup_take(actor=None, out=out)
    return out


def test_backup_writes_a_manifest_that_verifies_and_is_audited(tmp_path: Path) -> None:
    out = _backup(tmp_path)
    manifest = json.loads(manifest_path(out).read_text("utf-8"))
    assert manifest["tables"]["documents_document"] == Document.objects.count() == 2
    assert "audit.0001_initial" in manifest["migrations"]
    assert manifest["vendor"] in ("sqlite", "postgresql")
    assert len(manifest["sha256"]) == 64
    # The backup's head is the head before its own event, which comes after it.
    event = AuditEvent.objects.order_by("-seq").first()
    assert event is not None and event.action == AuditAction.BACKUP_TAKEN
    assert event.seq == manifest["audit_seq"] + 1
    assert event.data["sha256"] == manifest["sha256"]
    assert backup_verify(path=out).audit_seq == manifest["audit_seq"]
    assert audit_chain_verify().intact


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_corrupted_or_truncated_backup_is_refused(tmp_path: Path, damage: str) -> None:
    out = _backup(tmp_path)
    data = bytearray(out.read_bytes())
    if damage == "flip":
        for at in range(len(data) // 2, len(data) // 2 + 16):
            data[at] ^= 0xFF
    else:
        data = data[: len(data) // 2]
    out.write_bytes(bytes(data))
    with pytest.raises(BackupInvalid) as caught:
        backup_verify(path=out)
    assert str(out) in caught.value.message
    size = json.loads(manifest_path(out).read_text("utf-8"))["size"]
    assert ("sha256" if damage == "flip" else str(size)) in caught.value.message
    with pytest.raises(CommandError) as by_command:
        call_command("backup", "verify", str(out))
    assert by_command.value.returncode == 2
    with pytest.raises(BackupInvalid):
        backup_restore(actor=None, path=out)


def test_a_damaged_file_with_a_matching_checksum_is_still_refused(tmp_path: Path) -> None:
    """The checksum rewritten to match the damage: opening the copy finds it."""
    out = _backup(tmp_path)
    out.write_bytes(b"not a backup at all" * 100)
    raw = json.loads(manifest_path(out).read_text("utf-8"))
    raw.update(size=out.stat().st_size, sha256=sha256_of(out))
    manifest_path(out).write_text(json.dumps(raw), "utf-8")
    with pytest.raises(BackupInvalid):
        backup_verify(path=out)


def test_a_manifest_that_does_not_match_is_refused_naming_table_expected_found(
    tmp_path: Path,
) -> None:
    out = _backup(tmp_path, n_documents=3)
    raw = json.loads(manifest_path(out).read_text("utf-8"))
    raw["tables"]["documents_document"] = 5
    manifest_path(out).write_text(json.dumps(raw), "utf-8")
    with pytest.raises(BackupInvalid) as caught:
        backup_verify(path=out)
    [difference] = caught.value.details["differences"]
    assert "documents_document" in difference and "5" in difference and "3" in difference
    assert difference in caught.value.message

    raw["tables"]["documents_document"] = 3
    raw["audit_seq"] += 1
    manifest_path(out).write_text(json.dumps(raw), "utf-8")
    with pytest.raises(BackupInvalid, match="#"):
        backup_verify(path=out)

    manifest_path(out).unlink()
    with pytest.raises(BackupInvalid, match="manifest"):
        backup_verify(path=out)


def test_restore_into_a_database_that_holds_rows_is_refused(tmp_path: Path) -> None:
    out = _backup(tmp_path)
    before = Document.objects.count()
    with pytest.raises(RestoreRefused) as caught:
        backup_restore(actor=None, path=out)
    assert "documents_document (2)" in caught.value.message
    assert caught.value.details["tables"]["documents_document"] == 2
    with pytest.raises(CommandError, match="documents_document"):
        call_command("restore", str(out))
    assert Document.objects.count() == before


def test_scheduled_backups_keep_the_newest_n_with_their_manifests(tmp_path: Path) -> None:
    org_tree()
    assert settings.CELERY_BEAT_SCHEDULE["backup"]["task"] == backup_task.name == "closeout.backup"
    with override_settings(CLOSEOUT_BACKUP_DIR=tmp_path / "backups", CLOSEOUT_BACKUP_KEEP=2):
        taken = [backup_task.run()["file"] for _ in range(3)]
        kept = backup_files()
    assert [p.name for p in kept] == taken[1:]
    names = sorted(p.name for p in (tmp_path / "backups").iterdir())
    assert names == sorted([*taken[1:], *(f"{n}.manifest.json" for n in taken[1:])])


@pytest.mark.parametrize(("documents", "backups"), [(3, 1), (2, 0)])
def test_a_batch_over_the_threshold_takes_a_backup_first(
    tmp_path: Path, documents: int, backups: int
) -> None:
    buyer, job = _started_job(documents)
    folder = tmp_path / "backups"
    with override_settings(
        CLOSEOUT_BACKUP_DIR=folder, CLOSEOUT_BACKUP_BEFORE_BATCH_OVER=2, CLOSEOUT_TASKS_INLINE=True
    ):
        batch_start(actor=buyer, job=job, workers=1)
    job.refresh_from_db()
    assert job.state == BatchState.DONE and job.succeeded == documents
    taken = backup_files(folder)
    assert len(taken) == backups
    if backups:
        assert f"batch{job.pk}" in taken[0].name
        backup_verify(path=taken[0])
        event = AuditEvent.objects.get(action=AuditAction.BACKUP_TAKEN)
        started = AuditEvent.objects.get(action=AuditAction.BATCH_STARTED)
        assert event.seq < started.seq and event.actor_id == buyer.pk


def test_a_batch_whose_backup_fails_does_not_start_and_says_why(tmp_path: Path) -> None:
    buyer, job = _started_job(3)
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the backup folder should be")
    with (
        override_settings(CLOSEOUT_BACKUP_DIR=blocked, CLOSEOUT_BACKUP_BEFORE_BATCH_OVER=2),
        pytest.raises(BackupFailed) as caught,
    ):
        batch_start(actor=buyer, job=job, workers=1)
    assert f"#{job.pk}" in caught.value.message
    job.refresh_from_db()
    assert job.state in (BatchState.DRAFT, BatchState.PREVIEWED)
    assert not AuditEvent.objects.filter(action=AuditAction.BATCH_STARTED).exists()
