"""`closeout restore FILE`: a backup into an empty database, verified (closeout.ops.backup)."""

from pathlib import Path
from typing import Any

from django.core.management.base import CommandParser
from django.utils.translation import gettext

from closeout.core.cli import DomainCommand, table
from closeout.ops.backup import backup_restore


class Command(DomainCommand):
    help = (
        "Restore a backup written by `closeout backup` into this installation's database, "
        "which must be empty; then check the rows and the audit chain against the manifest."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="the backup file (its manifest beside it)")

    def handle(self, *args: Any, **options: Any) -> None:
        result = backup_restore(actor=None, path=options["file"])
        manifest = result.manifest
        rows = [(name, count) for name, count in manifest.tables.items() if count]
        for line in table([gettext("table"), gettext("rows")], rows):
            self.stdout.write(line)
        self.stdout.write(
            gettext(
                "restored %(file)s (taken %(at)s): %(tables)s tables, %(rows)s rows; audit "
                "chain verified, head #%(seq)s %(hash)s"
            )
            % {
                "file": options["file"],
                "at": manifest.taken_at,
                "tables": len(manifest.tables),
                "rows": manifest.rows,
                "seq": manifest.audit_seq,
                "hash": manifest.audit_hash,
            }
        )
        if result.checkpoints_moved_to is not None:
            self.stdout.write(
                gettext(
                    "the audit checkpoints of later events were kept in %(path)s; the "
                    "checkpoint file now ends at #%(seq)s"
                )
                % {"path": result.checkpoints_moved_to, "seq": manifest.audit_seq}
            )
