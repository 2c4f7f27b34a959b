"""`closeout resubmit REQUEST_ID [--reason CODE] [--remark TEXT] [--lines 1,2] --as USERNAME`:
send a rejected request again (重新提交) with changes, as a new approval round."""

from typing import Any

from django.core.management.base import CommandParser

from closeout.approvals.management.commands._shared import read_attachments, request_for
from closeout.approvals.management.commands.request import describe
from closeout.approvals.submit import close_request_resubmit
from closeout.core.cli import DomainCommand, actor_for, parse_date, parse_lines


class Command(DomainCommand):
    help = "Resubmit a rejected close/reopen request with changes."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("request_id", metavar="REQUEST_ID", help="request id")
        parser.add_argument("--reason", metavar="CODE", default=None, help="new reason code")
        parser.add_argument("--remark", default=None, help="new remark")
        self.add_lines_argument(parser, "close these lines instead")
        parser.add_argument("--date", metavar="YYYY-MM-DD", help="new close date")
        parser.add_argument(
            "--attach", nargs="+", action="extend", metavar="FILE", help="more files to attach"
        )
        self.add_actor_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        actor = actor_for(options["as_user"])
        request = close_request_resubmit(
            actor=actor,
            request=request_for(options["request_id"]),
            reason_code=options["reason"],
            remark=options["remark"],
            close_date=parse_date(options["date"], "--date"),
            line_nos=parse_lines(options["lines"]),
            attachments=read_attachments(options["attach"]),
        )
        self.stdout.write("\n".join(describe(request)))
