"""`closeout import ...`: import close instructions (导入结案指令) from .xlsx or .csv.

closeout import template [--format xlsx|csv] --out FILE
closeout import validate FILE --as USER [--report OUT.xlsx]   (exit 1 when the file is refused)
closeout import run FILE --as USER [--workers N]              (validate, then run the valid rows)
"""

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import CommandParser
from django.test.utils import override_settings
from django.utils.translation import gettext_noop

from closeout.batches.import_template import import_template
from closeout.batches.imports import (
    import_execute,
    import_validate,
    report_rows,
    report_table,
)
from closeout.batches.models import BatchState, ImportFile
from closeout.batches.selectors import batch_results
from closeout.core.cli import DomainCommand, actor_for, one_line, positive_int, table, whole_number
from closeout.core.errors import InvalidInput
from closeout.core.exports import write_xlsx

SHOWN_ERRORS = 20


class Command(DomainCommand):
    help = "Import close instructions from Excel or CSV: the template, validation, and running."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="verb", required=True)
        template = sub.add_parser("template", help="write the template")
        template.add_argument("--format", choices=["xlsx", "csv"], default="xlsx")
        template.add_argument("--out", required=True, metavar="FILE")
        validate = sub.add_parser("validate", help="check a file; changes nothing")
        validate.add_argument("file", metavar="FILE")
        validate.add_argument("--report", metavar="OUT.xlsx", help="write the report as .xlsx")
        run = sub.add_parser("run", help="validate a file, then run its valid rows")
        run.add_argument("file", metavar="FILE")
        run.add_argument("--workers", type=whole_number, default=2)
        run.add_argument("--report", metavar="OUT.xlsx", help="write the report as .xlsx")
        for verb in (validate, run):
            self.add_actor_argument(verb)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["verb"] == "template":
            out = Path(options["out"])
            try:
                out.write_bytes(import_template(options["format"]))
            except OSError as exc:
                raise InvalidInput(
                    gettext_noop("%(option)s: cannot write %(path)s: %(reason)s"),
                    params={"option": "--out", "path": out, "reason": exc.strerror},
                ) from exc
            self.stdout.write(f"wrote the {options['format']} template to {out}")
            return
        actor = actor_for(options["as_user"])
        path = Path(options["file"])
        try:
            handle = path.open("rb")
        except OSError as exc:
            raise InvalidInput(
                gettext_noop("cannot open %(path)s: %(reason)s"),
                params={"path": path, "reason": exc.strerror},
            ) from exc
        with handle:
            imported = import_validate(actor=actor, upload=handle, file_name=path.name)
        self._summary(imported)
        if options.get("report"):
            self._write_report(imported, Path(options["report"]))
        if options["verb"] == "run":
            self._run(actor, imported, positive_int(options["workers"], "--workers"))

    def _summary(self, imported: ImportFile) -> None:
        self.stdout.write(
            f"import #{imported.pk} {imported.file_name} ({imported.file_format}"
            + (f", {imported.encoding}" if imported.encoding else "")
            + f", sha256 {imported.sha256[:16]}…): {imported.total_rows} rows, "
            f"{imported.valid_rows} valid, {imported.error_rows} with errors"
        )
        errors = [
            (r.row, ", ".join(r.columns), one_line(r.message))
            for _, r in zip(
                range(SHOWN_ERRORS), report_rows(imported, errors_only=True), strict=False
            )
        ]
        if errors:
            for line in table(["row", "column", "error"], errors):
                self.stdout.write(line)
            if imported.error_rows > len(errors):
                self.stdout.write(
                    f"… and {imported.error_rows - len(errors)} more rows with errors "
                    "(--report OUT.xlsx writes them all)"
                )

    def _write_report(self, imported: ImportFile, out: Path) -> None:
        headers, rows = report_table(imported)
        try:
            with out.open("wb") as handle:
                write_xlsx(headers, rows, handle, sheet_title="report")
        except OSError as exc:
            raise InvalidInput(
                gettext_noop("%(option)s: cannot write %(path)s: %(reason)s"),
                params={"option": "--report", "path": out, "reason": exc.strerror},
            ) from exc
        self.stdout.write(f"wrote the report to {out}")

    def _run(self, actor: Any, imported: ImportFile, workers: int) -> None:
        if imported.valid_rows:
            self.stdout.write(
                f"running the {imported.valid_rows} valid rows"
                + (
                    f"; the {imported.error_rows} rows with errors are not run"
                    if imported.error_rows
                    else ""
                )
            )
        if settings.CELERY_BROKER_URL:
            job = import_execute(actor=actor, import_file=imported, workers=workers)
            from closeout.batches.management.commands.batch import Command as BatchCommand

            follower = BatchCommand()
            follower.stdout = self.stdout
            follower._follow(job)
        else:
            # No broker: do the work in this process, after the start commits.
            with override_settings(CLOSEOUT_TASKS_INLINE=True):
                job = import_execute(actor=actor, import_file=imported, workers=1)
        job.refresh_from_db()
        self.stdout.write(
            f"batch #{job.pk}: {job.state}, {job.processed}/{job.total} processed, "
            f"{job.succeeded} done, {job.failed} failed, {job.skipped} skipped"
        )
        rows = [
            (i.row_no, i.label.partition(": ")[2], i.state, i.outcome, one_line(i.message))
            for i in batch_results(job)[:1000]
        ]
        for line in table(["row", "document", "state", "outcome", "message"], rows):
            self.stdout.write(line)
        if job.state != BatchState.DONE:
            self.stdout.write(f"resume with: closeout batch resume {job.pk} --as …")
