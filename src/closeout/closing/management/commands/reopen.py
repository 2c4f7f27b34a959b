"""`closeout reopen TYPE NUMBER --reason CODE --as USERNAME`: reopen (反结案) a closed document."""

from typing import Any

from django.core.management.base import CommandParser

from closeout.closing.services import document_reopen
from closeout.core.cli import DomainCommand, actor_for, fmt_lines
from closeout.documents.services import document_get


class Command(DomainCommand):
    help = "Reopen a closed document: restores what its last close changed."

    def add_arguments(self, parser: CommandParser) -> None:
        self.add_document_arguments(parser)
        parser.add_argument(
            "--reason",
            required=True,
            metavar="CODE",
            help="reopen reason code, e.g. wrong_close, late_delivery",
        )
        parser.add_argument("--remark", default="", help="free text")
        self.add_actor_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        actor = actor_for(options["as_user"])
        document = document_get(options["doc_type"], options["number"], company=options["company"])
        result = document_reopen(
            actor=actor,
            document=document,
            reason_code=options["reason"],
            remark=options["remark"],
        )
        self.stdout.write(
            f"reopened {result.document.label}: lines {fmt_lines(result.lines_reopened)} "
            f"reopened by {actor.get_username()}, reason {options['reason']}\n"
            f"  quarantined events applied: {result.events_applied}, "
            f"still quarantined: {result.events_still_quarantined}\n"
            f"  document state: {result.document.close_state}"
        )
