"""`closeout backup --out FILE` and `closeout backup verify FILE` (备份, closeout.ops.backup)."""

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils.translation import gettext

from closeout.core.cli import DomainCommand
from closeout.ops.backup import backup_take, backup_verify, manifest_path

# Not a usage error: the check ran and found the backup damaged or different.
EXIT_BACKUP_INVALID = 2


class Command(DomainCommand):
    help = (
        "`backup --out FILE`: a consistent backup of the whole installation (SQLite: online "
        "backup API; PostgreSQL: pg_dump -Fc) and FILE.manifest.json beside it. "
        "`backup verify FILE`: check the backup against its manifest (exit 2 if it differs)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", nargs="?", choices=("verify",), help="verify FILE")
        parser.add_argument("file", nargs="?", type=Path, help="verify: the backup file")
        parser.add_argument("--out", type=Path, default=None, help="the backup file to write")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "verify":
            if options["file"] is None:
                raise CommandError(gettext("backup verify needs the backup FILE"))
            from closeout.ops.backup import BackupInvalid

            try:
                manifest = backup_verify(path=options["file"])
            except BackupInvalid as exc:
                raise CommandError(exc.message, returncode=EXIT_BACKUP_INVALID) from exc
            self.stdout.write(
                gettext(
                    "backup %(file)s verified: %(tables)s tables, %(rows)s rows, audit chain "
                    "intact up to #%(seq)s, taken %(at)s"
                )
                % {
                    "file": options["file"],
                    "tables": len(manifest.tables),
                    "rows": manifest.rows,
                    "seq": manifest.audit_seq,
                    "at": manifest.taken_at,
                }
            )
            return
        if options["out"] is None:
            raise CommandError(gettext("say where the backup goes: --out FILE"))
        manifest = backup_take(actor=None, out=options["out"])
        self.stdout.write(
            gettext(
                "backup written to %(file)s (%(size)s bytes, sha256 %(sha)s): %(tables)s "
                "tables, %(rows)s rows, audit head #%(seq)s; manifest %(manifest)s"
            )
            % {
                "file": options["out"],
                "size": manifest.size,
                "sha": manifest.sha256,
                "tables": len(manifest.tables),
                "rows": manifest.rows,
                "seq": manifest.audit_seq,
                "manifest": manifest_path(options["out"]),
            }
        )
