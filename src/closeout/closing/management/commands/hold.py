"""`closeout hold TYPE NUMBER --reason TEXT --as USERNAME`: hold (冻结) a document or lines."""

from typing import Any

from django.core.management.base import CommandParser

from closeout.closing.services import document_hold
from closeout.core.cli import DomainCommand, actor_for, fmt_lines, parse_lines
from closeout.documents.services import document_get


class Command(DomainCommand):
    help = "Hold a document or some lines: events are quarantined and nothing closes meanwhile."

    def add_arguments(self, parser: CommandParser) -> None:
        self.add_document_arguments(parser)
        parser.add_argument("--reason", required=True, metavar="TEXT", help="why it is held")
        self.add_lines_argument(parser, "hold only these lines (default: the whole document)")
        self.add_actor_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        actor = actor_for(options["as_user"])
        document = document_get(options["doc_type"], options["number"], company=options["company"])
        line_nos = parse_lines(options["lines"])
        document = document_hold(
            actor=actor, document=document, reason=options["reason"], line_nos=line_nos
        )
        what = f"lines {fmt_lines(line_nos)} of " if line_nos else ""
        self.stdout.write(
            f"held {what}{document.label} by {actor.get_username()}: {options['reason']}\n"
            f"  document state: {document.close_state}"
        )
