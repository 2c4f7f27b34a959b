"""Backup and restore of the whole installation (备份与恢复), verified against a manifest.

A backup is one file: on SQLite a copy made with the online backup API, on PostgreSQL a
`pg_dump -Fc` archive taken in an exported snapshot. Beside it, FILE.manifest.json says what it
holds: when, which database, the applied migrations, the rows of every table, the audit chain's
head, and the file's sha256 (so a corrupted or truncated file is caught before anything reads
it). `backup_verify` opens the copy (SQLite read-only; PostgreSQL restored into a scratch
database it drops again) and checks the manifest and the audit chain there. `backup_restore`
restores into an empty database only, then checks the counts and the chain and records itself
in the chain. The audit keys live outside the database and are not in a backup: keep them.
"""

import os
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, transaction
from django.utils.translation import gettext

from closeout.audit.models import AuditAction, AuditObject
from closeout.audit.services import (
    audit_chain_verify,
    audit_checkpoints_read,
    audit_record,
    checkpoint_file,
)
from closeout.core.errors import DomainError
from closeout.ops.backup_engines import (
    SUFFIXES,
    opened_postgresql,
    opened_sqlite,
    restore_postgresql,
    restore_sqlite,
    take_postgresql,
    take_sqlite,
)
from closeout.ops.manifest import (
    BackupFailed,
    BackupInvalid,
    Manifest,
    RestoreRefused,
    RestoreResult,
    database_contents,
    differences,
    manifest_check_file,
    manifest_path,
    manifest_read,
    manifest_write,
    occupied_tables,
    sha256_of,
)

__all__ = [
    "BackupFailed",
    "BackupInvalid",
    "Manifest",
    "RestoreRefused",
    "RestoreResult",
    "backup_before_batch",
    "backup_dir",
    "backup_files",
    "backup_prune",
    "backup_restore",
    "backup_take",
    "backup_to_folder",
    "backup_verify",
    "manifest_path",
    "manifest_read",
    "sha256_of",
]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def backup_take(*, actor: AbstractBaseUser | None, out: Path, reason: str = "manual") -> Manifest:
    """Write a consistent backup of the whole installation to `out` and its manifest beside
    it, then record the backup in the audit chain (after it: the backup's head is the head
    before this event)."""
    if connection.in_atomic_block:
        raise BackupFailed(gettext("a backup runs outside a transaction"))
    vendor = connection.vendor
    if vendor not in SUFFIXES:
        raise BackupFailed(gettext("no backup for database %(vendor)s") % {"vendor": vendor})
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.name + ".part")
    try:
        contents = take_sqlite(part) if vendor == "sqlite" else take_postgresql(part)
        manifest = Manifest(
            taken_at=_now(),
            vendor=vendor,
            file=out.name,
            size=part.stat().st_size,
            sha256=sha256_of(part),
            migrations=contents.migrations,
            tables=contents.tables,
            audit_seq=contents.audit_seq,
            audit_hash=contents.audit_hash,
            reason=reason,
        )
        os.replace(part, out)
    except (OSError, sqlite3.Error, DatabaseError) as exc:
        raise BackupFailed(
            gettext("backup to %(path)s failed: %(error)s") % {"path": out, "error": exc}
        ) from exc
    finally:
        part.unlink(missing_ok=True)
    manifest_write(out, manifest)
    _audit(actor, AuditAction.BACKUP_TAKEN, out, manifest, size=manifest.size, reason=reason)
    return manifest


def _audit(
    actor: AbstractBaseUser | None,
    action: AuditAction,
    path: Path,
    manifest: Manifest,
    **data: Any,
) -> None:
    """A backup taken or restored, in the audit chain (after the fact: a backup's head is the
    head before its own event, and a restored chain is verified before one is appended)."""
    with transaction.atomic():
        audit_record(
            actor=actor,
            action=action,
            object_type=AuditObject.BACKUP,
            object_id=manifest.sha256[:16],
            object_repr=path.name,
            data={
                "file": str(path.resolve()),
                "sha256": manifest.sha256,
                "taken_at": manifest.taken_at,
                "rows": manifest.rows,
                "audit_seq": manifest.audit_seq,
                **data,
            },
        )


@contextmanager
def _checkpoints_up_to(seq: int) -> Iterator[Path]:
    """The configured checkpoints of events up to `seq` (those after a backup's head describe
    events the backup cannot hold), as a file for `audit_chain_verify`."""
    kept = [c for c in audit_checkpoints_read().checkpoints if c.seq <= seq]
    with tempfile.TemporaryDirectory(prefix="closeout-checkpoints-") as tmp:
        path = Path(tmp) / "checkpoints.jsonl"
        path.write_text("".join(c.line() for c in kept), "utf-8")
        yield path


def _check_contents(path: Path, manifest: Manifest, using: str) -> None:
    """The counts, migrations and head of database `using` against the manifest, then its
    audit chain (the one verifier, audit_chain_verify)."""
    try:
        found = database_contents(using)
    except DatabaseError as exc:
        raise BackupInvalid(
            gettext("backup file %(path)s cannot be read: %(error)s") % {"path": path, "error": exc}
        ) from exc
    problems = differences(manifest, found)
    if problems:
        raise BackupInvalid(
            gettext("backup %(path)s does not match its manifest: %(problems)s")
            % {"path": path, "problems": "; ".join(problems)},
            details={"differences": problems},
        )
    with _checkpoints_up_to(manifest.audit_seq) as checkpoints:
        verdict = audit_chain_verify(checkpoints=checkpoints, using=using)
    if not verdict.intact:
        raise BackupInvalid(
            gettext("the audit chain in %(path)s is broken: %(problem)s")
            % {"path": path, "problem": verdict.message},
            details={"first_bad_seq": verdict.first_bad_seq},
        )


def backup_verify(*, path: Path) -> Manifest:
    """Check a backup file against its manifest: size and sha256, then (opened) the rows of
    every table, the migrations, the audit head and the audit chain. Raises BackupInvalid
    saying what differs."""
    manifest = manifest_read(path)
    manifest_check_file(path, manifest)
    opener = opened_sqlite if manifest.vendor == "sqlite" else opened_postgresql
    try:
        with opener(path) as alias:
            _check_contents(path, manifest, alias)
    except BackupFailed as exc:
        raise BackupInvalid(exc.message) from exc
    return manifest


def _move_later_checkpoints(seq: int) -> Path | None:
    """After restoring a chain that ends at #seq, the checkpoints of later events (the events
    the backup does not hold) would read as a truncation: the checkpoint file is kept under
    another name and the new one holds the checkpoints up to #seq."""
    path = checkpoint_file()
    read = audit_checkpoints_read(path)
    if not any(c.seq > seq for c in read.checkpoints):
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    aside = path.with_name(f"{path.name}.{stamp}.before-restore")
    path.rename(aside)
    path.write_text("".join(c.line() for c in read.checkpoints if c.seq <= seq), "utf-8")
    return aside


def backup_restore(*, actor: AbstractBaseUser | None, path: Path) -> RestoreResult:
    """Restore a backup into this installation's database, which must be empty; then check the
    counts and the audit chain against the manifest, and record the restore in the chain."""
    manifest = manifest_read(path)
    manifest_check_file(path, manifest)
    if manifest.vendor != connection.vendor:
        raise RestoreRefused(
            gettext("backup %(path)s is of a %(backup)s database; this installation uses %(here)s")
            % {"path": path, "backup": manifest.vendor, "here": connection.vendor}
        )
    if connection.in_atomic_block:
        raise RestoreRefused(gettext("a restore runs outside a transaction"))
    busy = occupied_tables()
    if busy:
        listed = ", ".join(f"{name} ({rows})" for name, rows in sorted(busy.items()))
        raise RestoreRefused(
            gettext(
                "the database is not empty, these tables hold rows: %(tables)s. Restore only "
                "into an empty database (a new one, migrated or not)"
            )
            % {"tables": listed},
            details={"tables": busy},
        )
    if manifest.vendor == "sqlite":
        restore_sqlite(path)
    else:
        restore_postgresql(path, connection.settings_dict, str(connection.settings_dict["NAME"]))
        connection.close()
    try:
        _check_contents(path, manifest, DEFAULT_DB_ALIAS)
    except BackupInvalid as exc:
        raise BackupInvalid(
            gettext(
                "%(problem)s. The backup was restored but does not verify: do not work on this "
                "database; empty it and restore a backup that verifies"
            )
            % {"problem": exc.message},
            details=exc.details,
        ) from exc
    result = RestoreResult(manifest, _move_later_checkpoints(manifest.audit_seq))
    moved = str(result.checkpoints_moved_to or "")
    _audit(actor, AuditAction.RESTORE_DONE, path, manifest, checkpoints_moved_to=moved)
    return result


# --- scheduled backups and retention ----------------------------------------------------------


def backup_dir() -> Path:
    return Path(settings.CLOSEOUT_BACKUP_DIR)


def backup_files(folder: Path | None = None) -> list[Path]:
    """The backups in the folder, oldest first (their names start with the UTC time)."""
    folder = folder or backup_dir()
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.glob("closeout-*")
        if p.suffix in SUFFIXES.values() and p.is_file() and not p.name.endswith(".part")
    )


def backup_prune(*, keep: int, folder: Path | None = None) -> list[Path]:
    """Delete all but the newest `keep` backups of the folder, with their manifests."""
    files = backup_files(folder)
    doomed = files[: max(len(files) - max(keep, 1), 0)]
    for path in doomed:
        path.unlink(missing_ok=True)
        manifest_path(path).unlink(missing_ok=True)
    return doomed


def backup_to_folder(*, actor: AbstractBaseUser | None, reason: str) -> Manifest:
    """A backup into CLOSEOUT_BACKUP_DIR, named after the time and the reason, then pruning
    to CLOSEOUT_BACKUP_KEEP."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    out = backup_dir() / f"closeout-{stamp}-{reason}{SUFFIXES.get(connection.vendor, '')}"
    manifest = backup_take(actor=actor, out=out, reason=reason)
    backup_prune(keep=int(settings.CLOSEOUT_BACKUP_KEEP))
    return manifest


def backup_before_batch(
    *, actor: AbstractBaseUser | None, batch_id: int, documents: int
) -> Manifest | None:
    """Before a batch job of more than CLOSEOUT_BACKUP_BEFORE_BATCH_OVER documents (0: never):
    a backup; when it fails, BackupFailed says why and the job does not start."""
    over = int(getattr(settings, "CLOSEOUT_BACKUP_BEFORE_BATCH_OVER", 0))
    if over <= 0 or documents <= over:
        return None
    try:
        return backup_to_folder(actor=actor, reason=f"batch{batch_id}")
    except (DomainError, OSError) as exc:
        error = exc.message if isinstance(exc, DomainError) else str(exc)
        raise BackupFailed(
            gettext(
                "batch #%(id)s has %(count)s documents, more than %(over)s, so a backup is taken "
                "first, and it failed: %(error)s. The batch was not started."
            )
            % {"id": batch_id, "count": documents, "over": over, "error": error},
            details={"batch": batch_id},
        ) from exc
