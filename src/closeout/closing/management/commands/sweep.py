"""`closeout sweep [--type TYPE] [--dry-run]`: the automatic close (自动结案, S2)."""

from typing import Any

from django.core.management.base import CommandParser

from closeout.closing.sweep import sweep_run
from closeout.core.cli import DomainCommand, key_values, positive_int, table, whole_number


class Command(DomainCommand):
    help = (
        "Close every open document whose rules all pass; list those failing only exception "
        "rules as the exception queue. --dry-run changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--type", dest="doc_type", metavar="TYPE", help="only this type")
        parser.add_argument(
            "--dry-run", action="store_true", help="show what would close; change nothing"
        )
        parser.add_argument(
            "--chunk-size",
            type=whole_number,
            default=2000,
            metavar="N",
            help="documents per transaction (default 2000)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        dry_run: bool = options["dry_run"]
        run = sweep_run(
            doc_type=options["doc_type"] or None,
            dry_run=dry_run,
            chunk_size=positive_int(options["chunk_size"], "--chunk-size"),
        )
        seconds = (run.finished_at - run.started_at).total_seconds() if run.finished_at else 0.0
        scope = run.doc_type or "all types"
        out = [
            f"DRY RUN of the sweep over {scope}: nothing was changed"
            if dry_run
            else f"sweep over {scope} done in {seconds:.1f} s",
        ]
        out += key_values(
            [
                ("examined", run.examined),
                ("would close" if dry_run else "closed", run.closed),
                *([] if dry_run else [("lines closed", run.lines_closed)]),
                ("exception queue", run.exception_queue),
                ("warning only", run.warning_only),
                ("blocked", run.blocked),
                ("not yet due", run.not_due),
                ("policy off", run.policy_off),
            ]
        )
        failures: dict[str, int] = dict(run.rule_failures)
        if failures:
            rows = sorted(failures.items(), key=lambda kv: (-kv[1], kv[0]))
            out += ["", "failures per rule:"]
            out += ["  " + line for line in table(("rule", "documents"), rows)]
        if run.exception_sample:
            shown = len(run.exception_sample)
            more = (
                f" (first {shown} of {run.exception_queue})" if shown < run.exception_queue else ""
            )
            out += ["", f"exception queue{more}: close these by hand with a reason:"]
            out += [f"  {label}" for label in run.exception_sample]
        self.stdout.write("\n".join(out))
