"""`closeout demo [--reset]`: load the demo organisation, users and documents."""

from typing import Any

from django.core.management.base import CommandParser

from closeout.core.cli import DomainCommand, table
from closeout.core.doctypes import doc_type_codes
from closeout.demo.load import DEMO_COMPANY, DEMO_PASSWORD, DemoReport, Scenario, demo_load
from closeout.documents.models import CloseState

# A few documents worth opening first, in this order.
_TRY = (
    (Scenario.SHORT_DELIVERED, "short-delivered (exception: close by hand with a reason)"),
    (Scenario.INVOICE_MISMATCH, "invoice does not match"),
    (Scenario.OPEN_RETURN, "open customer return (blocking)"),
    (Scenario.READY_WAITING, "every rule passes; auto-close waits for the grace days"),
    (Scenario.CLOSED_THEN_REOPENED, "closed, then reopened"),
    (Scenario.QUARANTINED, "business that arrived after the close (quarantined)"),
)


class Command(DomainCommand):
    help = (
        "Load the demo: company DEMO with departments, a user per role (password "
        f"'{DEMO_PASSWORD}', for demos only) and documents of every type in realistic states. "
        "Does nothing when the demo is already there; --reset removes all closeout data first."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reset",
            action="store_true",
            help="remove every closeout record (documents, events, grants, demo users, audit "
            "log, sweep runs, organisation) and rebuild the demo",
        )

    def handle(self, *args: Any, reset: bool, **options: Any) -> None:
        report = demo_load(reset=reset)
        out = self.stdout.write
        if not report.created:
            out(
                f"demo data already present (company {DEMO_COMPANY}): nothing changed. "
                "Run `closeout demo --reset` to rebuild it."
            )
        else:
            out(
                f"demo built in {report.seconds:.1f} s: {report.documents} documents, "
                f"{report.events} business events, {report.audit_events} audit events"
            )
        self._states(report)
        if report.created:
            self._sweep(report)
            self._examples(report)
        self._logins(report)

    def _states(self, report: DemoReport) -> None:
        states = [s for s in CloseState.values if any(s in v for v in report.states.values())]
        rows = [
            [doc_type, *(str(report.states[doc_type].get(s, 0)) for s in states)]
            for doc_type in doc_type_codes()
            if doc_type in report.states
        ]
        for line in table(["type", *states], rows):
            self.stdout.write(f"  {line}")

    def _sweep(self, report: DemoReport) -> None:
        run = report.sweep
        if run is None:
            return
        self.stdout.write(
            f"automatic close sweep: examined {run.examined}, closed {run.closed} "
            f"({run.lines_closed} lines), exception queue {run.exception_queue}, "
            f"blocked {run.blocked}, waiting for grace days {run.not_due}, "
            f"warning only {run.warning_only}"
        )

    def _examples(self, report: DemoReport) -> None:
        self.stdout.write("try, for example:")
        for scenario, what in _TRY:
            labels = report.scenarios.get(scenario, [])
            if labels:
                # Orders first: they are what most people open first.
                label = min(labels, key=lambda label: doc_type_codes().index(label.split()[0]))
                self.stdout.write(f"  closeout check {label:<28}  # {what}")

    def _logins(self, report: DemoReport) -> None:
        self.stdout.write("demo logins:")
        rows = [
            [
                login.username,
                login.password or "(existed before: unchanged)",
                login.name,
                login.scope,
            ]
            for login in report.logins
        ]
        for line in table(["user", "password", "name", "grant"], rows):
            self.stdout.write(f"  {line}")
        self.stdout.write(
            self.style.WARNING(
                f"WARNING: the password '{DEMO_PASSWORD}' is published and for demos only. "
                "Never load the demo into a database that holds real data."
            )
        )
