"""`closeout worker`: a Celery worker (needs CELERY_BROKER_URL, e.g. redis://127.0.0.1:6379/0)."""

from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser

from closeout.core.cli import DomainCommand, whole_number


class Command(DomainCommand):
    help = "Run a Celery worker that takes sweeps, batch chunks and alerts from the broker."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--concurrency", type=whole_number, default=1)
        parser.add_argument("--hostname", default="closeout@%h")
        parser.add_argument("--loglevel", default="INFO")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.CELERY_BROKER_URL:
            raise CommandError(
                "no broker configured: set CELERY_BROKER_URL (e.g. redis://127.0.0.1:6379/0); "
                "without one, closeout runs background work inside the app's own process"
            )
        from closeout.celery import app

        app.worker_main(
            [
                "worker",
                f"--concurrency={options['concurrency']}",
                f"--hostname={options['hostname']}",
                f"--loglevel={options['loglevel']}",
                "--without-gossip",
                "--without-mingle",
            ]
        )
