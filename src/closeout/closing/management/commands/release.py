"""`closeout release TYPE NUMBER --as USERNAME`: release (解冻) a held document or lines."""

from typing import Any

from django.core.management.base import CommandParser

from closeout.closing.services import document_release
from closeout.core.cli import DomainCommand, actor_for, fmt_lines, parse_lines
from closeout.documents.services import document_get


class Command(DomainCommand):
    help = "Release a held document or lines; events quarantined meanwhile then apply."

    def add_arguments(self, parser: CommandParser) -> None:
        self.add_document_arguments(parser)
        parser.add_argument("--reason", default="", metavar="TEXT", help="optional note")
        self.add_lines_argument(parser, "release only these lines (default: the whole document)")
        self.add_actor_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        actor = actor_for(options["as_user"])
        document = document_get(options["doc_type"], options["number"], company=options["company"])
        line_nos = parse_lines(options["lines"])
        document = document_release(
            actor=actor, document=document, reason=options["reason"], line_nos=line_nos
        )
        what = f"lines {fmt_lines(line_nos)} of " if line_nos else ""
        self.stdout.write(
            f"released {what}{document.label} by {actor.get_username()}\n"
            f"  document state: {document.close_state}"
        )
