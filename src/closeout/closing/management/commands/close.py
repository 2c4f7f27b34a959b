"""`closeout close TYPE NUMBER --reason CODE --as USERNAME`: manual close (手工结案) of a whole
document or of some lines (行结案)."""

from typing import Any

from django.core.management.base import CommandParser

from closeout.closing.services import document_close
from closeout.core.cli import (
    DomainCommand,
    actor_for,
    fmt,
    fmt_lines,
    parse_date,
    parse_lines,
)
from closeout.documents.services import document_get


class Command(DomainCommand):
    help = "Close a document or some of its lines by hand, with a reason code."

    def add_arguments(self, parser: CommandParser) -> None:
        self.add_document_arguments(parser)
        parser.add_argument(
            "--reason",
            required=True,
            metavar="CODE",
            help="close reason code, e.g. completed, supplier_cannot_deliver",
        )
        parser.add_argument(
            "--remark", default="", help="free text; required when exception rules fail"
        )
        self.add_lines_argument(parser, "close only these lines (default: every open line)")
        parser.add_argument("--date", metavar="YYYY-MM-DD", help="close date (default: today)")
        self.add_actor_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        actor = actor_for(options["as_user"])
        document = document_get(options["doc_type"], options["number"], company=options["company"])
        result = document_close(
            actor=actor,
            document=document,
            reason_code=options["reason"],
            remark=options["remark"],
            close_date=parse_date(options["date"], "--date"),
            line_nos=parse_lines(options["lines"]),
        )
        doc = result.document
        what = "document" if result.header_closed else "lines"
        out = [
            f"closed {doc.label} ({what}): lines {fmt_lines(result.lines_closed)} closed "
            f"by {actor.get_username()}, reason {options['reason']}",
            f"  released value: {fmt(result.released_value)} {doc.currency}",
            f"  document state: {doc.close_state}",
        ]
        accepted = result.checklist.exceptions + result.checklist.warnings
        if accepted:
            out.append(
                "  accepted exceptions/warnings: "
                + ", ".join(f"{c.rule.code} ({c.severity})" for c in accepted)
            )
        self.stdout.write("\n".join(out))
