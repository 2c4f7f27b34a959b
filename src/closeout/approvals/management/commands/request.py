"""`closeout request close|reopen TYPE NUMBER --reason CODE --as USERNAME`: ask for a close
(结案申请) or a reopen (反结案申请) that goes through the approval route."""

from typing import Any

from django.core.management.base import CommandParser
from django.utils.translation import gettext_noop

from closeout.approvals.management.commands._shared import read_attachments
from closeout.approvals.models import CloseRequest, RequestAction, RequestState
from closeout.approvals.selectors import approvers_for
from closeout.approvals.submit import close_request_submit, reopen_request_submit
from closeout.core.cli import (
    DomainCommand,
    actor_for,
    fmt,
    fmt_lines,
    parse_date,
    parse_lines,
)
from closeout.core.errors import InvalidInput
from closeout.documents.services import document_get


def describe(request: CloseRequest) -> list[str]:
    """What happened to a submitted or resubmitted request, for the person who sent it."""
    document = request.document
    document.refresh_from_db()
    what = f"{request.action} {document.label}"
    if request.line_nos:
        what += f" lines {fmt_lines(request.line_nos)}"
    if request.state != RequestState.PENDING:
        return [
            f"request #{request.pk} {request.state}: {what} (no approval route applies)",
            f"  document state: {document.close_state}",
        ]
    step = request.step or {}
    approvers = ", ".join(u.get_username() for u in approvers_for(request)) or "nobody yet"
    return [
        f"request #{request.pk} pending: {what}, round {request.round}",
        f"  route: {request.route.name if request.route else '—'}; "
        f"step {step.get('order')} of {len(request.steps)} '{step.get('name')}' "
        f"(role {step.get('role')}); approvers: {approvers}",
        f"  open value: {fmt(request.open_value)}; exception: {fmt(request.exception)}; "
        f"attachments: {request.attachments.count()}",
        f"  document state: {document.close_state}",
    ]


class Command(DomainCommand):
    help = "Submit a close or reopen request for approval."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "action", choices=RequestAction.values, metavar="close|reopen", help="close or reopen"
        )
        self.add_document_arguments(parser)
        parser.add_argument("--reason", required=True, metavar="CODE", help="reason code")
        parser.add_argument(
            "--remark", default="", help="free text; required for a reopen and for exceptions"
        )
        self.add_lines_argument(parser, "close only these lines (close requests only)")
        parser.add_argument("--date", metavar="YYYY-MM-DD", help="close date (default: today)")
        parser.add_argument(
            "--attach",
            nargs="+",
            action="extend",
            metavar="FILE",
            help="files to attach (pdf, png, jpg, xlsx, docx, csv, txt)",
        )
        self.add_actor_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        actor = actor_for(options["as_user"])
        document = document_get(options["doc_type"], options["number"], company=options["company"])
        attachments = read_attachments(options["attach"])
        if options["action"] == RequestAction.CLOSE:
            request = close_request_submit(
                actor=actor,
                document=document,
                reason_code=options["reason"],
                remark=options["remark"],
                close_date=parse_date(options["date"], "--date"),
                line_nos=parse_lines(options["lines"]),
                attachments=attachments,
            )
        else:
            for option in ("lines", "date"):
                if options[option] is not None:
                    raise InvalidInput(
                        gettext_noop(
                            "--%(option)s is for close requests; a reopen restores the whole last "
                            "close"
                        ),
                        details={"field": option},
                        params={"option": option},
                    )
            request = reopen_request_submit(
                actor=actor,
                document=document,
                reason_code=options["reason"],
                remark=options["remark"],
                attachments=attachments,
            )
        self.stdout.write("\n".join(describe(request)))
