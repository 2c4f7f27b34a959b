"""`closeout post-event TYPE NUMBER KIND --external-id X --as USERNAME`: post one business event
(receipt, shipment, invoice, payment, ...) against a document, idempotent by external id."""

from typing import Any

from django.core.management.base import CommandParser

from closeout.core.cli import DomainCommand, actor_for, parse_datetime, whole_number
from closeout.documents.models import EventKind
from closeout.documents.services import document_get, event_post


class Command(DomainCommand):
    help = "Post one business event; posting the same external id again changes nothing."

    def add_arguments(self, parser: CommandParser) -> None:
        self.add_document_arguments(parser)
        parser.add_argument("kind", metavar="KIND", help=", ".join(EventKind.values))
        parser.add_argument(
            "--external-id",
            required=True,
            metavar="ID",
            help="the source system's id of the event (makes posting idempotent)",
        )
        parser.add_argument(
            "--line", type=whole_number, metavar="N", help="line number (line events)"
        )
        parser.add_argument("--quantity", default="0", metavar="Q")
        parser.add_argument("--amount", default="0", metavar="A")
        parser.add_argument(
            "--pending", action="store_true", help="store as pending; applies when confirmed"
        )
        parser.add_argument(
            "--at", metavar="YYYY-MM-DD[THH:MM]", help="when it happened (default: now)"
        )
        parser.add_argument("--source", default="closeout", help="source system (default closeout)")
        self.add_actor_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        actor = actor_for(options["as_user"])
        document = document_get(options["doc_type"], options["number"], company=options["company"])
        result = event_post(
            actor=actor,
            document=document,
            kind=options["kind"],
            external_id=options["external_id"],
            line_no=options["line"],
            quantity=options["quantity"],
            amount=options["amount"],
            occurred_at=parse_datetime(options["at"], "--at"),
            source_system=options["source"],
            pending=options["pending"],
        )
        event = result.event
        line = f" line {options['line']}" if options["line"] is not None else ""
        why = f": {event.quarantine_reason}" if event.quarantine_reason else ""
        self.stdout.write(
            f"{result.outcome}: {event.kind} {event.external_id} on {document.label}{line}{why}"
        )
