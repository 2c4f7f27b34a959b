"""`closeout withdraw REQUEST_ID --as USERNAME`: the requester withdraws (撤回) a pending
request; the document goes back to where it was."""

from typing import Any

from django.core.management.base import CommandParser

from closeout.approvals.decide import close_request_withdraw
from closeout.approvals.management.commands._shared import request_for
from closeout.core.cli import DomainCommand, actor_for


class Command(DomainCommand):
    help = "Withdraw your own pending close/reopen request."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("request_id", metavar="REQUEST_ID", help="request id")
        parser.add_argument("--reason", default="", help="why (optional)")
        self.add_actor_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        actor = actor_for(options["as_user"])
        request = close_request_withdraw(
            actor=actor, request=request_for(options["request_id"]), reason=options["reason"]
        )
        document = request.document
        self.stdout.write(
            f"request #{request.pk} withdrawn: {document.label} is {document.close_state}"
        )
