"""`closeout diagnose ...`: the consistency checks (数据校验) and post-close verification.

closeout diagnose run [--days N] [--as USER]          every check, counts stored as a run
closeout diagnose show CHECK [--limit N] [--days N]   the offending documents/lines, live
closeout diagnose verify-batch ID [--as USER]         verify a finished batch job
Without --as the command acts as the system (like the scheduled run), with --as it checks
that user's report.view permission.
"""

from typing import Any

from django.core.management.base import CommandError, CommandParser

from closeout.core.cli import DomainCommand, actor_for, fmt, positive_int, table, whole_number
from closeout.reports.diagnostic_base import Options
from closeout.reports.diagnostics import (
    CHECKS,
    PROBLEM_LABELS,
    check_for,
    diagnostic_rows,
    diagnostics_run,
)
from closeout.reports.models import DiagnosticTrigger
from closeout.reports.verification import batch_verify

EXIT_VERIFICATION_FAILED = 2


class Command(DomainCommand):
    help = "Run the consistency checks, list a check's findings, or verify a batch job."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="verb", required=True)
        run = sub.add_parser("run", help="run every check and store the counts")
        show = sub.add_parser("show", help="list what one check finds now")
        show.add_argument("check", metavar="CHECK", help=", ".join(c.code for c in CHECKS))
        show.add_argument(
            "--limit", type=whole_number, default=50, metavar="N", help="rows (default 50)"
        )
        verify = sub.add_parser("verify-batch", help="post-close verification of a batch job")
        verify.add_argument("job_id", type=whole_number, metavar="ID")
        for verb in (run, show):
            verb.add_argument(
                "--days",
                type=whole_number,
                default=None,
                metavar="N",
                help="reopened-for age limit",
            )
        for verb in (run, verify):
            verb.add_argument("--as", dest="as_user", metavar="USERNAME", default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        verb = options["verb"]
        actor = actor_for(options["as_user"]) if options.get("as_user") else None
        if verb == "run":
            self._run(actor, options["days"])
        elif verb == "show":
            self._show(options["check"], positive_int(options["limit"], "--limit"), options["days"])
        else:
            self._verify(actor, options["job_id"])

    def _run(self, actor: Any, days: int | None) -> None:
        run = diagnostics_run(actor=actor, trigger=DiagnosticTrigger.MANUAL, stale_days=days)
        out = [f"diagnostic run #{run.pk}: {run.problems} problem(s) in {run.duration_ms} ms"]
        out += table(
            ["check", "found", "what"],
            [(c.code, run.counts.get(c.code, 0), str(c.label)) for c in CHECKS],
        )
        self.stdout.write("\n".join(out))

    def _show(self, code: str, limit: int, days: int | None) -> None:
        check = check_for(code)
        rows = diagnostic_rows(check.code, options=Options.default(days))
        total = rows.count()
        keys = [c.key for c in check.columns]
        body = [
            [
                str(PROBLEM_LABELS.get(row[k], row[k])) if k == "problem" else fmt(row[k])
                for k in keys
            ]
            for row in rows[:limit]
        ]
        out = [f"{check.code}: {total} found — {check.label}"]
        if body:
            out += table(keys, body)
        if total > limit:
            out.append(f"… {total - limit} more (use --limit)")
        out.append(f"next: {check.what_next}")
        self.stdout.write("\n".join(out))

    def _verify(self, actor: Any, job_id: int) -> None:
        result = batch_verify(job_id=job_id, actor=actor)
        state = "passed" if result.passed else f"FAILED: {result.problem_count} problem(s)"
        out = [
            f"verification #{result.pk} of batch #{job_id}: {state}",
            f"  checked {result.documents_checked} documents, {result.lines_checked} closed "
            f"lines, {result.items_checked} items; audit chain "
            + ("intact" if result.chain_intact else f"broken: {result.chain_problem}"),
        ]
        if result.problems:
            out += table(
                ["check", "document", "line", "problem"],
                [(p["check"], p["document"], p["line"], p["message"]) for p in result.problems],
            )
        self.stdout.write("\n".join(out))
        if not result.passed:
            raise CommandError(
                f"batch #{job_id} failed its verification: {result.problem_count} problem(s)",
                returncode=EXIT_VERIFICATION_FAILED,
            )
