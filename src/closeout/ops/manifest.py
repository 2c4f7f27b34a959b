"""The manifest of a backup (备份清单): what a backup holds — when it was taken, from which
database, the applied migrations, the rows of every table, the audit chain's head and the file's
sha256 — and how a database's contents are read and compared with it."""

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.apps import apps
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils.translation import gettext

from closeout.audit.models import AuditChainHead
from closeout.audit.services import (
    GENESIS_HASH,
)
from closeout.core.errors import DomainError

MANIFEST_SUFFIX = ".manifest.json"
FORMAT = 1


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


def manifest_write(out: Path, manifest: Manifest) -> None:
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


def manifest_check_file(path: Path, manifest: Manifest) -> None:
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
