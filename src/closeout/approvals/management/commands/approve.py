"""`closeout approve REQUEST_ID [REQUEST_ID ...] --as USERNAME`: approve (同意) the current step
of one request, or of several at once (批量审批) with one result line per request."""

from typing import Any

from django.core.management.base import CommandError, CommandParser

from closeout.approvals.decide import (
    close_request_approve,
    close_request_reject,
    close_requests_decide_batch,
)
from closeout.approvals.management.commands._shared import parse_ids, request_for
from closeout.approvals.models import CloseRequest, Decision, RequestState
from closeout.core.cli import EXIT_ERROR, DomainCommand, actor_for, one_line


def decided(request: CloseRequest, verb: str) -> str:
    document = request.document
    document.refresh_from_db()
    if request.state == RequestState.PENDING:
        step = request.step or {}
        return (
            f"request #{request.pk} {verb}: now waiting at step {step.get('order')} "
            f"'{step.get('name')}' (role {step.get('role')}); {document.label} "
            f"is {document.close_state}"
        )
    return f"request #{request.pk} {request.state}: {document.label} is {document.close_state}"


def batch(command: DomainCommand, options: dict[str, Any], decision: str, verb: str) -> None:
    """Decide several requests; one line each; exit non-zero when any failed."""
    actor = actor_for(options["as_user"])
    ids = parse_ids(options["request_ids"], "request id")
    if len(ids) == 1:
        request = request_for(str(ids[0]))
        if decision == Decision.APPROVE:
            request = close_request_approve(
                actor=actor, request=request, comment=options["comment"]
            )
        else:
            request = close_request_reject(actor=actor, request=request, comment=options["comment"])
        command.stdout.write(decided(request, verb))
        return
    results = close_requests_decide_batch(
        actor=actor, request_ids=ids, decision=decision, comment=options["comment"]
    )
    for result in results:
        if result.ok:
            command.stdout.write(f"#{result.request_id}  ok      {result.state}")
        else:
            command.stdout.write(f"#{result.request_id}  failed  {one_line(result.message)}")
    failed = sum(1 for r in results if not r.ok)
    command.stdout.write(f"{len(results) - failed} {verb}, {failed} failed")
    if failed:
        raise CommandError(f"{failed} of {len(results)} requests failed", returncode=EXIT_ERROR)


class Command(DomainCommand):
    help = "Approve the current step of one or more close/reopen requests."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "request_ids", nargs="+", metavar="REQUEST_ID", help="request ids (12 or 12,13)"
        )
        parser.add_argument("--comment", default="", help="approval comment (意见)")
        self.add_actor_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        batch(self, options, Decision.APPROVE, "approved")
