"""`closeout alerts [--run] [CODE]`: list what each alert rule finds, or run them all."""

from typing import Any

from django.core.management.base import CommandParser
from django.utils.translation import gettext_noop

from closeout.alerts.models import AlertRule
from closeout.alerts.selectors import alert_items
from closeout.alerts.services import alerts_run
from closeout.core.cli import DomainCommand
from closeout.core.errors import NotFound


class Command(DomainCommand):
    help = "Show the alerts (预警), or with --run record them and send the digests."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("code", nargs="?", help="one rule, e.g. complete_but_open")
        parser.add_argument("--run", action="store_true", help="record and send digests")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["run"]:
            for run in alerts_run():
                self.stdout.write(f"{run.rule.code}: {run.count}")
            return
        rules = AlertRule.objects.filter(active=True)
        if options["code"]:
            rules = rules.filter(code=options["code"])
            if not rules.exists():
                raise NotFound(
                    gettext_noop("no active alert rule '%(code)s'"),
                    params={"code": options["code"]},
                )
        for rule in rules:
            items = alert_items(rule)
            self.stdout.write(f"{rule.code} ({rule.get_code_display()}): {len(items)}")
            for item in items[:20]:
                self.stdout.write(f"  {item.label}  — {item.why}")
