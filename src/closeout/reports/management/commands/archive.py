"""`closeout archive ...`: the archive (归档, S15) from the command line.

closeout archive run [--type T] [--dry-run] [--chunk-size N] [--as USER]
closeout archive export --period 2026-03 --out PACK.zip --as USER
closeout archive verify PACK.zip [--offline]      (exit 0 "intact", 2 naming the first problem)
"""

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from closeout.core.cli import (
    DomainCommand,
    actor_for,
    key_values,
    positive_int,
    table,
    whole_number,
)
from closeout.core.companies import company_get
from closeout.reports.archive import archive_run
from closeout.reports.archive_pack import archive_pack_export, period_parse
from closeout.reports.archive_verify import archive_pack_verify

# Not a usage error: the check ran and found the pack changed.
EXIT_PACK_BROKEN = 2


class Command(DomainCommand):
    help = (
        "Archive long-closed documents (run), write the evidence pack of a period (export), "
        "check a pack (verify: exit 2 naming the first problem)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="verb", required=True)
        run = sub.add_parser("run", help="archive documents closed longer than the retention")
        run.add_argument("--type", dest="doc_type", metavar="TYPE", help="only this type")
        run.add_argument("--dry-run", action="store_true", help="count only; change nothing")
        run.add_argument("--chunk-size", type=whole_number, default=2000, metavar="N")
        run.add_argument(
            "--as", dest="as_user", metavar="USERNAME", default=None, help="default: system"
        )
        export = sub.add_parser("export", help="write the evidence pack of a period")
        export.add_argument("--period", required=True, help="2026-03 or 2026-03-01..2026-03-15")
        export.add_argument("--out", required=True, help="PACK.zip, or a new directory")
        export.add_argument(
            "--company", default="", metavar="CODE", help="only this company's documents"
        )
        self.add_actor_argument(export)
        verify = sub.add_parser("verify", help="check a pack's files, audit events and head")
        verify.add_argument("pack", metavar="PACK", help="a pack .zip or directory")
        verify.add_argument(
            "--offline", action="store_true", help="do not compare with the live audit chain"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        verb = options["verb"]
        if verb == "run":
            self._run(options)
        elif verb == "export":
            self._export(options)
        else:
            self._verify(options)

    def _run(self, options: dict[str, Any]) -> None:
        dry_run: bool = options["dry_run"]
        run = archive_run(
            actor=actor_for(options["as_user"]) if options["as_user"] else None,
            doc_type=options["doc_type"] or None,
            dry_run=dry_run,
            chunk_size=positive_int(options["chunk_size"], "--chunk-size"),
        )
        scope = run.doc_type or "all types"
        out = [
            f"DRY RUN of the archive over {scope}: nothing was changed"
            if dry_run
            else f"archive run #{run.pk} over {scope} done"
        ]
        out += key_values(
            [
                ("would archive" if dry_run else "archived", run.archived),
                ("lines", run.lines_archived),
                ("closed, retention off", run.retention_off),
            ]
        )
        rows = [
            (p["policy"], p["retention_days"], p["closed_on_or_before"], p["archived"])
            for p in run.per_policy
        ]
        if rows:
            heading = "would archive" if dry_run else "archived"
            out += ["", "per policy:"]
            out += [
                "  " + line
                for line in table(
                    ("policy", "retention days", "closed on or before", heading), rows
                )
            ]
        self.stdout.write("\n".join(out))

    def _export(self, options: dict[str, Any]) -> None:
        actor = actor_for(options["as_user"])
        period = period_parse(options["period"])
        company = company_get(options["company"]) if options["company"] else None
        result = archive_pack_export(
            actor=actor, period=period, out=Path(options["out"]), company=company
        )
        files = result.manifest["files"]
        head = result.manifest["chain_head"]
        out = [f"evidence pack of {period.label} written to {options['out']}"]
        out += key_values(
            [
                *[
                    (name, f"{entry['rows']} rows  sha256 {entry['sha256']}")
                    for name, entry in files.items()
                ],
                (
                    "chain head",
                    f"#{head['seq']} {head['hash']}",
                ),
                ("manifest sha256", result.manifest_sha256),
                ("audit event", f"#{result.event.seq} archive_pack_exported"),
            ]
        )
        self.stdout.write("\n".join(out))

    def _verify(self, options: dict[str, Any]) -> None:
        verdict = archive_pack_verify(Path(options["pack"]), live=not options["offline"])
        if not verdict.intact:
            for extra in verdict.problems[1:]:
                self.stderr.write(f"  also: {extra}")
            raise CommandError(f"pack broken: {verdict.first_problem}", returncode=EXIT_PACK_BROKEN)
        against = "the live audit chain" if verdict.live_checked else "itself only (offline)"
        self.stdout.write(
            f"intact: evidence pack of {verdict.period}, {verdict.files_checked} files and "
            f"{verdict.events_checked} audit events checked against {against}"
        )
