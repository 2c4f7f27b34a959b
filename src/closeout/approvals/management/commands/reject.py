"""`closeout reject REQUEST_ID [REQUEST_ID ...] --comment TEXT --as USERNAME`: reject (驳回) one
or several requests; the comment tells the requester what to change."""

from typing import Any

from django.core.management.base import CommandParser

from closeout.approvals.management.commands.approve import batch
from closeout.approvals.models import Decision
from closeout.core.cli import DomainCommand


class Command(DomainCommand):
    help = "Reject one or more close/reopen requests with a comment."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "request_ids", nargs="+", metavar="REQUEST_ID", help="request ids (12 or 12,13)"
        )
        parser.add_argument(
            "--comment", required=True, help="what the requester must change (required)"
        )
        self.add_actor_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        batch(self, options, Decision.REJECT, "rejected")
