"""`closeout webhooks retry|log`: run due webhook retries (for cron when no Celery beat runs),
and show the delivery log."""

from typing import Any

from django.core.management.base import CommandParser

from closeout.core.cli import DomainCommand, positive_int, table, whole_number
from closeout.notifications.selectors import webhook_delivery_log
from closeout.notifications.webhooks import webhook_deliver_due


class Command(DomainCommand):
    help = (
        "retry: attempt every webhook delivery whose next attempt is due. "
        "log: show the newest deliveries (--status pending|delivered|failed, --company CODE: "
        "only the endpoints of that company, --limit N)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["retry", "log"], help="retry or log")
        parser.add_argument("--status", default=None, help="log: only this status")
        parser.add_argument(
            "--company",
            default=None,
            metavar="CODE",
            help="log: only deliveries of this company's endpoints (not the group's)",
        )
        parser.add_argument("--limit", type=whole_number, default=50, metavar="N", help="log: rows")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "retry":
            attempted = webhook_deliver_due()
            self.stdout.write(f"{attempted} webhook deliveries attempted")
            return
        rows = webhook_delivery_log(
            status=options["status"],
            limit=positive_int(options["limit"], "--limit"),
            company=options["company"],
        )
        lines = table(
            ("id", "endpoint", "event", "status", "attempts", "last", "next attempt", "error"),
            [
                (
                    d.pk,
                    d.endpoint.name,
                    d.event,
                    d.status,
                    d.attempts,
                    d.last_status_code,
                    d.next_attempt_at,
                    d.last_error[:60],
                )
                for d in rows
            ],
        )
        self.stdout.write("\n".join(lines))
