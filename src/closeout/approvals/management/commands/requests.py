"""`closeout requests [--state pending] [--waiting-for USER] [--mine USER]`: list close and
reopen requests; `closeout requests --show ID` prints one request with its steps, decisions,
attachments and the checklist as it was at submission."""

from typing import Any

from django.core.management.base import CommandParser
from django.utils.translation import gettext_noop

from closeout.approvals.management.commands._shared import request_for, user_for
from closeout.approvals.models import CloseRequest, RequestState
from closeout.approvals.selectors import approvers_for, requests_of, requests_waiting_for
from closeout.core.cli import DomainCommand, fmt, fmt_lines, fmt_measures, key_values, table
from closeout.core.errors import InvalidInput


class Command(DomainCommand):
    help = "List close/reopen requests, or show one with its checklist at submission."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--state", choices=RequestState.values, default=None, help="only requests in a state"
        )
        parser.add_argument(
            "--waiting-for", metavar="USERNAME", help="pending requests this user may decide now"
        )
        parser.add_argument("--mine", metavar="USERNAME", help="requests this user submitted")
        parser.add_argument("--show", metavar="REQUEST_ID", help="show one request in full")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["show"] is not None:
            if options["state"] or options["waiting_for"] or options["mine"]:
                raise InvalidInput(
                    gettext_noop("--show takes no filters"), details={"field": "show"}, params={}
                )
            self.stdout.write("\n".join(self.show(request_for(options["show"]))))
            return
        if options["waiting_for"]:
            requests = requests_waiting_for(user_for(options["waiting_for"]))
        elif options["mine"]:
            requests = list(requests_of(user_for(options["mine"])))
        else:
            requests = list(
                CloseRequest.objects.select_related("document", "requester").order_by("-pk")
            )
        if options["state"]:
            requests = [r for r in requests if r.state == options["state"]]
        rows = [
            (
                f"#{r.pk}",
                r.action,
                r.document.label,
                fmt_lines(r.line_nos) if r.line_nos else "all",
                r.state,
                (r.step or {}).get("name", "—") if r.state == RequestState.PENDING else "—",
                r.requester.get_username(),
                fmt(r.submitted_at),
            )
            for r in requests
        ]
        headers = ("id", "action", "document", "lines", "state", "step", "requester", "submitted")
        self.stdout.write("\n".join([*table(headers, rows), f"{len(rows)} request(s)"]))

    def show(self, request: CloseRequest) -> list[str]:
        """The lines `closeout requests` prints for one request: state, document, reason, current
        step, the checklist at submission and now, and the decisions so far. Long because it
        lays out each section of the printout in turn; none holds logic of its own."""
        step = request.step or {}
        pending = request.state == RequestState.PENDING
        out = [f"request #{request.pk}: {request.action} {request.document.label}"]
        out += key_values(
            [
                ("state", request.state),
                ("document state", request.document.close_state),
                ("lines", fmt_lines(request.line_nos) if request.line_nos else "all"),
                ("reason", request.reason_code),
                ("remark", request.remark or "—"),
                ("close date", request.close_date),
                ("requester", request.requester.get_username()),
                ("submitted", request.submitted_at),
                ("round", request.round),
                ("route", request.route.name if request.route else "—"),
                ("open value", request.open_value),
                ("exception", request.exception),
                ("current step", f"{step.get('order')} {step.get('name')}" if pending else "—"),
                (
                    "approvers now",
                    ", ".join(u.get_username() for u in approvers_for(request)) if pending else "—",
                ),
                ("last error", request.last_error or "—"),
            ]
        )
        out += ["", "steps:"]
        out += table(
            ("order", "step", "role", "SLA h"),
            [(s["order"], s["name"], s["role"], s["sla_hours"]) for s in request.steps],
        )
        decisions = request.decisions.select_related("decider").order_by("round", "step_order")
        out += ["", "decisions:"]
        out += table(
            ("round", "step", "by", "decision", "at", "comment"),
            [
                (
                    d.round,
                    d.step_name,
                    d.decider.get_username(),
                    d.decision,
                    d.decided_at,
                    d.comment or "—",
                )
                for d in decisions
            ],
        )
        out += ["", "attachments:"]
        out += table(
            ("file", "type", "bytes", "sha256"),
            [
                (a.original_name, a.content_type, a.size, a.sha256[:16])
                for a in request.attachments.order_by("id")
            ],
        )
        out += ["", "checklist at submission:"]
        out += table(
            ("rule", "severity", "result", "measured", "threshold", "failing lines"),
            [
                (
                    c["rule"],
                    c["severity"],
                    "RISK" if c["severity"] == "risk" else "pass" if c["passed"] else "FAIL",
                    fmt_measures(c["measured"] or {}),
                    c["threshold"] or "—",
                    fmt_lines(c["failing_lines"] or []),
                )
                for c in request.checklist
            ],
        )
        return out
