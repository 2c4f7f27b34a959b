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

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections, transaction
from django.db.utils import load_backend
from django.utils.translation import gettext

from closeout.audit.models import AuditAction, AuditChainHead, AuditObject
from closeout.audit.services import (
    GENESIS_HASH,
    audit_chain_verify,
    audit_checkpoints_read,
    audit_record,
    checkpoint_file,
)
from closeout.core.errors import DomainError

MANIFEST_SUFFIX = ".manifest.json"
FORMAT = 1
SUFFIXES = {"sqlite": ".sqlite3", "postgresql": ".dump"}
CHECK_ALIAS = "closeout_backup_check"
# Tables whose rows `migrate` itself writes: a database holding rows only there is empty.
MIGRATE_FILLS = frozenset({"django_migrations", "django_content_type", "auth_permission"})
# The models whose rows data migrations write (the default roles, policies, reason codes and
# alert rules). A data migration that fills another table adds its model here; the restore
# round-trip test, which restores into a freshly migrated database, fails until it does.
SEEDED_BY_MIGRATIONS = (
    "access.Role",
    "alerts.AlertRule",
    "closing.ClosePolicy",
    "closing.ReasonCode",
)


class BackupFailed(DomainError):
    code = "backup_failed"
    http_status = 503


class BackupInvalid(DomainError):
    """The file is damaged, or does not hold what its manifest says (details: differences)."""

    code = "backup_invalid"
    http_status = 409


class RestoreRefused(DomainError):
    code = "restore_refused"
    http_status = 409


@dataclass(frozen=True)
class Manifest:
    taken_at: str
    vendor: str
    file: str
    size: int
    sha256: str
    migrations: list[str]
    tables: dict[str, int]
    audit_seq: int
    audit_hash: str
    reason: str = "manual"
    format: int = FORMAT

    @property
    def rows(self) -> int:
        return sum(self.tables.values())


@dataclass(frozen=True)
class Contents:
    """What a database holds, as a manifest records it."""

    migrations: list[str]
    tables: dict[str, int]
    audit_seq: int
    audit_hash: str


@dataclass
class RestoreResult:
    manifest: Manifest
    checkpoints_moved_to: Path | None = None
    notes: list[str] = field(default_factory=list)


def manifest_path(path: Path) -> Path:
    return path.with_name(path.name + MANIFEST_SUFFIX)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# --- reading a database -----------------------------------------------------------------------


def database_contents(using: str = DEFAULT_DB_ALIAS) -> Contents:
    """Rows per table, applied migrations and the audit head of database `using`."""
    conn = connections[using]
    qn = conn.ops.quote_name
    head_table = AuditChainHead._meta.db_table
    with conn.cursor() as cursor:
        names = sorted(conn.introspection.table_names(cursor))
        tables: dict[str, int] = {}
        for name in names:
            cursor.execute(f"SELECT COUNT(*) FROM {qn(name)}")  # noqa: S608 — introspected names
            tables[name] = int(cursor.fetchone()[0])
        migrations: list[str] = []
        if "django_migrations" in tables:
            cursor.execute("SELECT app, name FROM django_migrations ORDER BY app, name")
            migrations = [f"{app}.{name}" for app, name in cursor.fetchall()]
        seq, head_hash = 0, GENESIS_HASH
        if head_table in tables:
            cursor.execute(f"SELECT last_seq, last_hash FROM {qn(head_table)} WHERE id = 1")  # noqa: S608
            row = cursor.fetchone()
            if row is not None:
                seq, head_hash = int(row[0]), str(row[1])
    return Contents(migrations, tables, seq, head_hash)


def occupied_tables(using: str = DEFAULT_DB_ALIAS) -> dict[str, int]:
    """The tables that hold rows other than those `migrate` writes (a database with none is
    empty and may be restored into)."""
    contents = database_contents(using)
    seeded = set(MIGRATE_FILLS) | {AuditChainHead._meta.db_table}
    for label in SEEDED_BY_MIGRATIONS:
        meta = apps.get_model(label)._meta
        seeded |= {
            meta.db_table,
            *(f.remote_field.through._meta.db_table for f in meta.local_many_to_many),
        }
    busy = {name: rows for name, rows in contents.tables.items() if rows and name not in seeded}
    if contents.audit_seq:
        busy[AuditChainHead._meta.db_table] = 1
    return busy


def differences(manifest: Manifest, found: Contents) -> list[str]:
    """What the manifest says and the backup does not: one line per table, migration, head."""
    out: list[str] = []
    for table in sorted(set(manifest.tables) | set(found.tables)):
        expected, actual = manifest.tables.get(table), found.tables.get(table)
        if expected != actual:
            out.append(
                gettext("table %(table)s: expected %(expected)s rows, found %(found)s")
                % {
                    "table": table,
                    "expected": "—" if expected is None else expected,
                    "found": "—" if actual is None else actual,
                }
            )
    if manifest.migrations != found.migrations:
        missing = sorted(set(manifest.migrations) - set(found.migrations))
        extra = sorted(set(found.migrations) - set(manifest.migrations))
        out.append(
            gettext("migrations: missing %(missing)s, not in the manifest %(extra)s")
            % {"missing": ", ".join(missing) or "—", "extra": ", ".join(extra) or "—"}
        )
    if (manifest.audit_seq, manifest.audit_hash) != (found.audit_seq, found.audit_hash):
        out.append(
            gettext("audit head: expected #%(eseq)s %(ehash)s, found #%(fseq)s %(fhash)s")
            % {
                "eseq": manifest.audit_seq,
                "ehash": manifest.audit_hash[:16],
                "fseq": found.audit_seq,
                "fhash": found.audit_hash[:16],
            }
        )
    return out


# --- PostgreSQL client tools ------------------------------------------------------------------


def _pg_tool(name: str) -> str:
    found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else "")
    if not found:
        raise BackupFailed(
            gettext("%(tool)s is not installed: install the PostgreSQL client (postgresql-client)")
            % {"tool": name}
        )
    return found


def _pg_env(db: dict[str, Any]) -> dict[str, str]:
    env = dict(os.environ)
    for key, var in (("HOST", "PGHOST"), ("PORT", "PGPORT"), ("USER", "PGUSER")):
        if db.get(key):
            env[var] = str(db[key])
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = str(db["PASSWORD"])
    return env


def _pg_run(args: list[str], db: dict[str, Any]) -> None:
    done = subprocess.run(args, env=_pg_env(db), capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise BackupFailed(
            gettext("%(tool)s failed (exit %(code)s): %(error)s")
            % {"tool": Path(args[0]).name, "code": done.returncode, "error": tail}
        )


def _pg_admin(db: dict[str, Any], sql: str) -> None:
    """A statement that cannot run in a transaction (CREATE/DROP DATABASE), on its own
    connection to the configured database."""
    import psycopg

    params = {
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "dbname": db["NAME"],
    }
    with psycopg.connect(**{k: v for k, v in params.items() if v}, autocommit=True) as conn:
        conn.execute(sql)


def _restore_pg(path: Path, db: dict[str, Any], name: str) -> None:
    """pg_restore into database `name` in one transaction (all or nothing); objects of the
    same name that are there (an empty, migrated schema) are dropped first."""
    _pg_run(
        [
            _pg_tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-acl",
            "--single-transaction",
            "--dbname",
            name,
            str(path),
        ],
        db,
    )


# --- taking a backup --------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _take_sqlite(part: Path) -> Contents:
    db_name = str(connection.settings_dict["NAME"])
    if db_name == ":memory:" or "mode=memory" in db_name:  # the test database
        connection.ensure_connection()
        source = connection.connection
        own = False
    else:
        # Its own connection: the last committed state, whatever this one has under way.
        source = sqlite3.connect(db_name, timeout=60)
        own = True
    target = sqlite3.connect(part)
    try:
        source.backup(target)
        # One self-contained file (no -wal beside it), readable in read-only mode.
        target.execute("PRAGMA journal_mode=DELETE")
    finally:
        target.close()
        if own:
            source.close()
    with opened_sqlite(part) as alias:
        return database_contents(alias)


def _take_postgresql(part: Path) -> Contents:
    """pg_dump in a snapshot exported by a repeatable-read transaction, in which the counts
    and the audit head are read: the manifest describes exactly what was dumped."""
    db = connection.settings_dict
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor.execute("SELECT pg_export_snapshot()")
        snapshot = cursor.fetchone()[0]
        _pg_run(
            [
                _pg_tool("pg_dump"),
                "--format=custom",
                f"--snapshot={snapshot}",
                "--file",
                str(part),
                "--dbname",
                str(db["NAME"]),
            ],
            db,
        )
        return database_contents()


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
        contents = _take_sqlite(part) if vendor == "sqlite" else _take_postgresql(part)
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
    _write_manifest(out, manifest)
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


def _write_manifest(out: Path, manifest: Manifest) -> None:
    target = manifest_path(out)
    part = target.with_name(target.name + ".part")
    part.write_text(json.dumps(asdict(manifest), indent=1, sort_keys=True) + "\n", "utf-8")
    os.replace(part, target)


def manifest_read(path: Path) -> Manifest:
    target = manifest_path(path)
    if not path.is_file():
        raise BackupInvalid(gettext("no backup file %(path)s") % {"path": path})
    try:
        raw = json.loads(target.read_text("utf-8"))
        manifest = Manifest(**raw)
    except FileNotFoundError:
        raise BackupInvalid(
            gettext("the manifest %(path)s beside the backup is missing") % {"path": target}
        ) from None
    except (ValueError, TypeError) as exc:
        raise BackupInvalid(
            gettext("the manifest %(path)s is not a backup manifest: %(error)s")
            % {"path": target, "error": exc}
        ) from None
    return manifest


# --- verifying --------------------------------------------------------------------------------


@contextmanager
def _alias(settings_dict: dict[str, Any]) -> Iterator[str]:
    """A second database connection under CHECK_ALIAS for the duration (made here, not
    configured: the ORM reaches it with `using`)."""
    wrapper = load_backend(settings_dict["ENGINE"]).DatabaseWrapper(settings_dict, CHECK_ALIAS)
    connections[CHECK_ALIAS] = wrapper
    try:
        yield CHECK_ALIAS
    finally:
        wrapper.close()
        del connections[CHECK_ALIAS]


@contextmanager
def opened_sqlite(path: Path) -> Iterator[str]:
    """A SQLite backup file opened read-only under an alias."""
    db = {
        **connections[DEFAULT_DB_ALIAS].settings_dict,
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": f"file:{path.resolve()}?mode=ro",
        "OPTIONS": {},
    }
    with _alias(db) as alias:
        yield alias


@contextmanager
def opened_postgresql(path: Path) -> Iterator[str]:
    """A pg_dump archive restored into a scratch database, dropped afterwards."""
    db = dict(connections[DEFAULT_DB_ALIAS].settings_dict)
    if connections[DEFAULT_DB_ALIAS].vendor != "postgresql":
        raise BackupInvalid(gettext("verifying a PostgreSQL backup needs a PostgreSQL database"))
    scratch = f"closeout_verify_{uuid.uuid4().hex[:12]}"
    _pg_admin(db, f'CREATE DATABASE "{scratch}"')
    try:
        _restore_pg(path, db, scratch)
        with _alias({**db, "NAME": scratch}) as alias:
            yield alias
    finally:
        _pg_admin(db, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


def _check_file(path: Path, manifest: Manifest) -> None:
    size = path.stat().st_size
    if size != manifest.size:
        raise BackupInvalid(
            gettext("backup file %(path)s is %(found)s bytes, the manifest says %(expected)s")
            % {"path": path, "found": size, "expected": manifest.size},
            details={"differences": [f"size: {manifest.size} != {size}"]},
        )
    digest = sha256_of(path)
    if digest != manifest.sha256:
        raise BackupInvalid(
            gettext(
                "backup file %(path)s is corrupted: its sha256 %(found)s is not the manifest's "
                "%(expected)s"
            )
            % {"path": path, "found": digest, "expected": manifest.sha256},
            details={"differences": [f"sha256: {manifest.sha256} != {digest}"]},
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
            % {"path": path, "problem": verdict.problem},
            details={"first_bad_seq": verdict.first_bad_seq},
        )


def backup_verify(*, path: Path) -> Manifest:
    """Check a backup file against its manifest: size and sha256, then (opened) the rows of
    every table, the migrations, the audit head and the audit chain. Raises BackupInvalid
    saying what differs."""
    manifest = manifest_read(path)
    _check_file(path, manifest)
    opener = opened_sqlite if manifest.vendor == "sqlite" else opened_postgresql
    try:
        with opener(path) as alias:
            _check_contents(path, manifest, alias)
    except BackupFailed as exc:
        raise BackupInvalid(exc.message) from exc
    return manifest


# --- restoring --------------------------------------------------------------------------------


def _restore_sqlite(path: Path) -> None:
    source = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)
    try:
        connection.ensure_connection()
        source.backup(connection.connection)
    finally:
        source.close()
    # The next connection runs the configured PRAGMAs (WAL) on the restored file again.
    connection.close()


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
    _check_file(path, manifest)
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
        _restore_sqlite(path)
    else:
        _restore_pg(path, connection.settings_dict, str(connection.settings_dict["NAME"]))
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
